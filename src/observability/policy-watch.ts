/**
 * Per-version traffic figures for `sluice policy watch` and `GET /admin/v1/policy/watch`: what the
 * last policy apply changed in error rate, 429 rate, added latency and throughput.
 *
 * Fed from the same `Outcome` as the metrics (one call per decision: a Map lookup at most, no
 * allocation once the minute's cell exists). Cells are per minute and per policy version, so the
 * minute of an apply splits cleanly between the old and the new version. Bounded: the last
 * `retainMinutes` minutes (default a day), at most a few versions per minute.
 */
import type { Outcome } from '../core/outcome.js';

const MINUTE = 60_000;

interface Cell {
  minute: number;
  version: number | null;
  requests: number;
  errors: number;
  limited: number;
  /** Sum and count of the time Sluice added before forwarding (ms), for calls that were forwarded. */
  addedMs: number;
  addedN: number;
}

/** Figures of one side of the comparison. Rates are fractions of requests; null without traffic. */
export interface WatchFigures {
  from: string;
  to: string;
  minutes: number;
  requests: number;
  errorRate: number | null;
  limitedRate: number | null;
  /** Mean time Sluice added before forwarding, ms. */
  addedLatencyMs: number | null;
  /** Requests per minute. */
  throughput: number;
}

/** How far a figure may move before the watch alerts. */
export interface WatchThresholds {
  /** Absolute rise of the error rate (default 0.02: two points). */
  errorRate: number;
  /** Absolute rise of the 429 rate (default 0.05). */
  limitedRate: number;
  /** Rise of the mean added latency in ms (default 1). */
  addedLatencyMs: number;
  /** Fall of throughput as a fraction of before (default 0.5: half the requests). */
  throughputDrop: number;
  /** Fewer requests than this on either side: no verdict (default 20). */
  minRequests: number;
}

export const DEFAULT_WATCH_THRESHOLDS: WatchThresholds = {
  errorRate: 0.02,
  limitedRate: 0.05,
  addedLatencyMs: 1,
  throughputDrop: 0.5,
  minRequests: 20,
};

export interface WatchReport {
  version: number | null;
  previous: number | null;
  appliedAt: string;
  before: WatchFigures;
  after: WatchFigures;
  /** One line per figure beyond its threshold; empty when none is. */
  regressions: string[];
  /** `not enough traffic` when a side has fewer than `minRequests` requests. */
  verdict: 'ok' | 'regressed' | 'not enough traffic';
  /** The one command that undoes the apply. */
  rollback: string;
}

export class PolicyWatch {
  private readonly cells: Cell[] = [];
  private last: Cell | undefined;

  constructor(private readonly retainMinutes = 24 * 60) {}

  /** One decision at `now` (ms). */
  observe(o: Outcome, now: number): void {
    const minute = Math.floor(now / MINUTE);
    const version = o.policyVersion ?? null;
    let c = this.last;
    if (c === undefined || c.minute !== minute || c.version !== version) c = this.cellFor(minute, version);
    c.requests++;
    if (o.decision === 'error') c.errors++;
    if (o.status === 429) c.limited++;
    const added = o.stageMs?.gateway;
    if (added !== undefined && added >= 0) {
      c.addedMs += added;
      c.addedN++;
    }
  }

  private cellFor(minute: number, version: number | null): Cell {
    for (let i = this.cells.length - 1; i >= 0 && this.cells[i]!.minute >= minute; i--) {
      const c = this.cells[i]!;
      if (c.minute === minute && c.version === version) {
        this.last = c;
        return c;
      }
    }
    const c: Cell = { minute, version, requests: 0, errors: 0, limited: 0, addedMs: 0, addedN: 0 };
    this.cells.push(c);
    // Clock steps backwards are rare; keep the list ordered by minute anyway.
    if (this.cells.length > 1 && this.cells[this.cells.length - 2]!.minute > minute)
      this.cells.sort((a, b) => a.minute - b.minute);
    let drop = 0;
    while (drop < this.cells.length && this.cells[drop]!.minute < minute - this.retainMinutes) drop++;
    if (drop > 0) this.cells.splice(0, drop);
    this.last = c;
    return c;
  }

