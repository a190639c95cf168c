/**
 * Deprecation notices (issue 19): every request that uses a deprecated model, route, action or key
 * counts in `sluice_deprecated_requests_total{tenant, deprecation}`, and each affected tenant is told
 * once — a `deprecation` alert with its tenant id, delivered to the webhooks subscribed to that type —
 * the first time it uses the thing. "Once" holds across instances and restarts: the control store
 * records the notice (`claim`) and only the caller that recorded it sends it. The request path only
 * adds to a counter and, the first time per (entry, tenant) in this process, starts the claim.
 */
import { type DeprecationEntry, deprecationKey } from '../core/deprecations.js';
import type { Clock } from '../core/ports.js';
import type { AlertEvent } from '../observability/alerts.js';

/** (entry, tenant) pairs remembered per process; past it the oldest is forgotten (it re-claims: harmless). */
const MAX_REMEMBERED = 100_000;

export interface DeprecationNoticeOptions {
  clock: Clock;
  claim: (entry: string, tenantId: string, now: number) => Promise<boolean>;
  notify: (e: AlertEvent) => unknown;
  /** Per-tenant usage metric. */
  count?: (tenantId: string, deprecation: string) => void;
  onError?: (err: Error) => void;
}

export class DeprecationNotifier {
  private readonly claimed = new Set<string>();
  private readonly pending = new Set<Promise<void>>();
  private readonly keys = new WeakMap<DeprecationEntry, string>();

  constructor(private readonly opts: DeprecationNoticeOptions) {}

  /** A request of `tenantId` matched `entry` (`sunset`: refused with 410). Never throws, never waits. */
  seen(tenantId: string, entry: DeprecationEntry, sunset: boolean): void {
    let key = this.keys.get(entry);
    if (key === undefined) {
      key = deprecationKey(entry);
      this.keys.set(entry, key);
    }
    this.opts.count?.(tenantId, key);
    const pair = `${key}\u0000${tenantId}`;
    if (this.claimed.has(pair)) return;
    this.claimed.add(pair);
    if (this.claimed.size > MAX_REMEMBERED) this.claimed.delete(this.claimed.values().next().value!);
    const now = this.opts.clock.now();
    const p = this.opts
      .claim(key, tenantId, now)
      .then(
        (first) => {
          if (first) this.opts.notify(notice(tenantId, key, entry, sunset));
        },
        (err: Error) => {
          // Not recorded: the next request tries again.
          this.claimed.delete(pair);
          this.opts.onError?.(err);
        },
      )
      .finally(() => this.pending.delete(p));
    this.pending.add(p);
  }

  /** Resolves once every claim started so far has finished (tests, shutdown). */
  async idle(): Promise<void> {
    while (this.pending.size > 0) await Promise.allSettled([...this.pending]);
  }
}

function notice(tenantId: string, key: string, entry: DeprecationEntry, sunset: boolean): AlertEvent {
  const day = (ms: number) => new Date(ms).toISOString().slice(0, 10);
  const what = key.slice(0, key.lastIndexOf('@'));
  let message = sunset
    ? `${what} was retired on ${day(entry.sunset)} and tenant "${tenantId}" still calls it`
    : `${what} is deprecated (announced ${day(entry.announced)}) and retires on ${day(entry.sunset)}; tenant "${tenantId}" uses it`;
  if (entry.replacement) message += `; use "${entry.replacement}" instead`;
  if (entry.link) message += ` (see ${entry.link})`;
  return {
    type: 'deprecation',
    tenantId,
    subject: key,
    message,
    details: {
      deprecation: key,
      announced: new Date(entry.announced).toISOString(),
      sunset: new Date(entry.sunset).toISOString(),
      replacement: entry.replacement ?? null,
      link: entry.link ?? null,
    },
    // The store already makes it once; the engine's window only guards a burst on this instance.
    dedupeMs: 86_400_000,
  };
}
