import type { ApiKey } from './config.ts';

/** What the API key of a request may do, derived from its scopes (`API_KEYS`). */
export interface Access {
  /** The key's name: recorded as the owner of the calls it creates, never the secret. */
  readonly name: string;
  /** May create calls and act on them (end, tokens, handoff, recording); without it only GET works. */
  readonly write: boolean;
  /** Sees every call, not only those it created, and may run the console's simulated callers. */
  readonly admin: boolean;
}

export function accessOf(key: ApiKey): Access {
  return { name: key.name, write: key.scopes.includes('calls'), admin: key.scopes.includes('admin') };
}

/** Methods a read-only key may use: they change nothing. */
export const READ_METHODS: ReadonlySet<string> = new Set(['GET', 'HEAD']);
