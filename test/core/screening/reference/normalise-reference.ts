/**
 * REFERENCE COPY, for `osr-differential.test.ts` only: `src/core/screening/normalise.ts` as it was
 * before its loops were restructured so that no code follows a long loop (commit 8b56e94), kept
 * verbatim but for the import paths, so the new code can be checked against it on random texts.
 * Not used by `src/`.
 */
/**
 * Text normalisation for screening: every detector that judges meaning (the injection classifier,
 * the output deny list) sees roughly what the model would read, not what a filter-evader typed.
 *
 *   1. Unicode tag characters (U+E0000..U+E007F) are removed; if they spell ASCII ("ASCII
 *      smuggling"), the hidden text becomes a probe.
 *   2. Zero-width characters, soft hyphens and bidi controls are removed.
 *   3. NFKC (full-width, mathematical and circled letters become plain ones).
 *   4. Homoglyph folding: inside a word that mixes Latin with Cyrillic or Greek letters, the
 *      look-alikes become Latin ("іgnоre" with Cyrillic і and о → "ignore"); a word written wholly in
 *      Cyrillic is left alone, so Russian stays Russian. Leetspeak digits inside letter words fold
 *      too ("1gn0re" → "ignore").
 *   5. Whitespace runs collapse to one space; letters spaced out one by one ("i g n o r e") join.
 *   6. Decode probes: base64, hex and URL-encoded runs that decode to readable text, the ROT13
 *      reading when the text looks like ROT13'd English, and the text read backwards when it looks
 *      like reversed English, are returned as extra texts to screen.
 *
 * Decode probes run only where the text's census (`census.ts`, shared with the secret and PII
 * detectors) shows a candidate: a base64 or hex run of 16 or more, three `%XX` escapes.
 *
 * Pure: no I/O, no clock. Spans of secret and PII matches are reported on the original text, so
 * those detectors do not run on the normalised form.
 */

import { type Census, census, mayContain } from '../../../../src/core/screening/census.js';

export interface Normalised {
  /** The normalised text. */
  text: string;
  /** Decoded payloads found in the text (each already normalised), to be screened as well. */
  probes: string[];
  /** What each probe was decoded from (`tag-chars`, `base64`, `hex`, `url`, `rot13`, `reversed`), index for index. */
  probeKinds: string[];
  /** What was found: `tag-chars`, `zero-width`, `bidi`, `homoglyph`, `leet`, `spaced`, `base64`, `hex`, `url`, `rot13`, `reversed`. */
  signals: string[];
}

const TAG_RE = /[\u{E0000}-\u{E007F}]/gu;
const INVISIBLE_RE =
  /\u200D|\u034F|[\u200B\u200C\u2060\u2061\u2062\u2063\u2064\uFEFF\u180E\u00AD\u115F\u1160\u3164]/g;
const BIDI_RE = /[\u202A-\u202E\u2066-\u2069\u200E\u200F\u061C]/g;

/** Cyrillic and Greek letters that look like Latin ones (lower-case and upper-case). */
const CONFUSABLES: Record<string, string> = {
  а: 'a',
  в: 'b',
  е: 'e',
  ё: 'e',
  к: 'k',
  м: 'm',
  н: 'h',
  о: 'o',
  р: 'p',
  с: 'c',
  т: 't',
  у: 'y',
  х: 'x',
  і: 'i',
  ї: 'i',
  ј: 'j',
  ѕ: 's',
  ԁ: 'd',
  ԛ: 'q',
  ԝ: 'w',
  һ: 'h',
  ɡ: 'g',
  А: 'A',
  В: 'B',
  Е: 'E',
  К: 'K',
  М: 'M',
  Н: 'H',
  О: 'O',
  Р: 'P',
  С: 'C',
  Т: 'T',
  У: 'Y',
  Х: 'X',
  І: 'I',
  Ј: 'J',
  Ѕ: 'S',
  α: 'a',
  β: 'b',
  ε: 'e',
  ι: 'i',
  κ: 'k',
  ν: 'v',
  ο: 'o',
  ρ: 'p',
  τ: 't',
  υ: 'u',
  χ: 'x',
  Α: 'A',
  Β: 'B',
  Ε: 'E',
  Ζ: 'Z',
  Η: 'H',
  Ι: 'I',
  Κ: 'K',
  Μ: 'M',
  Ν: 'N',
  Ο: 'O',
  Ρ: 'P',
  Τ: 'T',
  Υ: 'Y',
  Χ: 'X',
};
const LEET: Record<string, string> = {
  '0': 'o',
  '1': 'i',
  '3': 'e',
  '4': 'a',
  '5': 's',
  '7': 't',
  '@': 'a',
  $: 's',
};

