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
 *   6. Decode probes: base64, hex and URL-encoded runs that decode to readable text, and the ROT13
 *      reading when the text looks like ROT13'd English, are returned as extra texts to screen.
 *
 * Decode probes run only where the text's census (`census.ts`, shared with the secret and PII
 * detectors) shows a candidate: a base64 or hex run of 16 or more, three `%XX` escapes.
 *
 * Pure: no I/O, no clock. Spans of secret and PII matches are reported on the original text, so
 * those detectors do not run on the normalised form.
 */

import { type Census, census, mayContain } from './census.js';

export interface Normalised {
  /** The normalised text. */
  text: string;
  /** Decoded payloads found in the text (each already normalised), to be screened as well. */
  probes: string[];
  /** What each probe was decoded from (`tag-chars`, `base64`, `hex`, `url`, `rot13`), index for index. */
  probeKinds: string[];
  /** What was found: `tag-chars`, `zero-width`, `bidi`, `homoglyph`, `leet`, `spaced`, `base64`, `hex`, `url`, `rot13`. */
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

/**
 * The matches of `/(?<![A-Za-z0-9+/_-])[A-Za-z0-9+/_-]{16,}={0,2}/g` in `s`, from the runs its
 * census recorded (`c` must be the census of `s`).
 */
function base64Runs(s: string, c: Census): string[] {
  const out: string[] = [];
  const runs = c.b64Runs;
  for (let k = 0; k < runs.length; k += 2) {
    const a = runs[k]!;
    let b = runs[k + 1]!;
    if (b < s.length && s.charCodeAt(b) === 61) b++;
    if (b < s.length && s.charCodeAt(b) === 61) b++;
    out.push(s.slice(a, b));
  }
  return out;
}
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

function decodeBase64(run: string): string | null {
  const b64 = run.replace(/-/g, '+').replace(/_/g, '/').replace(/=+$/, '');
  if (b64.length < 16 || b64.length % 4 === 1) return null;
  try {
    const bin = atob(b64 + '='.repeat((4 - (b64.length % 4)) % 4));
    const bytes = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
    return utf8(bytes);
  } catch {
    return null;
  }
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

/** {@link foldLeetRuns} with the runs already known (`Census.leetRuns`: exactly those it folds). */
function foldKnownRuns(s: string, runs: readonly number[], signals: Set<string>): string {
  if (runs.length === 0) return s;
  signals.add('leet');
  let out = '';
  let last = 0;
  for (let k = 0; k < runs.length; k += 2) {
    const a = runs[k]!;
    const b = runs[k + 1]!;
    out += s.slice(last, a);
    for (let i = a; i < b; i++) {
      const ch = s[i]!;
      out += LEET[ch] ?? ch;
    }
    last = b;
  }
  return out + s.slice(last);
}

/** Whether a leetspeak run of `s`, folded and lower-cased, contains a rare ROT13 word. */
function foldedRunHasRareWord(s: string, runs: readonly number[]): boolean {
  for (let k = 0; k < runs.length; k += 2) {
    let run = '';
    for (let i = runs[k]!; i < runs[k + 1]!; i++) run += LEET[s[i]!] ?? s[i]!;
    run = run.toLowerCase();
    if (ROT13_RARE_WORDS.some((w) => run.includes(w))) return true;
  }
  return false;
}

/** `\s+` → one space, touching only runs that are not already a single space. */
const WS_FIX_RE = /\s\s+|[^\S ]/g;

/** `c`, when given, is the census of `s`. */
function cleanText(s: string, signals: Set<string>, c?: Census): string {
  const latin1 = c ? c.latin1 : !NON_LATIN1_LETTER_RE.test(s);
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
  // Fold only the words that need it (most text has neither mixed scripts nor leet). Latin-1
  // text has no Cyrillic or Greek, and its census lists the leetspeak runs to fold.
  if (c && latin1) s = foldKnownRuns(s, c.leetRuns, signals);
  else if (MIXED_SCRIPT_RE.test(s)) s = s.replace(WORD_RE, (w) => foldWord(w, signals));
  else if (LEET_HINT_RE.test(s)) s = foldLeetRuns(s, signals);
  s = s.replace(WS_FIX_RE, ' ').trim();
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
    for (const run of base64Runs(s, c)) {
      if (probes.length >= MAX_PROBES) break;
      // A base64 run has mixed case or digits; a long plain word does not.
      if (!/[A-Z]/.test(run) || !/[a-z]/.test(run)) continue;
      const dec = decodeBase64(run);
      if (dec && readable(dec)) {
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
  const cleaned = probes.map((p) => cleanText(p, signals));
  return {
    text,
    probes: cleaned.filter((p) => p.length > 0),
    probeKinds: kinds.filter((_, i) => cleaned[i]!.length > 0),
    signals: [...signals],
  };
}
