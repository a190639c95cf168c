/**
 * Labelled metric families for the request path, cheaper than prom-client's own classes.
 *
 * prom-client hashes and validates the label object on every `inc`/`observe` (about 200 ns each
 * here). These families instead find a series through nested Maps keyed by label values (no string
 * building, no label object per call) and keep plain numbers; prom-client only formats them when
 * `/metrics` is scraped, through the same `get()` shape its own metrics return, so the exposition
 * (escaping, `+Inf`, `_bucket`/`_sum`/`_count`) stays prom-client's.
 */
import type { Metric, Registry } from 'prom-client';

/** Label value that stands for every value past a family's cap. */
export const OTHER = 'other';
/** Label value for a missing value (null, undefined or empty). */
export const NONE = 'none';

/**
 * A bounded set of label values: the first `max` distinct values are kept (cut to `maxLength`
 * characters), every later one is reported as `other`, so no caller can grow the series count.
 * Values past the cap are not remembered, so memory stays bounded too.
 */
export class LabelValues {
  private readonly admitted = new Map<string, string>();

  constructor(
    readonly max: number,
    readonly maxLength = 128,
  ) {}

  of(raw: string | null | undefined): string {
    if (raw === null || raw === undefined || raw === '') return NONE;
    const hit = this.admitted.get(raw);
    if (hit !== undefined) return hit;
    if (this.admitted.size >= this.max) return OTHER;
    const v = raw.length > this.maxLength ? raw.slice(0, this.maxLength) : raw;
    this.admitted.set(raw, v);
    return v;
  }

  /** Distinct values admitted so far (excluding `other`). */
  get size(): number {
    return this.admitted.size;
  }
}

type Labels = Record<string, string>;

interface ExportedValue {
  value: number;
  labels: Labels;
  metricName?: string;
}

interface Exported {
  name: string;
  help: string;
  type: 'counter' | 'gauge' | 'histogram';
  values: ExportedValue[];
  aggregator: 'sum' | 'omit';
}

/** Series of one family, found by up to four label values through nested Maps. */
abstract class Family<C extends { labels: Labels }> {
  protected readonly cells: C[] = [];
  // Nested maps: value1 -> (value2 -> (value3 -> cell)); depth = number of labels.
  private readonly root = new Map<string, unknown>();
  private single: C | undefined;
  /** Called before each export (e.g. to read a queue depth at scrape time). */
  collect: (() => void) | undefined;

  constructor(
    readonly name: string,
    readonly help: string,
    readonly labelNames: readonly string[],
  ) {}

  protected abstract make(labels: Labels): C;

  private add(values: string[]): C {
    const labels: Labels = {};
    for (let i = 0; i < this.labelNames.length; i++) labels[this.labelNames[i]] = values[i];
    const c = this.make(labels);
    this.cells.push(c);
    return c;
  }

  /** The family's only series (no labels). */
  at0(): C {
    if (!this.single) this.single = this.add([]);
    return this.single;
  }

  at1(a: string): C {
    let c = this.root.get(a) as C | undefined;
    if (c === undefined) {
      c = this.add([a]);
      this.root.set(a, c);
    }
    return c;
  }

  at2(a: string, b: string): C {
    let m = this.root.get(a) as Map<string, C> | undefined;
    if (m === undefined) {
      m = new Map();
      this.root.set(a, m);
    }
    let c = m.get(b);
    if (c === undefined) {
      c = this.add([a, b]);
      m.set(b, c);
    }
    return c;
  }

  at3(a: string, b: string, x: string): C {
    let m = this.root.get(a) as Map<string, Map<string, C>> | undefined;
    if (m === undefined) {
      m = new Map();
      this.root.set(a, m);
    }
    let n = m.get(b);
    if (n === undefined) {
      n = new Map();
      m.set(b, n);
    }
    let c = n.get(x);
    if (c === undefined) {
      c = this.add([a, b, x]);
      n.set(x, c);
    }
    return c;
  }

