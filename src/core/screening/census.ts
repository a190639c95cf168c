/**
 * One pass over a text's UTF-16 code units that tells the secret and PII detectors which of their
 * regexes can possibly match, so the others are not run at all. Every gate field is a NECESSARY
 * condition of some regex (never a sufficient one): a gate built on it may only skip a regex that
 * could not have matched. `test/core/screening/census-gates.test.ts` checks gated against ungated
 * results on the screening data and on random strings. Three fields are exact records for
 * `normalise` instead (`latin1`, `leetRuns`, `b64Runs`: what its regexes would find), checked
 * against those regexes by the same test.
 *
 * Pure. `screenTexts` computes it once per text and hands it to normalisation, secrets and PII.
 */

export interface Census {
  /** The text has an `@` (every e-mail). */
  at: boolean;
  /**
   * Most digits in one run of "phone characters" (digits, JS whitespace, `( ) . + -`, and the
   * letters of an extension `x` / `ext`, either case). Every phone, card and SSN match lies inside
   * one such run: phone needs 7 digits, SSN 9, card 13.
   */
  phoneRunDigits: number;
  /** Two upper-case ASCII letters, an optional space, two digits (IBAN `[A-Z]{2}\d{2}`, NINO). */
  upperPairDigits: boolean;
  /** Most dots in one run of digits and dots (IPv4 needs three). */
  digitDotRunDots: number;
  /** Two colons with at most four hex digits and nothing else between them (every IPv6 match). */
  colonPair: boolean;
  /** Longest run of `[A-Z0-9]` (an AWS access key needs 20). */
  upperDigitRun: number;
  /** Longest run of `[A-Za-z0-9]` (a Twilio key needs 34). */
  alnumRun: number;
  /** Longest run of `[A-Za-z0-9_-]` (a Discord token needs 23 before its first dot). */
  wordDashRun: number;
  /** The text has a `.`. */
  dot: boolean;
  /** Longest run of `[A-Za-z0-9_-]` right before a `.` (a Discord token needs 23). */
  wordDashBeforeDot: number;
  /** Longest run of base64 characters `[A-Za-z0-9+/_-]` (a decode probe needs 16). */
  b64Run: number;
  /** Longest run of hex digits (a hex probe needs 16). */
  hexRun: number;
  /** How many `%` are followed by two hex digits (URL decoding needs 3). */
  pctEscapes: number;
  /**
   * Adjacent pairs of the lower-cased text, hashed into 4,096 bits: a string whose every pair is
   * absent cannot be a substring. Null when the text has U+0130 or U+212A, whose lower case is
   * (or contains) ASCII: then this filter is not used.
   */
  pairs: Uint32Array | null;
  /**
   * Every code unit is ASCII or a Latin-1 letter U+00C0..U+00FF: no invisible, bidi, tag or
   * look-alike character, and NFKC is a no-op (`normalise` skips those passes).
   */
  latin1: boolean;
  /**
   * The runs `normalise` folds as leetspeak, as [start, end) pairs in order: maximal runs of
   * `[A-Za-z013457@$]` of four or more with a letter and a digit (or `@`, `$`), at least half
   * letters. Exact, not only necessary: on Latin-1 text `normalise` folds these and nothing else.
   */
  leetRuns: number[];
  /**
   * Maximal runs of base64 characters `[A-Za-z0-9+/_-]` of 16 or more, as [start, end) pairs in
   * order (the decode-probe candidates; `normalise` adds up to two `=` after each).
   */
  b64Runs: number[];
}

const PAIR_MASK = 4095;
const pairBit = (a: number, b: number) => (Math.imul(a, 31) + b) & PAIR_MASK;

/** `/\s/` without the `u` flag, as a test on one code unit. */
export function isJsSpace(c: number): boolean {
  if (c < 128) return c === 32 || (c >= 9 && c <= 13);
  return (
    c === 0xa0 ||
    c === 0x1680 ||
    (c >= 0x2000 && c <= 0x200a) ||
    c === 0x2028 ||
    c === 0x2029 ||
    c === 0x202f ||
    c === 0x205f ||
    c === 0x3000 ||
    c === 0xfeff
  );
}