/** {@link LEET} by code unit (0: not folded). */
const LEET_CODE = new Uint8Array(128);
for (const [k, v] of Object.entries(LEET)) LEET_CODE[k.charCodeAt(0)] = v.charCodeAt(0);

const WORD_RE = /[\p{L}\p{M}\p{N}@$]+/gu;
const LATIN_RE = /[A-Za-z]/;
const MIXED_SCRIPT_RE = /[\u0370-\u03FF\u0400-\u052F\u0261]/;
const LEET_WORD_RE = /^(?=.*[A-Za-z])(?=.*[013457@$])[A-Za-z013457@$]{4,}$/;
const LEET_HINT_RE = /[A-Za-z][013457@$]|[013457@$][A-Za-z]/;

/** A cheap scan for five single letters in a row separated by one space, dot, dash or underscore. */
export function hasSpacedLetters(s: string): boolean {
  let run = 0;
  for (let i = 1; i < s.length; i += 2) {
    const sep = s.charCodeAt(i);
    if (
      (sep === 32 || sep === 46 || sep === 45 || sep === 95) &&
      s.charCodeAt(i - 1) > 64 &&
      (i + 1 >= s.length || s.charCodeAt(i + 1) > 64)
    ) {
      if (++run >= 5) return true;
    } else {
      run = 0;
      i--; // re-align on the next character
    }
  }
  return false;
}

function foldWord(w: string, signals: Set<string>): string {
  if (LATIN_RE.test(w) && MIXED_SCRIPT_RE.test(w)) {
    let out = '';
    for (const ch of w) out += CONFUSABLES[ch] ?? ch;
    if (out !== w) signals.add('homoglyph');
    w = out;
  }
  // Only words that are mostly letters: "h3ll0" folds, "a1b2c3d4" (an id) does not.
  if (LEET_WORD_RE.test(w)) {
    let letters = 0;
    for (const ch of w) if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z')) letters++;
    if (letters * 2 >= w.length) {
      signals.add('leet');
      let out = '';
      for (const ch of w) out += LEET[ch] ?? ch;
      return out;
    }
  }
  return w;
}

/**
 * Five separators two apart with a character above U+0040 between each: necessary for
 * {@link hasSpacedLetters} (whose five steps are exactly that), and found by the regex engine's
 * scan for a separator, several times faster than the loop over every character.
 */
export const SPACED_HINT_RE =
  /[ ._-][^\x00-\x40][ ._-][^\x00-\x40][ ._-][^\x00-\x40][ ._-][^\x00-\x40][ ._-]/;

/** "i g n o r e  a l l" (six or more single letters separated by one space, dot, dash or underscore). */
const SPACED_RE = /(?:^|(?<=\s))(?:\p{L}[ ._-]){5,}\p{L}(?=\s|$|[.,!?])/gu;

/** Words that only ROT13'd English has ("ignore", "instructions", "previous", "system", "prompt" ...). */
const ROT13_RARE_WORDS = [
  'vtaber',
  'vafgehpgvbaf',
  'cerivbhf',
  'flfgrz',
  'cebzcg',
  'eriryny',
  'sbetrg',
  'cergraq',
  'ehyrf',
  'qvfertneq',
];
const ROT13_RARE_RE = new RegExp(`\\b(?:${ROT13_RARE_WORDS.join('|')})\\b`, 'i');
const ROT13_RARE_LOWER_RE = new RegExp(ROT13_RARE_RE.source);
const LOWER_TO_ASCII_RE = /[\u0130\u212A]/;
const HEX_RE = /\b(?:0x)?((?:[0-9a-fA-F]{2}){8,})\b/g;
const URLENC_RE = /(?<=^|\s)[^\s%]*(?:%[0-9a-fA-F]{2}[^\s%]*){3,}/g;
const ROT13_HINTS = new Set([
  'gur',
  'naq',
  'lbh',
  'vtaber',
  'vafgehpgvbaf',
  'cerivbhf',
  'flfgrz',
  'cebzcg',
  'nyy',
  'ehyrf',
  'cergraq',
  'eriryny',
  'sbetrg',
  'lbhe',
]);

