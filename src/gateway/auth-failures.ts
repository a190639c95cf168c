/**
 * Brute-force defence (OWASP API2): failed authentications are counted per client IP and per
 * presented key id, in fixed windows that start at the first failure. Past the budget
 * (`hardening.authFailures.perIp` per `window`) the subject is refused with 429
 * SLUICE_TOO_MANY_AUTH_FAILURES and `Retry-After` before any key lookup, so a flood costs no
 * database read and no HMAC.
 *
 * Memory is bounded: at most `maxTracked` subjects per kind; expired windows are swept, and when
 * the table is full of live windows the oldest is dropped. IPv6 clients are counted per /64 (one
 * subscriber's allocation), so rotating addresses inside it does not reset the budget.
 *
 * Audit is aggregate: attempts within the budget are audited one by one by the gateway; a window in
 * which a subject was refused ends with ONE summary event (`onSummary`) carrying the counts.
 *
 * A key id over its budget does not lock out its owner: a credential that authenticated
 * successfully while the key id was being attacked is remembered (as a salted hash, never the
 * secret) and still let through.
 */
import { createHash, randomBytes } from 'node:crypto';
import { formatIp, parseIp } from '../core/authz/cidr.js';
import { type Refusal, refuse } from '../core/errors.js';
import type { AuditEventInput, Clock } from '../core/ports.js';

/** The budget, read live so a policy reload applies at once. */
export interface AuthFailureBudget {
  /** Failures allowed per subject per window. */
  perIp: number;
  /** Window length in milliseconds. */
  window: number;
}

/** One subject's window that ended with refusals: what the aggregate audit event says. */
export interface AuthFailureSummary {
  kind: 'ip' | 'key';
  /** The client IP (IPv6 as its /64) or the key id. */
  subject: string;
  /** Failed authentications counted in the window (at most the budget, then refusals). */
  failures: number;
  /** Requests refused with SLUICE_TOO_MANY_AUTH_FAILURES in the window. */
  refused: number;
  windowStart: number;
  windowEnd: number;
}

export interface AuthFailureLimiterOptions {
  budget: () => AuthFailureBudget;
  clock: Clock;
  /** Called once per subject per window that refused anything (never per attempt). Must not throw. */
  onSummary?: (s: AuthFailureSummary) => void;
  /** Subjects tracked per kind (default 50 000: about 5 MB). */
  maxTracked?: number;
  /** Sweep period for ended windows in ms (default: a quarter of the window, 1..30 s). 0: no timer. */
  sweepEveryMs?: number;
}

interface Window {
  start: number;
  failures: number;
  refused: number;
  /** Key ids only: salted hashes of credentials that authenticated during the window. */
  good?: Set<string>;
}

/** At most this many remembered good credentials per key id (a rotation grace period has two). */
const MAX_GOOD = 4;

/**
 * Counts failed authentications and refuses subjects over budget. `check*` are O(1) map reads and
 * never throw; `fail*` are O(1). A refusal carries `retry-after` (seconds to the window's end).
 */