  at4(a: string, b: string, x: string, y: string): C {
    let m = this.root.get(a) as Map<string, Map<string, Map<string, C>>> | undefined;
    if (m === undefined) {
      m = new Map();
      this.root.set(a, m);
    }
    let n = m.get(b);
    if (n === undefined) {
      n = new Map();
      m.set(b, n);
    }
    let o = n.get(x);
    if (o === undefined) {
      o = new Map();
      n.set(x, o);
    }
    let c = o.get(y);
    if (c === undefined) {
      c = this.add([a, b, x, y]);
      o.set(y, c);
    }
    return c;
  }

  /** Number of series in the family. */
  get seriesCount(): number {
    return this.cells.length;
  }

  /** Zeroes every series (prom-client's `registry.resetMetrics()`); series stay known. */
  abstract reset(): void;

  /** The export prom-client's Registry formats (same shape as its own metrics' `get()`). */
  abstract get(): Promise<Exported>;

  /** Adds the family to a registry. */
  registerIn(registry: Registry): this {
    // The Registry only calls `name`, `get()` and `reset()`; its typings name its own classes.
    registry.registerMetric(this as unknown as Metric);
    return this;
  }
}

export interface ValueCell {
  readonly labels: Labels;
  value: number;
}

export class FastCounter extends Family<ValueCell> {
  readonly type = 'counter';
  readonly aggregator = 'sum';

  protected make(labels: Labels): ValueCell {
    return { labels, value: 0 };
  }

  reset(): void {
    for (const c of this.cells) c.value = 0;
  }

  async get(): Promise<Exported> {
    this.collect?.();
    return {
      name: this.name,
      help: this.help,
      type: 'counter',
      aggregator: 'sum',
      values: this.cells.map((c) => ({ value: c.value, labels: c.labels })),
    };
  }
}

export class FastGauge extends Family<ValueCell> {
  readonly type = 'gauge';
  readonly aggregator = 'omit';

  protected make(labels: Labels): ValueCell {
    return { labels, value: 0 };
  }

  reset(): void {
    for (const c of this.cells) c.value = 0;
  }

  async get(): Promise<Exported> {
    this.collect?.();
    return {
      name: this.name,
      help: this.help,
      type: 'gauge',
      aggregator: 'omit',
      values: this.cells.map((c) => ({ value: c.value, labels: c.labels })),
    };
  }
}

export interface HistogramCell {
  readonly labels: Labels;
  /** Observations per bucket, not cumulative; the last slot counts values above every bound. */
  readonly counts: Float64Array;
  sum: number;
  count: number;
}

export class FastHistogram extends Family<HistogramCell> {
  readonly type = 'histogram';
  readonly aggregator = 'sum';
  private readonly bounds: Float64Array;

  constructor(name: string, help: string, labelNames: readonly string[], buckets: readonly number[]) {
    super(name, help, labelNames);
    this.bounds = Float64Array.from([...buckets].sort((a, b) => a - b));
  }

  protected make(labels: Labels): HistogramCell {
    return { labels, counts: new Float64Array(this.bounds.length + 1), sum: 0, count: 0 };
  }

  /** Records one observation in a series (values are not checked; NaN is ignored). */
  observe(cell: HistogramCell, v: number): void {
    if (Number.isNaN(v)) return;
    const b = this.bounds;
    let i = 0;
    // Linear scan: a dozen bounds, and most observations land in the first few.
    while (i < b.length && v > b[i]) i++;
    cell.counts[i]++;
    cell.sum += v;
    cell.count++;
  }

  reset(): void {
    for (const c of this.cells) {
      c.counts.fill(0);
      c.sum = 0;
      c.count = 0;
    }
  }

  async get(): Promise<Exported> {
    this.collect?.();
    const values: ExportedValue[] = [];
    const bucketName = `${this.name}_bucket`;
    for (const c of this.cells) {
      let cumulative = 0;
      for (let i = 0; i < this.bounds.length; i++) {
        cumulative += c.counts[i];
        values.push({
          metricName: bucketName,
          labels: { ...c.labels, le: String(this.bounds[i]) },
          value: cumulative,
        });
      }
      values.push({ metricName: bucketName, labels: { ...c.labels, le: '+Inf' }, value: c.count });
      values.push({ metricName: `${this.name}_sum`, labels: c.labels, value: c.sum });
      values.push({ metricName: `${this.name}_count`, labels: c.labels, value: c.count });
    }
    return { name: this.name, help: this.help, type: 'histogram', aggregator: 'sum', values };
  }
}
