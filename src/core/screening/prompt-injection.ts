/**
 * Prompt-injection / jailbreak detector: logistic regression over hashed character and word
 * n-grams (see `injection-features.ts`), trained by `scripts/train-screening.mjs`.
 *
 * A text is normalised first (`normalise.ts`); the score is the highest of
 *   - the whole normalised text,
 *   - 800-character windows (stride 400) of a long text, so one injected paragraph inside a long
 *     retrieved document or tool result is not diluted by the benign text around it,
 *   - every decode probe (base64, hex, URL, ROT13, hidden tag characters).
 * The shipped model's bias is shifted so that the threshold chosen by cross-validation sits at
 * probability 0.5: the policy's default `threshold: 0.5` is that operating point.
 *
 * Pure: the model is passed in (`shippedInjectionModel()` in `injection-model.ts` decodes the one
 * in the package); no I/O, no clock.
 */

import { type Census, unitsOf } from './census.js';
import {
  CHAR_NGRAMS,
  FEATURE_BITS,
  FNV_OFFSET,
  FNV_PRIME,
  forEachFeature,
  isWordChar,
  LENGTH_PRIOR,
} from './injection-features.js';
import { normalise } from './normalise.js';

/** The weights file as written by the training script (JSON, weights as base64 int16 LE). */
export interface InjectionModelFile {
  format: 'sluice-injection-v1';
  bits: number;
  bias: number;
  /** weight = int16 * scale */
  scale: number;
  weights: string;
  /** Training figures, for `docs/screening.md` and `sluice screen --version`-style reporting. */
  meta?: Record<string, unknown>;
}

export interface InjectionModel {
  bits: number;
  bias: number;
  weights: Float32Array;
}

export const WINDOW_CHARS = 800;
export const WINDOW_STRIDE = 400;

export function decodeInjectionModel(f: InjectionModelFile): InjectionModel {
  if (f.format !== 'sluice-injection-v1') throw new Error(`unknown injection model format ${f.format}`);
  const bin = atob(f.weights);
  const n = 1 << f.bits;
  if (bin.length !== n * 2) throw new Error(`injection model has ${bin.length / 2} weights, expected ${n}`);
  const weights = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const u = bin.charCodeAt(2 * i) | (bin.charCodeAt(2 * i + 1) << 8);
    weights[i] = ((u << 16) >> 16) * f.scale;
  }
  return { bits: f.bits, bias: f.bias, weights };
}

export function encodeInjectionModel(
  m: { bits: number; bias: number; weights: ArrayLike<number> },
  meta?: Record<string, unknown>,
): InjectionModelFile {
  let max = 0;
  for (let i = 0; i < m.weights.length; i++) max = Math.max(max, Math.abs(m.weights[i]!));
  const scale = max > 0 ? max / 32767 : 1;
  let bin = '';
  for (let i = 0; i < m.weights.length; i++) {
    const q = Math.max(-32767, Math.min(32767, Math.round(m.weights[i]! / scale)));
    const u = q & 0xffff;
    bin += String.fromCharCode(u & 0xff, u >> 8);
  }
  return { format: 'sluice-injection-v1', bits: m.bits, bias: m.bias, scale, weights: btoa(bin), meta };
}

/**
 * Scratch state per model: a bitset of the features seen in the current text (binary features
 * without allocating; 32 KiB at 18 bits, so it stays in L1 beside the weights' cache lines, where a
 * byte per bucket took 256 KiB) and the feature sums and counts per window stride.
 */
interface Scratch {
  marks: Uint32Array;
  /** Words of `marks` written by the current text, cleared after it. */
  touched: Int32Array;
  bs: Float64Array;
  bc: Uint32Array;
  /** Word features found during the character pass, visited after it: bucket, and position. */
  wb: Int32Array;
  wp: Int32Array;
}
const scratchFor = new WeakMap<InjectionModel, Scratch>();

function scratch(model: InjectionModel, n: number): Scratch {
  let s = scratchFor.get(model);
  if (!s) {
    s = {
      marks: new Uint32Array(Math.max(1, (1 << model.bits) >>> 5)),
      touched: new Int32Array(0),
      bs: new Float64Array(0),
      bc: new Uint32Array(0),
      wb: new Int32Array(0),
      wp: new Int32Array(0),
    };
    scratchFor.set(model, s);
  }
  const blocks = Math.ceil(n / WINDOW_STRIDE) + 1;
  if (s.bs.length < blocks) {
    s.bs = new Float64Array(Math.max(blocks, s.bs.length * 2));
    s.bc = new Uint32Array(s.bs.length);
  }
  // At most 4 character features per position plus 2 word features per word.
  if (s.touched.length < 6 * n + 16) s.touched = new Int32Array(Math.max(6 * n + 16, s.touched.length * 2));
  // Two word features per word, at most n / 2 + 1 words.
  if (s.wb.length < n + 4) {
    s.wb = new Int32Array(Math.max(n + 4, s.wb.length * 2));
    s.wp = new Int32Array(s.wb.length);
  }
  return s;
}

