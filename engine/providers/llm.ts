/** A function call requested by the model, assembled from its streamed deltas. */
export interface ToolCall {
  /** Provider-assigned id; echo it back as `toolCallId` on the `tool` message with the result. */
  id: string;
  name: string;
  /** The arguments exactly as the model wrote them (JSON text; the model may emit invalid JSON). */
  argumentsJson: string;
}

/** One message of the conversation, in the order the model should read them. */
export type ChatMessage = {
  role: 'system' | 'user' | 'assistant' | 'tool';
  content: string;
  /** Required when `role` is `tool`: the id of the call this message answers. */
  toolCallId?: string;
  /** On an `assistant` message: the calls it made, so the following `tool` messages make sense. */
  toolCalls?: ToolCall[];
};

/** A function the model may call. */
export interface ToolSpec {
  name: string;
  description: string;
  /** JSON Schema of the arguments object. */
  parameters: object;
}

/**
 * A piece of the streamed reply. Text arrives as it is generated; each tool call arrives once, whole,
 * as soon as its arguments are complete; `done` is always the last chunk of a reply that finished.
 */
export type LlmChunk = { type: 'text'; text: string } | { type: 'tool_call'; call: ToolCall } | { type: 'done' };

export interface LlmRequest {
  messages: ChatMessage[];
  tools?: ToolSpec[];
  /** Aborting ends the iteration with a `ProviderAbortedError` (VE_PROVIDER_ABORTED). */
  signal: AbortSignal;
  /**
   * Longest wait for the first chunk (and, after it, for each following chunk) before failing with
   * `LlmTimeoutError` (VE_LLM_TIMEOUT). The implementation's default applies when absent.
   */
  timeoutMs?: number;
}

/** A streaming chat model. Implementations: `OpenAiLlm`. */
export interface LanguageModel {
  /** Human-readable provider/model name for logs and metrics. */
  readonly label: string;
  /**
   * Stream one reply. Errors are thrown from the iterator as `VoiceError`s: VE_LLM_TIMEOUT,
   * VE_LLM_FAILED (retryable for 429/5xx/network faults), VE_PROVIDER_ABORTED.
   */
  complete(req: LlmRequest): AsyncIterable<LlmChunk>;
}
