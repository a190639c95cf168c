/**
 * Watching an apply: feeds the per-version figures, remembers when the running version became
 * running here (and which it replaced), and once a minute for the watch period compares before and
 * after; a regression raises one `policy.regression` alert naming the rollback command.
 */
import type { Clock } from '../core/ports.js';
import type { AlertEvent } from '../observability/alerts.js';
import {
  DEFAULT_WATCH_THRESHOLDS,
  PolicyWatch,
  type WatchReport,
  type WatchThresholds,
} from '../observability/policy-watch.js';

export interface AppliedVersion {
  version: number | null;
  previous: number | null;
  appliedAt: number;
}

export interface PolicyWatcher {
  readonly watch: PolicyWatch;
  /** The running version changed (at `clock.now()`). */
  applied(version: number | null, previous: number | null): void;
  /** The last apply seen by this instance (the process start counts as one). */
  last(): AppliedVersion;
  /** Before/after of the last apply over `minutes`. */
  report(minutes: number, thresholds?: WatchThresholds): WatchReport;
  /** One check (the timer calls it every minute); returns the report when it alerted. */
  check(): WatchReport | undefined;
  stop(): void;
}

export function startPolicyWatcher(opts: {
  clock: Clock;
  version: number | null;
  notify: (e: AlertEvent) => unknown;
  /** Minutes compared after an apply, and how long the timer keeps checking (default 10). */
  minutes?: number;
  thresholds?: WatchThresholds;
  /** Check every minute (default true; tests call `check()`). */
  timer?: boolean;
}): PolicyWatcher {
  const watch = new PolicyWatch();
  const minutes = opts.minutes ?? 10;
  let last: AppliedVersion = { version: opts.version, previous: null, appliedAt: opts.clock.now() };
  let alerted: number | null | undefined;
  const report = (m: number, t = opts.thresholds ?? DEFAULT_WATCH_THRESHOLDS) =>
    watch.compare(last, m, opts.clock.now(), t);
  const check = (): WatchReport | undefined => {
    // Only a real apply (a previous version exists) within its watch period, alerted once.
    if (last.previous === null || alerted === last.version) return undefined;
    if (opts.clock.now() - last.appliedAt > (minutes + 1) * 60_000) return undefined;
    const r = report(minutes);
    if (r.verdict !== 'regressed') return undefined;
    alerted = last.version;
    opts.notify({
      type: 'policy.regression',
      subject: `v${r.version}`,
      message: `policy version ${r.version} moved ${r.regressions.join(', ')}; roll back with: ${r.rollback}`,
      details: { report: r, rollback: r.rollback },
    });
    return r;
  };
  const timer = opts.timer === false ? undefined : setInterval(check, 60_000);
  timer?.unref();
  return {
    watch,
    applied(version, previous) {
      last = { version, previous, appliedAt: opts.clock.now() };
    },
    last: () => last,
    report,
    check,
    stop() {
      if (timer) clearInterval(timer);
    },
  };
}