/**
 * Words that only reversed English has ("erongi" is "ignore" backwards), and the common words that
 * confirm it ("eht", "dna", "uoy"). Two distinct hits, one of them rare, make the reversed reading
 * a probe: "snoitcurtsni suoiverp lla erongi" is read by a model as easily as it is written.
 */
const REVERSED_RARE_WORDS = [
  'erongi',
  'snoitcurtsni',
  'suoiverp',
  'metsys',
  'tpmorp',
  'laever',
  'tegrof',
  'dragersid',
  'selur',
  'dnetrep',
  'drowssap',
  'terces',
];
const REVERSED_RARE_RE = new RegExp(`\\b(?:${REVERSED_RARE_WORDS.join('|')})\\b`);
const REVERSED_HINTS = new Set([...REVERSED_RARE_WORDS, 'eht', 'dna', 'uoy', 'ruoy', 'lla', 'won', 'em']);

/** At most this many probes per text: a payload of thousands of short base64 runs costs no more. */
const MAX_PROBES = 8;
/** Decoded payloads shorter than this are noise (ids, hashes that happen to decode). */
const MIN_PROBE_CHARS = 8;

function readable(s: string): boolean {
  if (s.length < MIN_PROBE_CHARS) return false;
  let ok = 0;
  let letters = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 0xfffd || (c < 32 && c !== 10 && c !== 13 && c !== 9)) continue;
    ok++;
    if ((c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c > 127) letters++;
  }
  // Mostly printable and mostly letters: base64 of a random key decodes to binary junk.
  return ok >= s.length * 0.95 && letters >= s.length * 0.6 && /\s/.test(s);
}

/** One decoder for every probe (`decode` without `stream` keeps no state between calls). */
const UTF8 = new TextDecoder('utf-8', { fatal: false });
function utf8(bytes: Uint8Array): string {
  return UTF8.decode(bytes);
}

/** Base64 value of each ASCII code unit, `-` and `_` as `+` and `/` (URL-safe); 255: none. */
const B64_VALUE = new Uint8Array(128).fill(255);
for (let i = 0; i < 64; i++)
  B64_VALUE['ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/'.charCodeAt(i)] = i;
B64_VALUE[45] = 62;
B64_VALUE[95] = 63;

/** Scratch bytes for decoded base64 probes (a call runs to the end without yielding). */
let b64Scratch: Buffer = Buffer.allocUnsafe(256);

/**
 * Decodes the base64 run `s[a, b)` (URL-safe `-` `_` allowed, trailing `=` ignored, every other
 * character in the alphabet: a census run) into {@link b64Scratch} (replaced by a larger buffer
 * for a long run, kept up to {@link MAX_KEPT_BYTES}) and returns the byte count, or
 * -1 for under 16 characters or a length that leaves one odd character. The bytes are those `atob`
 * gives for the run with `-` `_` mapped and its padding restored (forgiving-base64: leftover
 * bits of the last group dropped), without building the mapped, padded and binary strings.
 */
function decodeBase64Run(s: string, a: number, b: number): number {
  while (b > a && s.charCodeAt(b - 1) === 61) b--;
  const len = b - a;
  if (len < 16 || len % 4 === 1) return -1;
  const out = scratchBytes(b64Scratch, Math.floor((len * 3) / 4));
  b64Scratch = out;
  let acc = 0;
  let bits = 0;
  let m = 0;
  for (let i = a; i < b; i++) {
    acc = ((acc << 6) | B64_VALUE[s.charCodeAt(i)]!) & 0xffffff;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out[m++] = (acc >>> bits) & 0xff;
    }
  }
  return m;
}

