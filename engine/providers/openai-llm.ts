import OpenAI, { APIError, APIUserAbortError } from 'openai';
import type { ChatCompletionMessageParam, ChatCompletionTool } from 'openai/resources/chat/completions';
import { VoiceError } from '../errors.ts';
import { isRetryableStatus, LlmFailedError, LlmTimeoutError, ProviderAbortedError } from './errors.ts';
import type { ChatMessage, LanguageModel, LlmChunk, LlmRequest, ToolCall } from './llm.ts';

/** OpenAI (or any OpenAI-compatible server) Chat Completions, streamed through the official SDK. */

export interface OpenAiLlmOptions {
  apiKey: string;
  /** e.g. `https://api.openai.com/v1` (the default) or a compatible server. */
  baseUrl?: string;
  /** Default `gpt-4o-mini`. */
  model?: string;
  temperature?: number;
  /** Upper bound on generated tokens per reply. */
  maxTokens?: number;
  /** Default for `LlmRequest.timeoutMs`. Default 5000 ms. */
  timeoutMs?: number;
  /**
   * SDK-level retries of a failed request before the first token. Default 0: in a live call a
   * retry belongs to the caller, which knows whether the user is still waiting.
   */
  maxRetries?: number;
  organization?: string;
  project?: string;
}

export class OpenAiLlm implements LanguageModel {
  readonly label: string;
  private readonly client: OpenAI;
  private readonly options: OpenAiLlmOptions;

  constructor(options: OpenAiLlmOptions) {
    this.options = options;
    this.label = `openai/${options.model ?? 'gpt-4o-mini'}`;
    // Every option is explicit so that nothing is picked up from OPENAI_* environment variables.
    this.client = new OpenAI({
      apiKey: options.apiKey,
      baseURL: options.baseUrl ?? 'https://api.openai.com/v1',
      organization: options.organization ?? null,
      project: options.project ?? null,
      adminAPIKey: null,
      webhookSecret: null,
      maxRetries: options.maxRetries ?? 0,
    });
  }

  async *complete(req: LlmRequest): AsyncGenerator<LlmChunk> {
    if (req.signal.aborted) throw new ProviderAbortedError('language model request', { cause: req.signal.reason });
    const timeoutMs = req.timeoutMs ?? this.options.timeoutMs ?? 5000;
    const controller = new AbortController();
    const onAbort = (): void => controller.abort(req.signal.reason);
    req.signal.addEventListener('abort', onAbort, { once: true });
    let timedOut = false;
    let timer: NodeJS.Timeout | undefined;
    // The clock runs only while waiting on the server, never while the consumer holds a chunk.
    const arm = (): void => {
      clearTimeout(timer);
      timer = setTimeout(() => {
        timedOut = true;
        controller.abort();
      }, timeoutMs);
    };
    const pause = (): void => clearTimeout(timer);

    const calls = new Map<number, { id: string; name: string; args: string }>();
    const flushCalls = function* (): Generator<LlmChunk> {
      for (const index of [...calls.keys()].sort((a, b) => a - b)) {
        const c = calls.get(index)!;
        const call: ToolCall = { id: c.id, name: c.name, argumentsJson: c.args };
        yield { type: 'tool_call', call };
      }
      calls.clear();
    };

    arm();
    try {
      const stream = await this.client.chat.completions.create(
        {
          model: this.options.model ?? 'gpt-4o-mini',
          messages: req.messages.map(toWireMessage),
          stream: true,
          ...(req.tools && req.tools.length > 0
            ? {
                tools: req.tools.map(
                  (t): ChatCompletionTool => ({
                    type: 'function',
                    function: { name: t.name, description: t.description, parameters: t.parameters as Record<string, unknown> },
                  }),
                ),
              }
            : {}),
          ...(this.options.temperature !== undefined ? { temperature: this.options.temperature } : {}),
          ...(this.options.maxTokens !== undefined ? { max_completion_tokens: this.options.maxTokens } : {}),
        },
        { signal: controller.signal },
      );
      for await (const chunk of stream) {
        const choice = chunk.choices[0];
        if (choice === undefined) continue;
        const delta = choice.delta;
        if (delta?.content) {
          pause();
          yield { type: 'text', text: delta.content };
          arm();
        }
        for (const d of delta?.tool_calls ?? []) {
          let c = calls.get(d.index);
          if (c === undefined) {
            c = { id: d.id ?? '', name: '', args: '' };
            calls.set(d.index, c);
          }
          if (d.id) c.id = d.id;
          if (d.function?.name) c.name += d.function.name;
          if (d.function?.arguments) c.args += d.function.arguments;
        }
        if (choice.finish_reason) {
          pause();
          yield* flushCalls();
          arm();
        }
      }
      pause();
      // The SDK ends the iteration quietly when its signal aborts, so a cut-off reply looks complete.
      if (controller.signal.aborted) throw translateError(controller.signal.reason, { timedOut, aborted: req.signal.aborted, timeoutMs });
      // A server that ends without a finish_reason still delivered whole calls.
      yield* flushCalls();
      yield { type: 'done' };
    } catch (err) {
      if (err instanceof VoiceError) throw err;
      throw translateError(err, { timedOut, aborted: req.signal.aborted, timeoutMs });
    } finally {
      clearTimeout(timer);
      req.signal.removeEventListener('abort', onAbort);
      // Ends the HTTP stream when the consumer stops early (break, return, throw).
      controller.abort();
    }
  }
}

function toWireMessage(m: ChatMessage): ChatCompletionMessageParam {
  switch (m.role) {
    case 'system':
      return { role: 'system', content: m.content };
    case 'user':
      return { role: 'user', content: m.content };
    case 'tool':
      return { role: 'tool', content: m.content, tool_call_id: m.toolCallId ?? '' };
    case 'assistant':
      return m.toolCalls && m.toolCalls.length > 0
        ? {
            role: 'assistant',
            content: m.content === '' ? null : m.content,
            tool_calls: m.toolCalls.map((c) => ({ id: c.id, type: 'function', function: { name: c.name, arguments: c.argumentsJson } })),
          }
        : { role: 'assistant', content: m.content };
  }
}

function translateError(err: unknown, ctx: { timedOut: boolean; aborted: boolean; timeoutMs: number }): VoiceError {
  if (ctx.aborted) return new ProviderAbortedError('language model request', { cause: err });
  if (ctx.timedOut) return new LlmTimeoutError(ctx.timeoutMs, { cause: err });
  if (err instanceof APIUserAbortError) return new ProviderAbortedError('language model request', { cause: err });
  if (err instanceof APIError) {
    return new LlmFailedError(`language model request failed${err.status ? ` with HTTP ${err.status}` : ''}: ${err.message}`, {
      upstreamStatus: err.status,
      retryable: isRetryableStatus(err.status),
      cause: err,
    });
  }
  return new LlmFailedError(`language model request failed: ${(err as Error)?.message ?? String(err)}`, { retryable: true, cause: err });
}