/** Character classes over ASCII, one bit each. */
const DIGIT = 1;
const UPPER = 2;
const LOWER = 4;
const PHONE = 8; // ( ) . + - x X e E t T and ASCII whitespace (digits are counted apart)
const HEX = 16;
const WORDDASH = 32; // _ -
const B64X = 64; // + /
const LEET = 128; // 0 1 3 4 5 7 (with @ and $, the leetspeak characters that are not letters)
const CLS = new Uint8Array(128);
/** Lower-case letters in no class but LOWER (not hex, not `e t x`). */
const PLAIN = new Uint8Array(128);
for (const ch of 'ghijklmnopqrsuvwyz') PLAIN[ch.charCodeAt(0)] = 1;
for (let c = 48; c <= 57; c++) CLS[c] = DIGIT | HEX;
for (let c = 65; c <= 90; c++) CLS[c] = UPPER;
for (let c = 97; c <= 122; c++) CLS[c] = LOWER;
for (const ch of 'abcdefABCDEF') CLS[ch.charCodeAt(0)]! |= HEX;
for (const ch of '().+-xXeEtT \t\n\v\f\r') CLS[ch.charCodeAt(0)]! |= PHONE;
for (const ch of '_-') CLS[ch.charCodeAt(0)]! |= WORDDASH;
for (const ch of '+/') CLS[ch.charCodeAt(0)]! |= B64X;
for (const ch of '013457') CLS[ch.charCodeAt(0)]! |= LEET;

/**
 * Scratch for the text's code units (a call runs to the end without yielding), kept up to 64 Ki
 * units (128 KiB); a longer text gets its own array.
 */
let unitsBuf = Buffer.allocUnsafeSlow(8192);
const MAX_KEPT_UNITS = 1 << 16;

/**
 * `text`'s UTF-16 code units in a typed array, copied natively (`utf16le` copies every unit as it
 * is, lone surrogates included). The census loop reads them from there: `charCodeAt` per unit was
 * a third of the census when the text is a slice of a longer string, as a parsed body's strings
 * can be, and the copy costs a fiftieth of that. The array is scratch shared by every caller: it
 * is valid until the next call (the classifier's pass uses it too).
 */
export function unitsOf(text: string): Uint16Array {
  const n = text.length;
  let buf = unitsBuf;
  if (buf.length < 2 * n) {
    let size = buf.length;
    while (size < 2 * n) size *= 2;
    buf = Buffer.allocUnsafeSlow(size);
    if (n <= MAX_KEPT_UNITS) unitsBuf = buf;
  }
  buf.write(text, 0, 2 * n, 'utf16le');
  return new Uint16Array(buf.buffer, buf.byteOffset, n);
}

/**
 * On-stack replacement (OSR): V8 may compile a function while one call is still in a long loop
 * (a 4 kB text's first call), with no feedback yet for the code after the loop. That code then
 * deoptimises when it runs, and V8 (Node 20) keeps such OSR code when the deopt is outside the
 * loop it entered by, so it enters it again from the loop on the next calls: one deopt per call
 * until ordinary optimised code replaces it, which can be never (`detectSecrets` in one bench
 * process in four before 2026-12-07: 40 µs a call). So the long loops of screening end with
 * nothing after them but a plain return: their last step, where it needs code, runs inside the
 * loop (`i === n` here), where a deopt discards the OSR code as usual.
 * `test/core/screening/osr-settles.test.ts` checks it under `--always-osr`.
 */