/**
 * False only when decoded bytes cannot be {@link readable} text, checked on the bytes: without a
 * whitespace character (`/\s/` in UTF-8: an ASCII one, or one of the multi-byte sequences of
 * U+00A0, U+1680, U+2000..U+200A, U+2028, U+2029, U+202F, U+205F, U+3000, U+FEFF, which decode
 * to that character wherever they occur), or with more than a twentieth of control bytes other
 * than tab, LF and CR (each decodes to one unreadable character, and the text has at most one
 * character per byte, so `readable`'s 95 % would fail). Base64 of a random key (the tokens a
 * prompt carries) fails here more than nine times in ten, before any string is built.
 */
function mayBeReadable(bytes: Uint8Array, n: number): boolean {
  let ctrl = 0;
  let ws = false;
  for (let i = 0; i < n; i++) {
    const x = bytes[i]!;
    if (x < 32) {
      // Tab, LF, VT, FF and CR are whitespace; every control but tab, LF and CR is unreadable.
      if (x >= 9 && x <= 13) ws = true;
      if (x !== 9 && x !== 10 && x !== 13) ctrl++;
    } else if (x === 32) ws = true;
    else if (x >= 0xc2 && !ws && i + 1 < n) {
      const y = bytes[i + 1]!;
      const z = i + 2 < n ? bytes[i + 2]! : 0;
      if (
        (x === 0xc2 && y === 0xa0) ||
        (x === 0xe1 && y === 0x9a && z === 0x80) ||
        (x === 0xe2 && y === 0x80 && ((z >= 0x80 && z <= 0x8a) || z === 0xa8 || z === 0xa9 || z === 0xaf)) ||
        (x === 0xe2 && y === 0x81 && z === 0x9f) ||
        (x === 0xe3 && y === 0x80 && z === 0x80) ||
        (x === 0xef && y === 0xbb && z === 0xbf)
      )
        ws = true;
    }
  }
  return ws && ctrl * 20 <= n;
}

/** `/[A-Z]/.test(r) && /[a-z]/.test(r)` for `r = s.slice(a, b)`. */
function hasUpperAndLower(s: string, a: number, b: number): boolean {
  let upper = false;
  let lower = false;
  for (let i = a; i < b; i++) {
    const x = s.charCodeAt(i);
    if (x >= 65 && x <= 90) upper = true;
    else if (x >= 97 && x <= 122) lower = true;
  }
  return upper && lower;
}

function decodeHex(hex: string): string {
  const bytes = new Uint8Array(hex.length / 2);
  for (let i = 0; i < bytes.length; i++) bytes[i] = Number.parseInt(hex.slice(i * 2, i * 2 + 2), 16);
  return utf8(bytes);
}

export function rot13(s: string): string {
  return s.replace(/[A-Za-z]/g, (c) => {
    const base = c <= 'Z' ? 65 : 97;
    return String.fromCharCode(((c.charCodeAt(0) - base + 13) % 26) + base);
  });
}

/**
 * A character other than ASCII and the Latin-1 letters U+00C0..U+00FF. Without one there is no
 * invisible, bidi, tag or look-alike character, and NFKC is a no-op (those letters have no
 * compatibility mapping and, with no combining mark after them, are already composed), so French,
 * German or Spanish prose skips those passes as ASCII does.
 */
const NON_LATIN1_LETTER_RE = /[^\x00-\x7f\u00c0-\u00ff]/;

function isLeetChar(c: number): boolean {
  return (
    (c >= 65 && c <= 90) ||
    (c >= 97 && c <= 122) ||
    c === 48 ||
    c === 49 ||
    c === 51 ||
    c === 52 ||
    c === 53 ||
    c === 55 ||
    c === 64 ||
    c === 36
  );
}

/**
 * Same as `s.replace(LEET_CANDIDATE_RE, fold)`, but only the runs around a letter/digit adjacency
 * (found by the cheap {@link LEET_HINT_RE}) are looked at, so plain prose costs one scan.
 */
function foldLeetRuns(s: string, signals: Set<string>): string {
  const hint = new RegExp(LEET_HINT_RE.source, 'g');
  let out = '';
  let last = 0;
  for (let m = hint.exec(s); m !== null; m = hint.exec(s)) {
    let a = m.index;
    while (a > 0 && isLeetChar(s.charCodeAt(a - 1))) a--;
    let b = m.index + 2;
    while (b < s.length && isLeetChar(s.charCodeAt(b))) b++;
    if (a >= last) {
      out += s.slice(last, a) + foldWord(s.slice(a, b), signals);
      last = b;
    }
    hint.lastIndex = Math.max(b, hint.lastIndex);
  }
  return last === 0 ? s : out + s.slice(last);
}