/** `isWordChar` for every UTF-16 code unit, looked up once per character of the word pass. */
const WORD_CHAR = new Uint8Array(65536);
for (let c = 0; c < 65536; c++) WORD_CHAR[c] = isWordChar(c) ? 1 : 0;

/** The character n-gram lengths the written-out pass below visits (2, 3 and 5; see CHAR_NGRAMS). */
const PASS_NGRAMS = 0b10110;

/**
 * Feature sums through the shared `forEachFeature`, for a model trained with other n-gram lengths
 * than the written-out pass visits (training experiments): the same features, sums equal up to
 * floating-point rounding (added in another order).
 */
function genericSums(
  model: InjectionModel,
  text: string,
  sum: Float64Array,
  cnt: Uint32Array,
): { total: number; count: number } {
  const seen = new Set<number>();
  let total = 0;
  let count = 0;
  forEachFeature(text, model.bits, (b, p) => {
    if (seen.has(b)) return;
    seen.add(b);
    total += model.weights[b]!;
    count++;
    sum[p] += model.weights[b]!;
    cnt[p]++;
  });
  return { total, count };
}

/** {@link injectionMargins} through `forEachFeature` (any CHAR_NGRAMS); exported for its test. */
export function genericMargins(
  model: InjectionModel,
  text: string,
): { whole: number; best: number; window?: { start: number; end: number } } {
  const n = text.length;
  const sum = new Float64Array(n + 1);
  const cnt = new Uint32Array(n + 1);
  const g = genericSums(model, text, sum, cnt);
  const blocks = Math.ceil(n / WINDOW_STRIDE);
  const bs = new Float64Array(blocks + 1);
  const bc = new Uint32Array(blocks + 1);
  for (let i = 0; i < n; i++) {
    bs[Math.floor(i / WINDOW_STRIDE)] += sum[i]!;
    bc[Math.floor(i / WINDOW_STRIDE)] += cnt[i]!;
  }
  return windowMargins(model, n, g.total, g.count, bs, bc, n > WINDOW_CHARS + WINDOW_STRIDE / 2);
}

/** The raw margin (log-odds) of one already-normalised text. */
export function injectionMargin(model: InjectionModel, text: string): number {
  return injectionMargins(model, text).whole;
}

/**
 * `String.fromCharCode(c).toLowerCase()` for c up to U+00FF (each is one code unit), and c itself
 * above: so it also leaves a text that `toLowerCase` already lower-cased as it is (nothing there
 * is an upper-case Latin-1 letter), and one table serves both paths of the pass below.
 */
const LOWER_LATIN1 = new Uint16Array(65536);
for (let c = 0; c < 65536; c++)
  LOWER_LATIN1[c] = c < 256 ? String.fromCharCode(c).toLowerCase().charCodeAt(0) : c;

/** The FNV-1a state after one code unit below 256 (the first step of every character n-gram). */
const FNV_FIRST = new Int32Array(256);
for (let c = 0; c < 256; c++) FNV_FIRST[c] = Math.imul(FNV_OFFSET ^ c, FNV_PRIME);

/** Bucket mask of the shipped feature space (a constant, so the hot loops keep one register free). */
const MASK = (1 << FEATURE_BITS) - 1;

/**
 * One pass over `text`: the whole-text margin and the best window margin. A feature counts once,
 * at its first occurrence (binary features); a window's margin uses the features first seen inside
 * it, so windows cost no second pass.
 *
 * Window sums are taken per stride of WINDOW_STRIDE characters as the difference of the running
 * total at the stride's two ends, so the per-character loops carry nothing for windows. With the
 * shipped weights the differences are exact, as is every sum here: each weight is an int16 times
 * the model's scale rounded to float32 (24 bits; the smallest weight is about 2^-13, so every
 * weight is a multiple of 2^-36), and a double holds every multiple of 2^-36 below 2^17 exactly,
 * whatever the order of the additions (`injection-fast.test.ts` compares to the feature-by-feature
 * reference with `toBe`). Were they not exact, scores would move by about 1e-16.
 */