export function census(text: string): Census {
  const n = text.length;
  const u = unitsOf(text);
  const pairs = new Uint32Array(128);
  let pairsOk = true;
  let at = false;
  let dot = false;
  let phoneRunDigits = 0;
  let phoneDigits = 0;
  let upperPairDigits = false;
  let digitDotRunDots = 0;
  let dots = 0;
  let colonPair = false;
  let lastColon = -1;
  let upperDigitRun = 0;
  let ud = 0;
  let alnumRun = 0;
  let an = 0;
  let wordDashRun = 0;
  let wd = 0;
  let wordDashBeforeDot = 0;
  let b64Run = 0;
  let b64 = 0;
  let hexRun = 0;
  let hx = 0;
  let pctEscapes = 0;
  let prev = 0;
  let latin1 = true;
  const leetRuns: number[] = [];
  const b64Runs: number[] = [];
  // The current run of [A-Za-z013457@$] starts at `ls` and has `lo` digits, `@` and `$` in it.
  let ls = 0;
  let lo = 0;
  // The end of the text is handled inside the loop (i === n), not after it: see the note on
  // OSR above `census`.
  for (let i = 0; ; i++) {
    if (i === n) {
      if (an > alnumRun) alnumRun = an;
      if (wd > wordDashRun) wordDashRun = wd;
      if (b64 > b64Run) b64Run = b64;
      if (b64 >= 16) b64Runs.push(n - b64, n);
      if (lo > 0) leetRun(leetRuns, ls, n, lo);
      return {
        at,
        phoneRunDigits,
        upperPairDigits,
        digitDotRunDots,
        colonPair,
        upperDigitRun,
        alnumRun,
        wordDashRun,
        dot,
        wordDashBeforeDot,
        b64Run,
        hexRun,
        pctEscapes,
        pairs: pairsOk ? pairs : null,
        latin1,
        leetRuns,
        b64Runs,
      };
    }
    const c = u[i]!;
    if (c >= 97 && c <= 122) {
      // A lower-case letter (most of any text): extends the alphanumeric, word and base64 runs
      // (their maxima are taken where they end) and a hex run for a to f; ends the digit-and-dot
      // and [A-Z0-9] runs, and the phone run unless it is the e, t or x of an extension.
      if (i > 0) {
        const b = (Math.imul(prev, 31) + c) & PAIR_MASK;
        pairs[b >>> 5]! |= 1 << (b & 31);
      }
      prev = c;
      an++;
      wd++;
      b64++;
      dots = 0;
      ud = 0;
      if (PLAIN[c] === 1) {
        phoneDigits = 0;
        lastColon = -1;
        hx = 0;
        continue;
      }
      const k = CLS[c]!;
      if ((k & PHONE) === 0) phoneDigits = 0;
      if ((k & HEX) === 0) {
        lastColon = -1;
        hx = 0;
      } else if (++hx > hexRun) hexRun = hx;
      continue;
    }
    if (c === 32) {
      // A space: ends every run but the phone run.
      if (i > 0) {
        const b = (Math.imul(prev, 31) + 32) & PAIR_MASK;
        pairs[b >>> 5]! |= 1 << (b & 31);
      }
      prev = 32;
      if (lo > 0) leetRun(leetRuns, ls, i, lo);
      ls = i + 1;
      lo = 0;
      dots = 0;
      lastColon = -1;
      hx = 0;
      if (b64 > b64Run) b64Run = b64;
      if (b64 >= 16) b64Runs.push(i - b64, i);
      b64 = 0;
      ud = 0;
      if (an > alnumRun) alnumRun = an;
      an = 0;
      if (wd > wordDashRun) wordDashRun = wd;
      wd = 0;
      continue;
    }
    let k = 0;
    let lc = c;
    if (c < 128) {
      k = CLS[c]!;
      if ((k & UPPER) !== 0) lc = c + 32;
    } else {
      // Other units keep their code: their lower case is never ASCII, except U+0130 and U+212A,
      // which turn the pair filter off.
      if (c === 0x130 || c === 0x212a) pairsOk = false;
      if (isJsSpace(c)) k = PHONE;
    }
    if (i > 0) {
      const b = (Math.imul(prev, 31) + lc) & PAIR_MASK;
      pairs[b >>> 5]! |= 1 << (b & 31);
    }
    prev = lc;
    if (k === 0) {
      // Not a digit, letter, phone or word character: every run ends.
      phoneDigits = 0;
      ud = 0;
      if (an > alnumRun) alnumRun = an;
      an = 0;
      if (wd > wordDashRun) wordDashRun = wd;
      wd = 0;
      if (b64 > b64Run) b64Run = b64;
      if (b64 >= 16) b64Runs.push(i - b64, i);
      b64 = 0;
      if (c === 64 || c === 36) lo++;
      else {
        if (lo > 0) leetRun(leetRuns, ls, i, lo);
        ls = i + 1;
        lo = 0;
        if (c >= 128 && (c < 0xc0 || c > 0xff)) latin1 = false;
      }
      hx = 0;
      if (c === 64) at = true;
      if (c === 37 && i + 2 < n && isHex(u[i + 1]!) && isHex(u[i + 2]!)) pctEscapes++;
      if (c === 58) {
        if (lastColon >= 0 && i - lastColon <= 5) colonPair = true;
        lastColon = i;
      } else lastColon = -1;
      dots = 0;
      continue;
    }
    // Leetspeak runs: letters continue one, 0 1 3 4 5 7 count in it, anything else ends it.
    if ((k & (UPPER | LOWER)) === 0) {
      if ((k & LEET) !== 0) lo++;
      else {
        if (lo > 0) leetRun(leetRuns, ls, i, lo);
        ls = i + 1;
        lo = 0;
        if (c >= 128 && (c < 0xc0 || c > 0xff)) latin1 = false;
      }
    }
    if ((k & DIGIT) !== 0) {
      if (++phoneDigits > phoneRunDigits) phoneRunDigits = phoneDigits;
      if (!upperPairDigits && i >= 3 && (CLS[u[i - 1]! & 127]! & DIGIT) !== 0) {
        const a = u[i - 2]!;
        if (a === 32) {
          if (i >= 4 && isUpper(u[i - 3]!) && isUpper(u[i - 4]!)) upperPairDigits = true;
        } else if (isUpper(a) && isUpper(u[i - 3]!)) upperPairDigits = true;
      }
    } else if ((k & PHONE) === 0) phoneDigits = 0;
    // Digit-and-dot runs (IPv4).
    if (c === 46) {
      dot = true;
      if (++dots > digitDotRunDots) digitDotRunDots = dots;
      if (wd > wordDashBeforeDot) wordDashBeforeDot = wd;
    } else if ((k & DIGIT) === 0) dots = 0;
    // Colon pairs (IPv6): a colon after a colon with at most four hex digits since.
    if ((k & HEX) === 0) {
      lastColon = -1;
      hx = 0;
    } else if (++hx > hexRun) hexRun = hx;
    if ((k & (DIGIT | UPPER | LOWER | WORDDASH | B64X)) !== 0) b64++;
    else {
      if (b64 > b64Run) b64Run = b64;
      if (b64 >= 16) b64Runs.push(i - b64, i);
      b64 = 0;
    }
    // Runs of [A-Z0-9], [A-Za-z0-9], [A-Za-z0-9_-].
    if ((k & (DIGIT | UPPER)) !== 0) {
      if (++ud > upperDigitRun) upperDigitRun = ud;
    } else ud = 0;
    if ((k & (DIGIT | UPPER | LOWER)) !== 0) {
      an++;
      wd++;
    } else {
      if (an > alnumRun) alnumRun = an;
      an = 0;
      if ((k & WORDDASH) !== 0) wd++;
      else {
        if (wd > wordDashRun) wordDashRun = wd;
        wd = 0;
      }
    }
  }
}