/**
 * Whether a leetspeak run of `s`, folded and lower-cased, contains a rare ROT13 word. Compared in
 * place, code unit by code unit (a run is ASCII, so folding and lower-casing are per unit): no
 * string is built for the runs of a text that has no such word, which is nearly every text.
 */
function foldedRunHasRareWord(s: string, runs: readonly number[]): boolean {
  for (let k = 0; k < runs.length; k += 2) {
    const a = runs[k]!;
    const b = runs[k + 1]!;
    // The shortest rare word has five letters.
    for (let i = a; i + 5 <= b; i++) {
      const first = foldLower(s.charCodeAt(i));
      if (RARE_FIRST[first] !== 1) continue;
      for (let w = 0; w < ROT13_RARE_WORDS.length; w++) {
        const word = ROT13_RARE_WORDS[w]!;
        if (i + word.length > b || word.charCodeAt(0) !== first) continue;
        let j = 0;
        while (j < word.length && foldLower(s.charCodeAt(i + j)) === word.charCodeAt(j)) j++;
        if (j === word.length) return true;
      }
    }
  }
  return false;
}

/** First letters of the rare ROT13 words. */
const RARE_FIRST = new Uint8Array(128);
for (const w of ROT13_RARE_WORDS) RARE_FIRST[w.charCodeAt(0)] = 1;

/** A leetspeak run's code unit folded (`LEET`) and lower-cased. */
function foldLower(ch: number): number {
  const f = LEET_CODE[ch]! || ch;
  return f >= 65 && f <= 90 ? f + 32 : f;
}

/** `\s+` → one space, touching only runs that are not already a single space. */
const WS_FIX_RE = /\s\s+|[^\S ]/g;

/**
 * Scratch bytes for {@link foldLatin1}: a call runs to the end without yielding, so one buffer
 * serves every call (grown in powers of two up to {@link MAX_KEPT_BYTES}; a longer text gets its
 * own, which is not kept).
 */
let latin1Scratch: Buffer = Buffer.allocUnsafe(4096);
const MAX_KEPT_BYTES = 1 << 16;

/** A scratch buffer of at least `n` bytes: `kept` when large enough, else a new one. */
function scratchBytes(kept: Buffer, n: number): Buffer {
  if (kept.length >= n) return kept;
  let size = kept.length;
  while (size < n) size *= 2;
  return Buffer.allocUnsafe(size);
}

/**
 * For Latin-1 text (`c` its census, `c.latin1` true), what folding the census's leetspeak runs
 * then `.replace(WS_FIX_RE, ' ').trim()` gave, in one pass with no intermediate strings (the
 * chained version is the reference in `allocation-paths.test.ts`): the leetspeak runs fold
 * character for character, every run of JS whitespace becomes one space, and a space at either
 * end goes. On Latin-1 text `\s` and `trim` mean the same six code units (tab, LF, VT, FF, CR,
 * space: U+0085 and U+00A0 are not Latin-1 letters, so `c.latin1` excludes them), and a leetspeak
 * run holds none of them, so folding first and collapsing after is the same as one pass. Returns
 * `s` itself when nothing changes (most prose: no allocation), else one new string decoded from
 * the scratch bytes; the string allocations of the chained version were half of what a 4 kB
 * prompt's screening allocated, and the garbage collections they caused were the p99 tail.
 */
