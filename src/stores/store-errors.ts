/** What a store failure looks like, for the planes that answer it (503 SLUICE_STORE_UNAVAILABLE). */

/**
 * Error codes that mean a backing store cannot be reached or is locked, not that the request was
 * wrong: socket errors, SQLite busy/locked/I/O, and PostgreSQL connection exceptions (class 08),
 * operator intervention (57P01-57P03), a missing database (3D000) and too many connections (53300).
 */
const STORE_CODES = new Set([
  'LIMIT_STORE_TIMEOUT',
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
  'SQLITE_BUSY',
  'SQLITE_LOCKED',
  'SQLITE_IOERR',
  'SQLITE_CANTOPEN',
  'SQLITE_FULL',
  'SQLITE_READONLY',
  '57P01',
  '57P02',
  '57P03',
  '3D000',
  '53300',
]);
const STORE_MESSAGES =
  /Connection terminated|connection timeout|timeout exceeded when trying to connect|database is locked|Client was closed|Client has encountered a connection error/i;

/**
 * True when `err` (or its cause) says a backing store is unavailable: the data plane answers 503
 * SLUICE_STORE_UNAVAILABLE with `Retry-After` rather than 500.
 */
export function isStoreUnavailable(err: unknown, depth = 0): boolean {
  if (!err || typeof err !== 'object' || depth > 4) return false;
  const e = err as { code?: unknown; message?: unknown; cause?: unknown; errors?: unknown };
  if (typeof e.code === 'string') {
    if (
      STORE_CODES.has(e.code) ||
      /^SQLITE_(BUSY|LOCKED|IOERR)/.test(e.code) ||
      /^08[0-9A-Z]{3}$/.test(e.code)
    )
      return true;
  }
  if (typeof e.message === 'string' && STORE_MESSAGES.test(e.message)) return true;
  if (Array.isArray(e.errors) && e.errors.some((x) => isStoreUnavailable(x, depth + 1))) return true;
  return isStoreUnavailable(e.cause, depth + 1);
}

const LOST_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'EPIPE',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
]);
const LOST_MESSAGES =
  /Connection is closed|Too many Cluster redirections|CLUSTERDOWN|All nodes failed|Failed to refresh slots cache|Stream isn't writeable|connect ECONNREFUSED/i;

/**
 * True when `err` (or its cause) says the connection to a store is gone (refused, reset, closed, a
 * cluster that cannot reach a slot's master), as opposed to a call that is merely slow or refused by
 * the store: the limit store then enters degraded mode even while its client still reports 'ready'
 * (a cluster client does when one master is lost).
 */
export function isConnectionLost(err: unknown, depth = 0): boolean {
  if (!err || typeof err !== 'object' || depth > 4) return false;
  const e = err as { code?: unknown; message?: unknown; cause?: unknown; lastNodeError?: unknown };
  if (typeof e.code === 'string' && LOST_CODES.has(e.code)) return true;
  if (typeof e.message === 'string' && LOST_MESSAGES.test(e.message)) return true;
  return isConnectionLost(e.cause ?? e.lastNodeError, depth + 1);
}