export function injectionMargins(
  model: InjectionModel,
  text: string,
  latin1 = false,
): { whole: number; best: number; window?: { start: number; end: number } } {
  if (CHAR_NGRAMS !== PASS_NGRAMS || model.bits !== FEATURE_BITS) return genericMargins(model, text);
  const w = model.weights;
  const n = text.length;
  const sc = scratch(model, n);
  const { marks, touched, bs, bc, wb, wp } = sc;
  let nt = 0;
  const useWindows = n > WINDOW_CHARS + WINDOW_STRIDE / 2;
  // Strides of positions before n (a feature at n, the last word's, belongs to the whole text only).
  const blocks = Math.ceil(n / WINDOW_STRIDE);
  if (useWindows) {
    bs.fill(0, 0, blocks + 1);
    bc.fill(0, 0, blocks + 1);
  }
  // The loops below are `forEachFeature` (injection-features.ts) inlined, visiting the same
  // features in the same order: no closure call per feature.
  // `latin1`: the caller knows every code unit is at most U+00FF; each then lower-cases to one
  // unit on its own (no U+0130, no final sigma), so the loops look up LOWER_LATIN1 per unit
  // instead of reading a lower-cased copy (4 KB allocated for a 4 kB prompt, every call).
  const s = latin1 ? text : text.toLowerCase();
  const low = LOWER_LATIN1;
  const len = s.length;
  // The units read from a natively copied array rather than by charCodeAt (see `unitsOf`).
  const u = unitsOf(s);
  let total = 0;
  let count = 0;
  // The next five characters from position i (32, a space, outside the text), slid along.
  let c0 = 32;
  let c1 = len > 0 ? low[u[0]!]! : 32;
  let c2 = len > 1 ? low[u[1]!]! : 32;
  let c3 = len > 2 ? low[u[2]!]! : 32;
  let c4 = len > 3 ? low[u[3]!]! : 32;
  let i = -1;
  // Word state (see the word features below), carried through the character pass.
  let prev = 0;
  let wh = FNV_OFFSET;
  let inWord = false;
  let nw = 0;
  // Stride by stride (position -1, the space before the text, is in the first); past n, or
  // without windows, in one go.
  for (let blk = 0; ; blk++) {
    const inStrides = useWindows && i < n;
    const stop = inStrides ? Math.min(n, (blk + 1) * WINDOW_STRIDE) : len;
    const t0 = total;
    const k0 = count;
    for (; i < stop; i++) {
      // Single CJK, kana and hangul characters.
      if (c0 >= 0x2e80 && i >= 0) {
        const x0 = Math.imul(c0 ^ 0x7feb352d, 0x846ca68b);
        const b = (x0 ^ (x0 >>> 15)) & MASK;
        const bit = 1 << (b & 31);
        if ((marks[b >>> 5]! & bit) === 0) {
          marks[b >>> 5]! |= bit;
          touched[nt++] = b >>> 5;
          total += w[b]!;
          count++;
        }
      }
      // Character 2-, 3- and 5-grams starting at i, written out (a loop over the lengths with a
      // test per length cost a third of the pass); one ending in the space past the text is the last.
      let h = Math.imul((c0 < 256 ? FNV_FIRST[c0]! : Math.imul(FNV_OFFSET ^ c0, FNV_PRIME)) ^ c1, FNV_PRIME);
      let x = Math.imul(h ^ (h >>> 15), 0x2c1b3c6d);
      let b = (x ^ (x >>> 12)) & MASK;
      let word = b >>> 5;
      let bit = 1 << (b & 31);
      let m = marks[word]!;
      if ((m & bit) === 0) {
        marks[word] = m | bit;
        touched[nt++] = word;
        total += w[b]!;
        count++;
      }
      if (i + 1 < len) {
        h = Math.imul(h ^ c2, FNV_PRIME);
        x = Math.imul(h ^ (h >>> 15), 0x2c1b3c6d);
        b = (x ^ (x >>> 12)) & MASK;
        word = b >>> 5;
        bit = 1 << (b & 31);
        m = marks[word]!;
        if ((m & bit) === 0) {
          marks[word] = m | bit;
          touched[nt++] = word;
          total += w[b]!;
          count++;
        }
        if (i + 3 < len) {
          h = Math.imul(Math.imul(h ^ c3, FNV_PRIME) ^ c4, FNV_PRIME);
          x = Math.imul(h ^ (h >>> 15), 0x2c1b3c6d);
          b = (x ^ (x >>> 12)) & MASK;
          word = b >>> 5;
          bit = 1 << (b & 31);
          m = marks[word]!;
          if ((m & bit) === 0) {
            marks[word] = m | bit;
            touched[nt++] = word;
            total += w[b]!;
            count++;
          }
        }
      }
      // Words: c1 is the unit at i + 1 (a space at len), as the word pass read it; a word's
      // unigram and bigram are kept, with the position where it ends, for after this pass.
      if (WORD_CHAR[c1] === 1) {
        wh = Math.imul(wh ^ c1, FNV_PRIME);
        inWord = true;
      } else if (inWord) {
        const uh = Math.imul(wh ^ 0x5bd1e995, 0x27d4eb2d);
        wb[nw] = (uh ^ (uh >>> 13)) & MASK;
        wp[nw++] = i + 1;
        if (prev !== 0) {
          const bg = Math.imul(Math.imul(prev, 0x9e3779b1) ^ wh, 0x85ebca6b);
          wb[nw] = (bg ^ (bg >>> 16)) & MASK;
          wp[nw++] = i + 1;
        }
        prev = wh;
        wh = FNV_OFFSET;
        inWord = false;
      }
      c0 = c1;
      c1 = c2;
      c2 = c3;
      c3 = c4;
      c4 = i + 5 < len ? low[u[i + 5]!]! : 32;
    }
    if (inStrides) {
      bs[blk] = total - t0;
      bc[blk] = count - k0;
    }
    if (i < len) continue;
    // The rest of the pass runs here, inside the stride loop rather than after it: see the note
    // on OSR above `census` (census.ts).
    // Word unigrams and bigrams, attributed to the position where the word ends, hashed during the
    // character pass above (one read of the text, not two) and visited here, after every character
    // feature, in the order the separate word pass visited them: which occurrence of a bucket
    // comes first, and so the stride it counts in, is unchanged.
    for (let k = 0; k < nw; k++) {
      const b = wb[k]!;
      const bit = 1 << (b & 31);
      if ((marks[b >>> 5]! & bit) === 0) {
        marks[b >>> 5]! |= bit;
        touched[nt++] = b >>> 5;
        const v = w[b]!;
        total += v;
        count++;
        const p = wp[k]!;
        if (useWindows && p < n) {
          bs[(p / WINDOW_STRIDE) | 0]! += v;
          bc[(p / WINDOW_STRIDE) | 0]!++;
        }
      }
    }
    // Clear the marks this text set: word by word for a short text; for a long one (more than 1,024
    // words to clear, each a cache miss) one 32 KiB fill is less.
    if (nt > marks.length >>> 3) marks.fill(0);
    else for (let k = 0; k < nt; k++) marks[touched[k]!] = 0;
    return windowMargins(model, n, total, count, bs, bc, useWindows);
  }
}