/** Records [a, b) when `normalise` folds it: four or more, a letter, at least half letters. */
function leetRun(out: number[], a: number, b: number, others: number): void {
  const len = b - a;
  if (len >= 4 && others < len && (len - others) * 2 >= len) out.push(a, b);
}

function isHex(c: number): boolean {
  return c < 128 && (CLS[c]! & HEX) !== 0;
}

function isUpper(c: number): boolean {
  return c >= 65 && c <= 90;
}

/**
 * Whether the lower-cased text may contain `s` (ASCII, lower case): false only when one of its
 * adjacent pairs never occurs. Always true without a pair filter or for one-character strings.
 */
export function mayContain(c: Census, s: string): boolean {
  const p = c.pairs;
  if (!p) return true;
  for (let i = 1; i < s.length; i++) {
    const b = pairBit(s.charCodeAt(i - 1), s.charCodeAt(i));
    if ((p[b >>> 5]! & (1 << (b & 31))) === 0) return false;
  }
  return true;
}

/**
 * The pair-filter bits of `s` (ASCII, lower case), computed once for a string looked for in many
 * texts (the secret rules' hints): `mayContainPairs(c, pairBits(s))` is `mayContain(c, s)`.
 */
export function pairBits(s: string): Uint16Array {
  const out = new Uint16Array(Math.max(0, s.length - 1));
  for (let i = 1; i < s.length; i++) out[i - 1] = pairBit(s.charCodeAt(i - 1), s.charCodeAt(i));
  return out;
}

export function mayContainPairs(c: Census, bits: Uint16Array): boolean {
  const p = c.pairs;
  if (!p) return true;
  for (let i = 0; i < bits.length; i++) {
    const b = bits[i]!;
    if ((p[b >>> 5]! & (1 << (b & 31))) === 0) return false;
  }
  return true;
}
