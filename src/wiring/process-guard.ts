/**
 * The process-level guard of `sluice serve`: a dependency that fails (PostgreSQL restarted, Redis
 * gone, SQLite locked, a socket reset) must not take the gateway down, but a programming error must.
 *
 * Decision (docs/operations.md, "Failure modes"): an `uncaughtException` or `unhandledRejection`
 * whose error is a dependency's (`isStoreUnavailable`: connection codes, PostgreSQL 57P01/57P02/
 * 57P03/08xxx/3D000, SQLITE_BUSY/LOCKED/IOERR, ioredis connection errors) is logged once per
 * distinct message per minute and counted in `sluice_dependency_errors_total`; the process stays up
 * and the client that failed reconnects with backoff. Anything else is a bug whose state we cannot
 * trust: it is logged as fatal and the process exits with code 1 (a supervisor restarts it).
 */
import { isStoreUnavailable } from '../gateway/hardening.js';

export interface ProcessGuardOptions {
  log: {
    error(obj: object, msg: string): void;
    fatal(obj: object, msg: string): void;
  };
  /** Called for every contained dependency error (e.g. a metric counter). */
  count?: (kind: 'exception' | 'rejection') => void;
  /** How the guard ends the process on a genuine bug (default: `process.exit(1)` after the log). */
  exit?: (code: number) => void;
  /** The emitter to guard (default: `process`); tests pass their own. */
  target?: NodeJS.EventEmitter;
  /** Milliseconds a repeated message stays quiet (default 60 s); the counter still counts it. */
  quietMs?: number;
  now?: () => number;
}

/** True for errors of a dependency Sluice talks to: stores, Redis, sockets. */
export function isDependencyError(err: unknown): boolean {
  if (isStoreUnavailable(err)) return true;
  const e = err as { name?: unknown; message?: unknown } | null;
  if (!e || typeof e !== 'object') return false;
  // ioredis: connection-level errors carry these names/messages; pg: "Connection terminated unexpectedly".
  if (e.name === 'MaxRetriesPerRequestError') return true;
  return (
    typeof e.message === 'string' &&
    /terminating connection|Connection is closed|connect E[A-Z]+/i.test(e.message)
  );
}

/** Installs the guard; returns a function that removes it. */
export function installProcessGuard(opts: ProcessGuardOptions): () => void {
  const target = opts.target ?? process;
  const exit = opts.exit ?? ((code: number) => process.exit(code));
  const now = opts.now ?? Date.now;
  const quietMs = opts.quietMs ?? 60_000;
  const lastLogged = new Map<string, number>();
  const handle = (kind: 'exception' | 'rejection') => (err: unknown) => {
    const message = (err as Error | null)?.message ?? String(err);
    const code = (err as { code?: unknown } | null)?.code;
    if (isDependencyError(err)) {
      opts.count?.(kind);
      const key = `${kind}:${String(code)}:${message}`;
      const t = now();
      const last = lastLogged.get(key);
      if (last === undefined || t - last >= quietMs) {
        if (lastLogged.size > 1000) lastLogged.clear();
        lastLogged.set(key, t);
        opts.log.error({ err: message, code, kind }, 'dependency error contained; the process stays up');
      }
      return;
    }
    opts.log.fatal(
      { err: message, code, kind, stack: (err as Error | null)?.stack },
      'unexpected error: exiting (a programming error leaves state we cannot trust)',
    );
    exit(1);
  };
  const onException = handle('exception');
  const onRejection = handle('rejection');
  target.on('uncaughtException', onException);
  target.on('unhandledRejection', onRejection);
  return () => {
    target.off('uncaughtException', onException);
    target.off('unhandledRejection', onRejection);
  };
}