function foldLatin1(s: string, c: Census, signals: Set<string>): string {
  const n = s.length;
  const runs = c.leetRuns;
  if (runs.length > 0) signals.add('leet');
  const out = scratchBytes(latin1Scratch, n);
  if (out.length <= MAX_KEPT_BYTES) latin1Scratch = out;
  // The text's bytes first, copied natively; the loop then reads them from the buffer and
  // compacts in place (it writes at m <= i). Reading the string unit by unit (`charCodeAt`) was
  // two thirds of this pass when the text is a slice of a longer string, as a parsed body's
  // strings can be.
  out.write(s, 0, n, 'latin1');
  let m = 0;
  let changed = false;
  // Next leetspeak run [ra, rb) (rb = -1: none left).
  let r = 0;
  let ra = runs.length > 0 ? runs[0]! : n;
  let rb = runs.length > 0 ? runs[1]! : -1;
  // Whether the last byte written is a space that came from whitespace (collapsing continues).
  let inWs = false;
  for (let i = 0; i < n; i++) {
    let ch = out[i]!;
    if (ch === 32 || (ch >= 9 && ch <= 13)) {
      if (inWs || m === 0) {
        // A second whitespace unit in a run, or whitespace at the start (trimmed).
        changed = true;
        continue;
      }
      if (ch !== 32) changed = true;
      out[m++] = 32;
      inWs = true;
      continue;
    }
    inWs = false;
    if (i >= ra) {
      const f = LEET_CODE[ch]!;
      if (f !== 0) {
        ch = f;
        changed = true;
      }
      if (i + 1 === rb) {
        r += 2;
        ra = r < runs.length ? runs[r]! : n;
        rb = r < runs.length ? runs[r + 1]! : -1;
      }
    }
    out[m++] = ch;
  }
  // A trailing space (from trailing whitespace) is trimmed.
  if (inWs) {
    m--;
    changed = true;
  }
  return changed ? out.toString('latin1', 0, m) : s;
}

/** `c`, when given, is the census of `s`. */
function cleanText(s: string, signals: Set<string>, c?: Census): string {
  const latin1 = c ? c.latin1 : !NON_LATIN1_LETTER_RE.test(s);
  if (c && latin1) {
    s = foldLatin1(s, c, signals);
    return spacedJoin(s, signals);
  }
  if (!latin1) {
    if (INVISIBLE_RE.test(s)) {
      signals.add('zero-width');
      s = s.replace(INVISIBLE_RE, '');
    }
    if (BIDI_RE.test(s)) {
      signals.add('bidi');
      s = s.replace(BIDI_RE, '');
    }
    s = s.normalize('NFKC');
  }
  // Fold only the words that need it (most text has neither mixed scripts nor leet).
  if (MIXED_SCRIPT_RE.test(s)) s = s.replace(WORD_RE, (w) => foldWord(w, signals));
  else if (LEET_HINT_RE.test(s)) s = foldLeetRuns(s, signals);
  s = s.replace(WS_FIX_RE, ' ').trim();
  return spacedJoin(s, signals);
}

/** Joins letters spaced out one by one ("i g n o r e" → "ignore"). */
function spacedJoin(s: string, signals: Set<string>): string {
  if (SPACED_HINT_RE.test(s) && hasSpacedLetters(s)) {
    SPACED_RE.lastIndex = 0;
    if (SPACED_RE.test(s)) {
      signals.add('spaced');
      SPACED_RE.lastIndex = 0;
      s = s.replace(SPACED_RE, (m) => m.replace(/[ ._-]/g, ''));
    }
    SPACED_RE.lastIndex = 0;
  }
  return s;
}

/**
 * Normalise `input` and collect decode probes (`pre`: the census of `input`, when the caller has it). Never throws; cost is linear in the input
 * (each probe is bounded by the run it came from, and there are at most {@link MAX_PROBES}).
 */