  /** Figures over [from, to) ms; `versions` keeps only cells of those versions (all when undefined). */
  figures(from: number, to: number, versions?: (v: number | null) => boolean): WatchFigures {
    let requests = 0;
    let errors = 0;
    let limited = 0;
    let addedMs = 0;
    let addedN = 0;
    const lo = Math.floor(from / MINUTE);
    const hi = Math.ceil(to / MINUTE);
    for (const c of this.cells) {
      if (c.minute < lo || c.minute >= hi || (versions && !versions(c.version))) continue;
      requests += c.requests;
      errors += c.errors;
      limited += c.limited;
      addedMs += c.addedMs;
      addedN += c.addedN;
    }
    const minutes = Math.max(to - from, 1) / MINUTE;
    return {
      from: new Date(from).toISOString(),
      to: new Date(to).toISOString(),
      minutes: Math.round(minutes * 100) / 100,
      requests,
      errorRate: requests > 0 ? errors / requests : null,
      limitedRate: requests > 0 ? limited / requests : null,
      addedLatencyMs: addedN > 0 ? addedMs / addedN : null,
      throughput: requests / minutes,
    };
  }

  /**
   * The N minutes before the apply of `version` (at `appliedAt`) against the N minutes after it (or
   * up to `now`, when fewer have passed). Before counts versions other than `version`; after counts
   * `version` only, so the minute of the apply is split by version, not guessed.
   */
  compare(
    a: { version: number | null; previous: number | null; appliedAt: number },
    minutes: number,
    now: number,
    thresholds: WatchThresholds = DEFAULT_WATCH_THRESHOLDS,
  ): WatchReport {
    const span = minutes * MINUTE;
    const end = Math.min(a.appliedAt + span, Math.max(now, a.appliedAt + 1));
    const before = this.figures(a.appliedAt - span, a.appliedAt + 1, (v) => v !== a.version);
    before.to = new Date(a.appliedAt).toISOString();
    before.minutes = minutes;
    before.throughput = before.requests / minutes;
    const after = this.figures(a.appliedAt, end, (v) => v === a.version);
    const regressions = compareFigures(before, after, thresholds);
    const enough = before.requests >= thresholds.minRequests && after.requests >= thresholds.minRequests;
    return {
      version: a.version,
      previous: a.previous,
      appliedAt: new Date(a.appliedAt).toISOString(),
      before,
      after,
      regressions: enough ? regressions : [],
      verdict: !enough ? 'not enough traffic' : regressions.length > 0 ? 'regressed' : 'ok',
      rollback: a.previous !== null ? `sluice policy rollback ${a.previous}` : 'sluice policy rollback',
    };
  }
}

const pct = (x: number) => `${(x * 100).toFixed(1)}%`;

/** The figures that moved beyond their threshold, one readable line each. */
export function compareFigures(b: WatchFigures, a: WatchFigures, t: WatchThresholds): string[] {
  const out: string[] = [];
  if (a.errorRate !== null && a.errorRate - (b.errorRate ?? 0) > t.errorRate)
    out.push(`error rate ${pct(b.errorRate ?? 0)} -> ${pct(a.errorRate)}`);
  if (a.limitedRate !== null && a.limitedRate - (b.limitedRate ?? 0) > t.limitedRate)
    out.push(`429 rate ${pct(b.limitedRate ?? 0)} -> ${pct(a.limitedRate)}`);
  if (
    a.addedLatencyMs !== null &&
    b.addedLatencyMs !== null &&
    a.addedLatencyMs - b.addedLatencyMs > t.addedLatencyMs
  )
    out.push(`added latency ${b.addedLatencyMs.toFixed(2)} ms -> ${a.addedLatencyMs.toFixed(2)} ms`);
  if (b.throughput > 0 && a.throughput < b.throughput * (1 - t.throughputDrop))
    out.push(`throughput ${b.throughput.toFixed(1)}/min -> ${a.throughput.toFixed(1)}/min`);
  return out;
}

/** The report as the CLI prints it. */
export function formatWatch(r: WatchReport): string {
  const row = (name: string, f: (x: WatchFigures) => string) =>
    `${name.padEnd(16)}${f(r.before).padStart(14)}${f(r.after).padStart(14)}\n`;
  const rate = (x: number | null) => (x === null ? '-' : pct(x));
  let s = `policy version ${r.version ?? '(none)'} applied ${r.appliedAt} (previous: ${r.previous ?? '(none)'})\n`;
  s += `${''.padEnd(16)}${'before'.padStart(14)}${'after'.padStart(14)}\n`;
  s += row('minutes', (x) => String(x.minutes));
  s += row('requests', (x) => String(x.requests));
  s += row('error rate', (x) => rate(x.errorRate));
  s += row('429 rate', (x) => rate(x.limitedRate));
  s += row('added latency', (x) => (x.addedLatencyMs === null ? '-' : `${x.addedLatencyMs.toFixed(2)} ms`));
  s += row('throughput', (x) => `${x.throughput.toFixed(1)}/min`);
  if (r.verdict === 'regressed') s += `ALERT: ${r.regressions.join('; ')}\nroll back with: ${r.rollback}\n`;
  else s += `${r.verdict}\n`;
  return s;
}