export class AuthFailureLimiter {
  private readonly ips = new Map<string, Window>();
  private readonly keys = new Map<string, Window>();
  private readonly maxTracked: number;
  private readonly salt = randomBytes(16);
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly opts: AuthFailureLimiterOptions) {
    this.maxTracked = opts.maxTracked ?? 50_000;
    const every = opts.sweepEveryMs ?? Math.min(30_000, Math.max(1000, Math.floor(opts.budget().window / 4)));
    if (every > 0) {
      this.timer = setInterval(() => this.sweep(), every);
      this.timer.unref();
    }
  }

  /** A refusal when this client IP is over its failure budget, else null. */
  check(ip: string): Refusal | null {
    if (this.ips.size === 0) return null;
    return this.over(this.ips, 'ip', subjectOfIp(ip));
  }

  /** Counts one failed authentication from this client IP. */
  fail(ip: string): void {
    this.count(this.ips, 'ip', subjectOfIp(ip));
  }

  /** True when some client IP has failures in an open window (so the client IP is worth computing). */
  watchingIps(): boolean {
    return this.ips.size > 0;
  }

  /** True when some key id has failures in an open window (so a request's key id is worth parsing). */
  watchingKeys(): boolean {
    return this.keys.size > 0;
  }

  /**
   * A refusal when this key id is over its failure budget and `presented` is not a credential
   * that authenticated during the attack, else null.
   */
  checkKey(keyId: string, presented: string): Refusal | null {
    if (this.keys.size === 0) return null;
    const w = this.keys.get(keyId);
    if (!w) return null;
    if (w.good && this.isOver(w) && w.good.has(this.fingerprint(presented))) return null;
    return this.over(this.keys, 'key', keyId);
  }

  /** Counts one failed authentication that presented this key id. */
  failKey(keyId: string): void {
    this.count(this.keys, 'key', keyId);
  }

  /** Remembers a credential that authenticated, when its key id is under attack (cheap otherwise). */
  passKey(keyId: string, presented: string): void {
    const w = this.keys.get(keyId);
    if (!w) return;
    w.good ??= new Set();
    if (w.good.size < MAX_GOOD) w.good.add(this.fingerprint(presented));
  }

  /** Ends windows that are over: emits their summaries and frees their memory. */
  sweep(): void {
    const now = this.opts.clock.now();
    const { window } = this.opts.budget();
    for (const [kind, map] of [
      ['ip', this.ips],
      ['key', this.keys],
    ] as const) {
      // Insertion order is window-start order: stop at the first window still open.
      for (const [subject, w] of map) {
        if (now < w.start + window) break;
        map.delete(subject);
        this.summarise(kind, subject, w, window);
      }
    }
  }

  /** Stops the sweep timer and emits the summaries of every open window that refused something. */
  close(): void {
    clearInterval(this.timer);
    this.timer = undefined;
    const { window } = this.opts.budget();
    for (const [kind, map] of [
      ['ip', this.ips],
      ['key', this.keys],
    ] as const) {
      for (const [subject, w] of map) this.summarise(kind, subject, w, window);
      map.clear();
    }
  }

  stats(): { ips: number; keys: number } {
    return { ips: this.ips.size, keys: this.keys.size };
  }

  private isOver(w: Window): boolean {
    const { perIp, window } = this.opts.budget();
    return this.opts.clock.now() < w.start + window && w.failures >= perIp;
  }

  private over(map: Map<string, Window>, kind: 'ip' | 'key', subject: string): Refusal | null {
    const w = map.get(subject);
    if (!w) return null;
    const { perIp, window } = this.opts.budget();
    const now = this.opts.clock.now();
    if (now >= w.start + window) {
      map.delete(subject);
      this.summarise(kind, subject, w, window);
      return null;
    }
    if (w.failures < perIp) return null;
    w.refused++;
    const retryMs = w.start + window - now;
    return refuse('SLUICE_TOO_MANY_AUTH_FAILURES', undefined, {
      headers: { 'retry-after': String(Math.max(1, Math.ceil(retryMs / 1000))) },
      internal: `${kind} ${subject}: ${w.failures} failures in the window`,
    });
  }

  private count(map: Map<string, Window>, kind: 'ip' | 'key', subject: string): void {
    const now = this.opts.clock.now();
    const { window } = this.opts.budget();
    let w = map.get(subject);
    if (w && now >= w.start + window) {
      map.delete(subject);
      this.summarise(kind, subject, w, window);
      w = undefined;
    }
    if (!w) {
      if (map.size >= this.maxTracked) this.makeRoom(map, kind, window);
      w = { start: now, failures: 0, refused: 0 };
      map.set(subject, w);
    }
    w.failures++;
  }

  private makeRoom(map: Map<string, Window>, kind: 'ip' | 'key', window: number): void {
    // Insertion order is window-start order: ended windows are at the front, and the first live
    // one is the oldest. O(1) amortised, so a flood of new addresses stays cheap when the table is full.
    while (map.size >= this.maxTracked) {
      const [subject, w] = map.entries().next().value as [string, Window];
      map.delete(subject);
      this.summarise(kind, subject, w, window);
    }
  }

  private summarise(kind: 'ip' | 'key', subject: string, w: Window, window: number): void {
    if (w.refused === 0 || !this.opts.onSummary) return;
    try {
      this.opts.onSummary({
        kind,
        subject,
        failures: w.failures,
        refused: w.refused,
        windowStart: w.start,
        windowEnd: w.start + window,
      });
    } catch {
      // An audit sink that throws must not break authentication.
    }
  }

  private fingerprint(presented: string): string {
    return createHash('sha256').update(this.salt).update(presented).digest('base64url');
  }
}

/** The counting subject of a client IP: IPv4 as is, IPv6 as its /64. */
export function subjectOfIp(ip: string): string {
  if (ip.indexOf(':') === -1) return ip;
  const p = parseIp(ip);
  if (p === null || typeof p === 'number') return p === null ? ip : formatIp(p);
  return `${formatIp([p[0]!, p[1]!, 0, 0])}/64`;
}

/** The aggregate audit event of one summary (decision `throttled`, action `auth`, no secret). */
export function summaryAuditEvent(
  s: AuthFailureSummary,
  at: number,
  policyVersion: number | null,
): AuditEventInput {
  return {
    at,
    requestId: null,
    keyId: s.kind === 'key' ? s.subject : null,
    tenantId: null,
    projectId: null,
    clientIp: s.kind === 'ip' ? s.subject : null,
    country: null,
    userAgent: null,
    action: 'auth',
    model: null,
    decision: 'throttled',
    reason: 'SLUICE_TOO_MANY_AUTH_FAILURES',
    policyVersion,
    details: {
      aggregate: true,
      per: s.kind,
      failures: s.failures,
      refused: s.refused,
      windowStart: s.windowStart,
      windowEnd: s.windowEnd,
    },
  };
}
