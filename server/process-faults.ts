/**
 * What the process does with an error that nobody caught. Almost always it means the process is in a
 * state nobody designed: it reports the error, closes what it can within a short bound, and exits
 * non-zero so that its supervisor (systemd, Kubernetes, a container runtime) starts a fresh one, rather
 * than carrying on half-broken behind a `/healthz` that still answers 200.
 *
 * Two foreign errors are known to be harmless and are survived:
 * - rtc-node's native handle finaliser throws `trying to drop an invalid handle` (napi-rs
 *   `GenericFailure`) at garbage-collection time for a handle whose room already went away, outside any
 *   call stack of ours; it belongs to a call that is over, and exiting would hang up every other call.
 * - EPIPE: the terminal or the parent closed our output pipe; there is nowhere to report anything.
 * They are matched by their exact shape (we do not own these errors, so there is no code of ours to
 * match on), and nothing else is.
 */

export type SurvivableFault = 'rtc_invalid_handle' | 'epipe';

/** Exit status after an unexpected fault (EX_SOFTWARE of sysexits.h): distinct from start-up failures (1) and bad configuration (2). */
export const FAULT_EXIT_CODE = 70;

const RTC_INVALID_HANDLE_MESSAGE = 'trying to drop an invalid handle';

/** Which known-harmless fault this is, or null when the process must not go on. */
export function survivableFault(error: unknown): SurvivableFault | null {
  if (!(error instanceof Error)) return null;
  const code = (error as { code?: unknown }).code;
  if (code === 'EPIPE') return 'epipe';
  if (error.message === RTC_INVALID_HANDLE_MESSAGE && code === 'GenericFailure') return 'rtc_invalid_handle';
  return null;
}

export type FaultKind = 'uncaught exception' | 'unhandled rejection';

export interface ProcessFaultOptions {
  /** Reports a fault; `fatal` says that the process is about to exit. Never called for EPIPE. */
  report(kind: FaultKind, error: unknown, fatal: boolean): void;
  /** Best-effort graceful close before exiting (stop taking calls, close the store...). */
  close(): Promise<void>;
  /** How long `close` may take before the process exits anyway. Default 5000 ms. */
  closeTimeoutMs?: number;
  /** Default `process.exit`; tests pass their own. */
  exit?: (code: number) => void;
}

/** Installs the `uncaughtException` and `unhandledRejection` handlers; returns the function that removes them. */
export function installProcessFaultHandlers(options: ProcessFaultOptions): () => void {
  const exit = options.exit ?? ((code: number) => process.exit(code));
  let exiting = false;
  const handle = (kind: FaultKind) => (error: unknown) => {
    const survivable = survivableFault(error);
    if (survivable === 'epipe') return;
    safely(() => options.report(kind, error, survivable === null));
    if (survivable !== null || exiting) return;
    exiting = true;
    const timeout = new Promise<void>((resolve) => setTimeout(resolve, options.closeTimeoutMs ?? 5000));
    void Promise.race([options.close().catch(() => {}), timeout]).finally(() => exit(FAULT_EXIT_CODE));
  };
  const onException = handle('uncaught exception');
  const onRejection = handle('unhandled rejection');
  process.on('uncaughtException', onException);
  process.on('unhandledRejection', onRejection);
  return () => {
    process.off('uncaughtException', onException);
    process.off('unhandledRejection', onRejection);
  };
}

function safely(fn: () => void): void {
  try {
    fn();
  } catch {
    // Reporting failed (its output may be the thing that broke); the decision stands.
  }
}
