/**
 * Features of the prompt-injection classifier, shared by the detector and by
 * `scripts/train-screening.mjs` (so training and serving can never drift apart).
 *
 * Over the lower-cased, normalised text:
 *   - character n-grams of length 2, 3 and 5 (see {@link CHAR_NGRAMS}), spaces and punctuation included (language-robust:
 *     Chinese, Japanese and Korean need no word splitting), and single CJK / kana / hangul characters;
 *   - word unigrams and bigrams (a word is a run of letters and digits, any script).
 * Each feature is hashed (FNV-1a over UTF-16 code units, then a final mix) into `2^bits` buckets.
 * A text's feature vector is the SET of its hashed features (binary: repeating "1111 " twenty
 * times adds nothing),  scaled by `1/sqrt(count + LENGTH_PRIOR)`,
 * so long and short texts score on the same footing.
 */

/**
 * Smoothing of the length normalisation: a text's feature sum is scaled by `1/sqrt(count + N0)`,
 * so a three-word text cannot swing far from the prior on a few n-grams.
 */
export const LENGTH_PRIOR = 40;

/** 2^18 buckets: collisions cost under a point of recall here, and the weights stay under 1 MB. */
export const FEATURE_BITS = 18;

/**
 * Which character n-grams are features: bit k set = n-grams of length k + 1 (k = 1..4). Lengths
 * 2, 3 and 5: dropping the 4-grams costs a quarter of the classifier's pass, and `npm run
 * train:screening` gave the same or better figures without them (CV on the shared data 0.947 /
 * 0.009 against 0.945 / 0.009; written held-out 0.802 / 0.030 against 0.791 / 0.030).
 */
export const CHAR_NGRAMS: number = 0b10110;
/** Longest character n-gram (the hash loop stops there). */
export const CHAR_NGRAM_MAX = 32 - Math.clz32(CHAR_NGRAMS);

export const FNV_OFFSET = 0x811c9dc5;
export const FNV_PRIME = 0x01000193;

export function isWordChar(c: number): boolean {
  if (c < 128) return (c >= 48 && c <= 57) || (c >= 97 && c <= 122) || (c >= 65 && c <= 90);
  // Latin-1 punctuation, general punctuation, CJK symbols and punctuation, full-width ASCII punctuation.
  if (c < 0xc0) return false;
  if (c >= 0x2000 && c <= 0x2bff) return false;
  if (c >= 0x3000 && c <= 0x303f) return false;
  if (c >= 0xff00 && c <= 0xff20) return false;
  return true;
}

/**
 * Calls `visit(bucket, position)` for every feature of `text` (repeats included; `position` is
 * where a character n-gram starts or where a word ends) and returns how many there were. `text`
 * should already be normalised; it is lower-cased here.
 */
export function forEachFeature(
  text: string,
  bits: number,
  visit: (bucket: number, position: number) => void,
): number {
  const mask = (1 << bits) - 1;
  const s = text.toLowerCase();
  const n = s.length;
  let count = 0;
  // Character n-grams over " " + s + " ".
  for (let i = -1; i < n; i++) {
    let h = FNV_OFFSET;
    // Single CJK, kana and hangul characters carry meaning on their own (无视, 無視, 무시).
    if (i >= 0 && s.charCodeAt(i) >= 0x2e80) {
      const x = Math.imul(s.charCodeAt(i) ^ 0x7feb352d, 0x846ca68b);
      visit((x ^ (x >>> 15)) & mask, i);
      count++;
    }
    for (let k = 0; k < CHAR_NGRAM_MAX; k++) {
      const j = i + k;
      const c = j < 0 || j >= n ? 32 : s.charCodeAt(j);
      h = Math.imul(h ^ c, FNV_PRIME);
      if ((CHAR_NGRAMS >> k) & 1) {
        const x = Math.imul(h ^ (h >>> 15), 0x2c1b3c6d);
        visit((x ^ (x >>> 12)) & mask, Math.max(i, 0));
        count++;
      }
      if (j >= n) break;
    }
  }
  // Word unigrams and bigrams.
  let prev = 0;
  let w = FNV_OFFSET;
  let inWord = false;
  for (let i = 0; i <= n; i++) {
    const c = i < n ? s.charCodeAt(i) : 32;
    if (isWordChar(c)) {
      w = Math.imul(w ^ c, FNV_PRIME);
      inWord = true;
    } else if (inWord) {
      const u = Math.imul(w ^ 0x5bd1e995, 0x27d4eb2d);
      visit((u ^ (u >>> 13)) & mask, i);
      count++;
      if (prev !== 0) {
        const b = Math.imul(Math.imul(prev, 0x9e3779b1) ^ w, 0x85ebca6b);
        visit((b ^ (b >>> 16)) & mask, i);
        count++;
      }
      prev = w;
      w = FNV_OFFSET;
      inWord = false;
    }
  }
  return count;
}

/** The distinct features of `text` as bucket indices, for training. */
export function featureList(text: string, bits = FEATURE_BITS): Int32Array {
  const out = new Set<number>();
  forEachFeature(text, bits, (b) => out.add(b));
  return Int32Array.from(out);
}
