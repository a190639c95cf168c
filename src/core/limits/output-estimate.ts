/**
 * Output reservation that fits real clients.
 *
 * SDKs send large default `max_tokens` (the AI SDK 64000 for Claude models, LangChain 16384) that
 * almost no answer uses. Reserving the declared maximum makes a 40k TPM limit refuse a request as
 * "can never fit", and lets three concurrent streams exhaust it while each produces 200 tokens.
 * So, in `estimate` mode, the output reserved is
 *
 *   min(declared max_tokens, p-th percentile of the outputs observed for this key and model)
 *
 * falling back to the model's observations (any key), then to `initial` while too few are known.
 * Settle replaces the reservation by the actual usage; an answer longer than its reservation is
 * booked as debt that later requests wait out (sliding windows, GCRA), as the design allows.
 *
 * Worst-case overshoot of one window (see {@link worstCaseOvershoot}): every request admitted while
 * the bucket had room may produce its declared maximum instead of its reservation, so at most
 * ⌊(limit + burst) / r⌋ · (M − r) tokens beyond the limit, with r the smallest reservation made
 * (input + reserved output) and M the largest output a request may produce (its max_tokens; the
 * tier's `maxTokens` caps it). That excess is debt: the next requests wait it out, so over any
 * two consecutive windows the average returns to the limit. A tier `maxTokens` bounds M, a
 * concurrency limit bounds the number of requests in flight, and `mode: declared` restores the
 * old behaviour (reserve the declared maximum: no overshoot, but SDK defaults refused).
 *
 * Pure: no clock, no I/O. The sketch is bounded (keys evicted oldest-first, counts halved as they
 * grow, so it follows recent behaviour).
 */

export interface OutputReserveOptions {
  /** `estimate` (default): reserve the observed percentile capped by max_tokens; `declared`: reserve max_tokens. */
  mode: 'estimate' | 'declared';
  /** Percentile of observed outputs reserved, in (0, 1]. */
  percentile: number;
  /** Reserved while fewer than `minSamples` outputs were observed for the key and model. */
  initial: number;
  /** Observations needed before the percentile is trusted. */
  minSamples: number;
}

export const DEFAULT_OUTPUT_RESERVE: OutputReserveOptions = {
  mode: 'estimate',
  percentile: 0.95,
  // 1024: ten concurrent first calls fit a 40k TPM limit with room for their prompts.
  initial: 1024,
  minSamples: 10,
};

/** Buckets per doubling: 8 gives bucket edges 9% apart, so a percentile is over by at most 9%. */
const STEPS = 8;
/** Up to 2^21 (2M) output tokens; larger observations land in the last bucket. */
const BUCKETS = 21 * STEPS + 1;
/** Counts are halved when a histogram reaches this many samples: recent outputs weigh more. */
const HALVE_AT = 2000;

function bucketOf(tokens: number): number {
  if (tokens <= 0) return 0;
  return Math.min(BUCKETS - 1, Math.ceil(STEPS * Math.log2(tokens + 1)));
}

/** The upper edge of a bucket, in tokens: a percentile reads as "at most this many". */
function edgeOf(bucket: number): number {
  return Math.ceil(2 ** (bucket / STEPS) - 1);
}

interface Histogram {
  n: number;
  counts: Uint32Array;
  /** The key it belongs to, or null for a model's own histogram (any key). */
  keyId: string | null;
  model: string;
  /** Neighbours in the recency list (least recently observed first). */
  older: Histogram | null;
  newer: Histogram | null;
}

/**
 * Observed output tokens per key and model (and per model across keys), as log-scale histograms.
 * `maxKeys` bounds memory (~700 bytes a histogram): the least recently observed is evicted first.
 *
 * Found through a map per key (by model) and a map of the models' own histograms, and ordered by a
 * list of last observation: an observation touches the list (two pointers) instead of deleting and
 * re-inserting a composed `key + model` string in one map, twice per answered call.
 */
export class OutputSketch {
  private readonly byKey = new Map<string, Map<string, Histogram>>();
  private readonly byModel = new Map<string, Histogram>();
  private oldest: Histogram | null = null;
  private newest: Histogram | null = null;
  private count = 0;

  constructor(private readonly maxKeys = 20_000) {}

  get size(): number {
    return this.count;
  }

  /** Records one answer's output tokens (called at settle, with the usage the upstream reported). */
  observe(keyId: string, model: string, outputTokens: number): void {
    if (!Number.isFinite(outputTokens) || outputTokens < 0) return;
    const b = bucketOf(outputTokens);
    this.add(keyId, model, b);
    this.add(null, model, b);
  }

  private find(keyId: string | null, model: string): Histogram | undefined {
    return keyId === null ? this.byModel.get(model) : this.byKey.get(keyId)?.get(model);
  }