/**
 * The whole-text margin and the best window's, from the feature sums and counts per stride
 * (`bs`, `bc`; zero past the last stride). Windows start every WINDOW_STRIDE characters and span
 * two strides.
 */
function windowMargins(
  model: InjectionModel,
  n: number,
  total: number,
  count: number,
  bs: Float64Array,
  bc: Uint32Array,
  useWindows: boolean,
): { whole: number; best: number; window?: { start: number; end: number } } {
  const whole = model.bias + total / Math.sqrt(count + LENGTH_PRIOR);
  if (!useWindows) return { whole, best: whole };
  let best = whole;
  let window: { start: number; end: number } | undefined;
  // The result is returned from inside the loop (see the note on OSR above `census`).
  for (let start = 0, b = 0; ; start += WINDOW_STRIDE, b++) {
    if (start >= n - WINDOW_STRIDE / 2) return { whole, best, window };
    const end = Math.min(n, start + WINDOW_CHARS);
    const m = model.bias + (bs[b]! + bs[b + 1]!) / Math.sqrt(bc[b]! + bc[b + 1]! + LENGTH_PRIOR);
    if (m > best) {
      best = m;
      window = { start, end };
    }
    if (end === n) return { whole, best, window };
  }
}

export interface InjectionScore {
  /** Probability-like score in [0, 1]; 0.5 is the cross-validated operating point. */
  score: number;
  /** Where the highest score came from: `text`, `window`, or a probe signal such as `base64`. */
  source: string;
  /** Span (on the normalised text) of the window that scored highest, when it was a window. */
  window?: { start: number; end: number };
  /** Normalisation signals (zero-width, homoglyph, base64, ...). */
  signals: string[];
}

const sigmoid = (z: number) => 1 / (1 + Math.exp(-z));

/** Score a raw text (normalised here; `pre` is its census when the caller has it). */
export function scoreInjection(model: InjectionModel, input: string, pre?: Census): InjectionScore {
  const n = normalise(input, pre);
  // A Latin-1 input (its census says so) normalises to Latin-1 text: normalisation then only
  // folds leetspeak to ASCII letters and whitespace to spaces.
  const m = injectionMargins(model, n.text, pre?.latin1 === true);
  let best = m.best;
  let source = m.window ? 'window' : 'text';
  let window = m.window;
  for (let i = 0; i < n.probes.length; i++) {
    const m = injectionMargin(model, n.probes[i]!);
    if (m > best) {
      best = m;
      source = n.probeKinds[i]!;
      window = undefined;
    }
  }
  return { score: sigmoid(best), source, window, signals: n.signals };
}

export { FEATURE_BITS };
