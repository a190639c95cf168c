/**
 * `policy watch`: the per-version figures before and after an apply, the verdict against the
 * thresholds, and the one alert that names the rollback command. A fake clock drives the minutes.
 */
import { describe, expect, it } from 'vitest';
import type { Outcome } from '../../src/core/outcome.js';
import type { AlertEvent } from '../../src/observability/alerts.js';
import { formatWatch, PolicyWatch } from '../../src/observability/policy-watch.js';
import { startPolicyWatcher } from '../../src/wiring/policy-watch.js';

const MIN = 60_000;
const T0 = Date.UTC(2026, 11, 7, 1, 0, 30); // 30 s into a minute: the apply minute is split by version
const out = (policyVersion: number, over: Partial<Outcome> = {}): Outcome => ({
  action: 'chat.create',
  decision: 'allowed',
  reason: 'ok',
  tenantId: 'acme',
  model: 'm',
  status: 200,
  stageMs: { gateway: 0.5 },
  policyVersion,
  ...over,
});

/** n calls of `o` spread evenly over [from, from + ms). */
function feed(w: PolicyWatch, from: number, ms: number, n: number, o: (i: number) => Outcome): void {
  for (let i = 0; i < n; i++) w.observe(o(i), from + Math.floor((i * ms) / n));
}

describe('PolicyWatch', () => {
  it('compares the N minutes before an apply with those after, split by version inside the apply minute', () => {
    const w = new PolicyWatch();
    // 1. version 1: 100 calls in the 10 minutes before, 2 of them upstream errors, none limited
    feed(w, T0 - 10 * MIN, 10 * MIN, 100, (i) =>
      out(1, i % 50 === 0 ? { decision: 'error', reason: 'upstream_500', status: 500 } : {}),
    );
    // 2. version 2 from T0: 5 minutes so far, 50 calls, 20 of them 429s, 1.5 ms added
    feed(w, T0, 5 * MIN, 50, (i) =>
      out(
        2,
        i % 5 < 2
          ? { decision: 'throttled', reason: 'SLUICE_RATE_LIMITED', status: 429 }
          : { stageMs: { gateway: 1.5 } },
      ),
    );
    // 3. noise outside the periods and of other versions after the apply is not counted
    w.observe(out(1), T0 - 11 * MIN);
    w.observe(out(3), T0 + MIN);
    const r = w.compare({ version: 2, previous: 1, appliedAt: T0 }, 10, T0 + 5 * MIN);
    expect(r.before).toMatchObject({
      requests: 100,
      errorRate: 0.02,
      limitedRate: 0,
      minutes: 10,
      throughput: 10,
    });
    expect(r.before.addedLatencyMs).toBeCloseTo(0.5, 10);
    expect(r.after).toMatchObject({
      requests: 50,
      errorRate: 0,
      limitedRate: 0.4,
      minutes: 5,
      throughput: 10,
    });
    expect(r.after.addedLatencyMs).toBeCloseTo((20 * 0.5 + 30 * 1.5) / 50, 10);
    expect(r.verdict).toBe('regressed');
    expect(r.regressions).toEqual(['429 rate 0.0% -> 40.0%']);
    expect(r.rollback).toBe('sluice policy rollback 1');
    const text = formatWatch(r);
    expect(text).toContain('ALERT: 429 rate 0.0% -> 40.0%');
    expect(text).toContain('roll back with: sluice policy rollback 1');
  });

  it('flags added latency, error rate and a throughput drop; says so when traffic is too thin to judge', () => {
    const w = new PolicyWatch();
    feed(w, T0 - 10 * MIN, 10 * MIN, 200, () => out(1));
    feed(w, T0, 10 * MIN, 40, (i) =>
      out(
        2,
        i < 10 ? { decision: 'error', reason: 'upstream_502', status: 502 } : { stageMs: { gateway: 3 } },
      ),
    );
    const r = w.compare({ version: 2, previous: 1, appliedAt: T0 }, 10, T0 + 10 * MIN);
    expect(r.regressions).toEqual([
      'error rate 0.0% -> 25.0%',
      'added latency 0.50 ms -> 2.38 ms',
      'throughput 20.0/min -> 4.0/min',
    ]);
    const thin = new PolicyWatch();
    feed(thin, T0 - MIN, MIN, 5, () => out(1));
    feed(thin, T0, MIN, 5, () => out(2, { status: 429, decision: 'throttled' }));
    expect(thin.compare({ version: 2, previous: 1, appliedAt: T0 }, 1, T0 + MIN).verdict).toBe(
      'not enough traffic',
    );
  });

  it('an unchanged picture is ok', () => {
    const w = new PolicyWatch();
    feed(w, T0 - 10 * MIN, 10 * MIN, 100, () => out(1));
    feed(w, T0, 10 * MIN, 100, () => out(2));
    const r = w.compare({ version: 2, previous: 1, appliedAt: T0 }, 10, T0 + 10 * MIN);
    expect(r).toMatchObject({ verdict: 'ok', regressions: [] });
  });

  it('keeps only the retained minutes', () => {
    const w = new PolicyWatch(60);
    feed(w, T0 - 120 * MIN, 120 * MIN, 120, () => out(1));
    expect(w.figures(T0 - 120 * MIN, T0).requests).toBeLessThanOrEqual(62);
    expect(w.figures(T0 - 30 * MIN, T0).requests).toBe(30);
  });
});

describe('the watcher after an apply', () => {
  it('raises one policy.regression alert naming the rollback, only for a real apply in its period', () => {
    const clock = { t: T0 - 10 * MIN, now: () => clock.t };
    const alerts: AlertEvent[] = [];
    const pw = startPolicyWatcher({ clock, version: 1, notify: (e) => alerts.push(e), timer: false });
    // 1. before the apply: the start is not an apply, nothing to judge
    for (let i = 0; i < 100; i++) {
      pw.watch.observe(out(1), clock.t);
      clock.t += 6000;
    }
    expect(pw.check()).toBeUndefined();
    // 2. version 2 applied at T0; half its calls are refused with a 429
    clock.t = T0;
    pw.applied(2, 1);
    for (let i = 0; i < 60; i++) {
      pw.watch.observe(out(2, i % 2 ? { status: 429, decision: 'throttled' } : {}), clock.t);
      clock.t += 5000;
    }
    const r = pw.check();
    expect(r?.verdict).toBe('regressed');
    expect(alerts).toHaveLength(1);
    expect(alerts[0]).toMatchObject({ type: 'policy.regression', subject: 'v2' });
    expect(alerts[0]!.message).toBe(
      'policy version 2 moved 429 rate 0.0% -> 50.0%; roll back with: sluice policy rollback 1',
    );
    // 3. once per version
    expect(pw.check()).toBeUndefined();
    expect(alerts).toHaveLength(1);
    // 4. past its period, a new version is not judged by the timer
    pw.applied(3, 2);
    clock.t += 12 * MIN;
    expect(pw.check()).toBeUndefined();
    pw.stop();
  });
});