export function normalise(input: string, pre?: Census): Normalised {
  const signals = new Set<string>();
  const probes: string[] = [];
  const kinds: string[] = [];
  let s = input;
  if (TAG_RE.test(s)) {
    TAG_RE.lastIndex = 0;
    signals.add('tag-chars');
    let hidden = '';
    for (const ch of s.matchAll(TAG_RE)) {
      const cp = ch[0].codePointAt(0)! - 0xe0000;
      if (cp >= 0x20 && cp < 0x7f) hidden += String.fromCharCode(cp);
    }
    if (hidden.trim().length > 0) {
      probes.push(hidden);
      kinds.push('tag-chars');
    }
    s = s.replace(TAG_RE, '');
  }
  TAG_RE.lastIndex = 0;
  const c = pre && s === input ? pre : census(s);
  const text = cleanText(s, signals, c);

  // Probes run on the text before whitespace collapsing changes nothing they need; use `s`.
  if (c.b64Run >= 16) {
    // The census's runs are the matches of /(?<![A-Za-z0-9+/_-])[A-Za-z0-9+/_-]{16,}={0,2}/g
    // without their `=`, which are ignored.
    const runs = c.b64Runs;
    for (let k = 0; k < runs.length; k += 2) {
      if (probes.length >= MAX_PROBES) break;
      // A base64 run has mixed case or digits; a long plain word does not.
      if (!hasUpperAndLower(s, runs[k]!, runs[k + 1]!)) continue;
      const nb = decodeBase64Run(s, runs[k]!, runs[k + 1]!);
      const bytes = b64Scratch;
      // A buffer grown for a long run is not kept past this one.
      if (b64Scratch.length > MAX_KEPT_BYTES) b64Scratch = Buffer.allocUnsafe(256);
      if (nb < 0 || !mayBeReadable(bytes, nb)) continue;
      const dec = utf8(bytes.subarray(0, nb));
      if (readable(dec)) {
        signals.add('base64');
        probes.push(dec);
        kinds.push('base64');
      }
    }
  }
  if (c.hexRun >= 16) {
    for (const m of s.matchAll(HEX_RE)) {
      if (probes.length >= MAX_PROBES) break;
      const dec = decodeHex(m[1]!);
      if (readable(dec)) {
        signals.add('hex');
        probes.push(dec);
        kinds.push('hex');
      }
    }
  }
  if (c.pctEscapes >= 3) {
    for (const m of s.matchAll(URLENC_RE)) {
      if (probes.length >= MAX_PROBES) break;
      try {
        const dec = decodeURIComponent(m[0].replace(/\+/g, ' '));
        if (dec !== m[0] && readable(dec)) {
          signals.add('url');
          probes.push(dec);
          kinds.push('url');
        }
      } catch {
        // malformed escapes: not a payload
      }
    }
  }
  let hints = 0;
  // A rare ROT13 word needs all its letter pairs in the text. On Latin-1 text that was not
  // joined, normalisation collapsed whitespace (which makes no new letter pair) and folded the
  // leetspeak runs; a folded run is bounded by characters that are not letters, so a word that
  // uses its new pairs lies inside it. The census's pair filter and the folded runs can then rule
  // every word out without lower-casing the text or a regex scan.
  const mayRot13 =
    !c.latin1 ||
    signals.has('spaced') ||
    ROT13_RARE_WORDS.some((w) => mayContain(c, w)) ||
    foldedRunHasRareWord(s, c.leetRuns);
  // Lower-casing first lets a case-sensitive regex do the case-insensitive test: exact unless the
  // text has one of the two characters whose lower case is ASCII (U+0130 İ, U+212A Kelvin sign).
  const lower = mayRot13 ? text.toLowerCase() : '';
  const rare =
    mayRot13 && (LOWER_TO_ASCII_RE.test(text) ? ROT13_RARE_RE.test(text) : ROT13_RARE_LOWER_RE.test(lower));
  if (rare) for (const w of lower.split(/[^a-z]+/)) if (ROT13_HINTS.has(w) && ++hints >= 2) break;
  if (hints >= 2 && probes.length < MAX_PROBES) {
    signals.add('rot13');
    probes.push(rot13(text));
    kinds.push('rot13');
  }
  // Reversed English: gated like ROT13 by the census's pair filter (every rare word's pairs must
  // occur), so ordinary text pays a dozen bit tests.
  if (
    probes.length < MAX_PROBES &&
    (!c.latin1 || signals.has('spaced') || REVERSED_RARE_WORDS.some((w) => mayContain(c, w)))
  ) {
    const low = lower || text.toLowerCase();
    if (REVERSED_RARE_RE.test(low)) {
      const seen = new Set<string>();
      for (const w of low.split(/[^a-z]+/)) if (REVERSED_HINTS.has(w)) seen.add(w);
      if (seen.size >= 2) {
        signals.add('reversed');
        probes.push([...text].reverse().join(''));
        kinds.push('reversed');
      }
    }
  }
  const cleaned = probes.map((p) => cleanText(p, signals));
  return {
    text,
    probes: cleaned.filter((p) => p.length > 0),
    probeKinds: kinds.filter((_, i) => cleaned[i]!.length > 0),
    signals: [...signals],
  };
}