  private add(keyId: string | null, model: string, b: number): void {
    let h = this.find(keyId, model);
    if (h) this.unlink(h);
    else {
      while (this.count >= this.maxKeys && this.oldest) this.evict(this.oldest);
      h = { n: 0, counts: new Uint32Array(BUCKETS), keyId, model, older: null, newer: null };
      if (keyId === null) this.byModel.set(model, h);
      else {
        let models = this.byKey.get(keyId);
        if (!models) {
          models = new Map();
          this.byKey.set(keyId, models);
        }
        models.set(model, h);
      }
      this.count++;
    }
    // The most recently observed goes last.
    h.older = this.newest;
    if (this.newest) this.newest.newer = h;
    else this.oldest = h;
    this.newest = h;
    h.counts[b]! += 1;
    h.n++;
    if (h.n >= HALVE_AT) {
      let n = 0;
      for (let i = 0; i < BUCKETS; i++) {
        h.counts[i] = h.counts[i]! >>> 1;
        n += h.counts[i]!;
      }
      h.n = n;
    }
  }

  private unlink(h: Histogram): void {
    if (h.older) h.older.newer = h.newer;
    else this.oldest = h.newer;
    if (h.newer) h.newer.older = h.older;
    else this.newest = h.older;
    h.older = null;
    h.newer = null;
  }

  private evict(h: Histogram): void {
    this.unlink(h);
    this.count--;
    if (h.keyId === null) {
      this.byModel.delete(h.model);
      return;
    }
    const models = this.byKey.get(h.keyId);
    if (!models) return;
    models.delete(h.model);
    if (models.size === 0) this.byKey.delete(h.keyId);
  }

  /** The q-quantile of observations (upper bucket edge), or undefined with fewer than `minSamples`. */
  quantile(keyId: string | null, model: string, q: number, minSamples: number): number | undefined {
    const h = this.find(keyId, model);
    if (!h || h.n < Math.max(1, minSamples)) return undefined;
    const rank = Math.ceil(Math.min(1, Math.max(0, q)) * h.n);
    let seen = 0;
    for (let i = 0; i < BUCKETS; i++) {
      seen += h.counts[i]!;
      if (seen >= rank && seen > 0) return edgeOf(i);
    }
    return edgeOf(BUCKETS - 1);
  }

  /** The estimate for a key and model: its own percentile, else the model's, else undefined. */
  estimate(keyId: string, model: string, opts: OutputReserveOptions): number | undefined {
    return (
      this.quantile(keyId, model, opts.percentile, opts.minSamples) ??
      this.quantile(null, model, opts.percentile, opts.minSamples)
    );
  }
}

/**
 * Output tokens to reserve for one choice. `declared`: the request's max_tokens (undefined if none);
 * `fallback`: what `declared` mode reserves without one (`limits.defaultOutputTokens`); `observed`:
 * the sketch's estimate (undefined while unknown).
 */
export function outputReservation(
  declared: number | undefined,
  fallback: number,
  observed: number | undefined,
  opts: OutputReserveOptions,
): number {
  if (opts.mode === 'declared') return declared ?? fallback;
  const guess = observed ?? opts.initial;
  // A request without max_tokens may produce up to the model's own limit: the guess stands.
  return Math.max(1, Math.min(declared ?? Number.POSITIVE_INFINITY, guess));
}

/**
 * The most a window can be overshot when requests reserve `reservation` tokens each (input plus
 * reserved output) but may each produce up to `maxOutput` beyond their input: every request
 * admitted before the bucket fills may spend `maxOutput − reservedOutput` more than it reserved.
 */
export function worstCaseOvershoot(
  capacity: number,
  reservation: { input: number; output: number },
  maxOutput: number,
): number {
  const r = reservation.input + reservation.output;
  if (r <= 0) return Number.POSITIVE_INFINITY;
  return Math.floor(capacity / r) * Math.max(0, maxOutput - reservation.output);
}

/** What a tier's `maxTokens` does to a request's declared output maximum. */
export type MaxTokensDecision =
  | { kind: 'ok' }
  | { kind: 'refuse'; max: number; param: string }
  | { kind: 'clamp'; param: string; from: number; to: number };

/** The body field that declares the output maximum, per endpoint and what the caller sent. */
export function maxTokensParam(endpoint: string, body: Record<string, unknown>): string | undefined {
  if (endpoint === 'responses') return 'max_output_tokens' in body ? 'max_output_tokens' : undefined;
  if (endpoint === 'chat' && 'max_completion_tokens' in body) return 'max_completion_tokens';
  return 'max_tokens' in body ? 'max_tokens' : undefined;
}

/**
 * A tier's `maxTokens` applied to a request: refused (mode `refuse`, as before), or lowered to the
 * tier's maximum (mode `clamp`: the forwarded body carries the lower value and the response says so in
 * `x-sluice-max-tokens-clamped: <asked>-><forwarded>`).
 */
export function applyTierMaxTokens(
  endpoint: string,
  body: Record<string, unknown>,
  tierMax: number | undefined,
  mode: 'refuse' | 'clamp',
): MaxTokensDecision {
  if (tierMax === undefined) return { kind: 'ok' };
  const param = maxTokensParam(endpoint, body);
  if (!param) return { kind: 'ok' };
  const v = body[param];
  if (typeof v !== 'number' || v <= tierMax) return { kind: 'ok' };
  if (mode === 'clamp') return { kind: 'clamp', param, from: v, to: tierMax };
  return { kind: 'refuse', max: tierMax, param };
}
