/**
 * Output screening for answers, streamed or not: an incremental text screener the provider's
 * `transformEvents` calls with each text delta, plus canary tokens for task prompts.
 *
 * `createOutputScreener(settings)` returns `push(delta) -> { emit, cut? }` and `flush() -> string`.
 * It holds back only what could still turn into a match across a chunk boundary:
 *   - the trailing token when it could be part of a secret or PII (it has digits, `@`, `_`, `-`,
 *     `/`, `=`, upper case after the first letter, a known key prefix, or follows a credential
 *     word such as `password:`); plain words go out at once;
 *   - trailing digit groups ("4111 1111 1111 ") that a card, phone or IBAN may continue;
 *   - an open `-----BEGIN ... PRIVATE KEY-----` block until its END line (up to 16 KiB);
 *   - a tail that is the start of a deny-list word or canary.
 * Everything else is emitted immediately, so an unaffected stream is not buffered. The detectors
 * run over the held text plus the last 128 emitted characters (the carry), so a secret split over
 * three chunks is found. `redact` replaces a match with `[REDACTED:<kind>]` (a match whose first
 * characters already went out has the rest replaced); `block` cuts: the text before the match is
 * emitted, then `cut: { reason }` and nothing more. `flag` only reports. Pure.
 *
 * Cost per delta: a delta is read a bounded number of times, not once per later delta. The
 * released text is kept as the strings released (joined into the carry only when the detectors
 * run), and the detectors run only when the window has a trigger (see {@link TriggerScan}):
 * something every secret or PII match needs. The released text is scanned for triggers once, as
 * far as a window needs it, so the carry is not re-read per delta. What goes out is exactly what
 * the screener that ran the detectors on every held window sent: `output-differential.test.ts`
 * runs both side by side (the old one is kept under test/).
 */

import { census, isJsSpace } from './census.js';
import type { Finding } from './findings.js';
import { detectPii } from './pii.js';
import type { ScreeningAction, ScreeningSettings } from './policy.js';
import { detectSecrets, SECRET_HINTS, SECRET_RULES } from './secrets.js';

export interface OutputFound {
  detector: Finding['detector'];
  kind: string;
  action: ScreeningAction;
}

export interface OutputPush {
  /** Text to send now (possibly with redactions). */
  emit: string;
  /** Set once, when the answer must end here (`finish_reason: "content_filter"` and the like). */
  cut?: { reason: string };
  /** What was found in this step (kinds only). */
  found?: OutputFound[];
}

export interface OutputScreener {
  push(delta: string): OutputPush;
  /** End of the answer: releases whatever was held (screened). */
  flush(): string;
  /** The cut, once one happened (also returned by the `push` that caused it). */
  readonly cut: { reason: string } | null;
  /** Everything found so far. */
  readonly found: readonly OutputFound[];
}

export interface OutputScreenerOptions {
  /** Canary tokens planted in server-side prompts; seeing one cuts the answer. */
  canaries?: readonly string[];
}

/** Emitted text kept as context for the detectors (credential words before a value, phone words). */
const CARRY = 128;
const MAX_HOLD = 1024;
const MAX_KEY_HOLD = 16 * 1024;

const KEY_PREFIX_RE = /^(?:sk|gh|gl|xo|ey|hf|np|AK|AS|AI|SG|sq|hv|ntn|dapi|glc|shp|do[opr]|pypi|api)/;
const GROUP_RE = /^[+(]?[0-9A-Z()+.-]{1,6}$/;
const SUSPICIOUS_WORD_RE = /bearer|passw|secret|token|api.?key|auth|private/i;

/** ASCII classes, one bit each, for the per-character tests below. */
const SENSITIVE = 1; // [0-9@_\-+/=:~%.$#!*&^|\\]: a token with one may be (part of) a secret or PII
const SUSPICIOUS = 2; // [0-9@_=/+~:$%\\|#]
const RUN_CHAR = 4; // [A-Za-z0-9_-]: the characters of a long key-like run
const WORD = 8; // \w = [A-Za-z0-9_]
const PII_TRIGGER = 16; // [0-9@:]: every PII pattern has one
const CLASS = new Uint8Array(128);
/** ASCII lower case, as a table. */
const LOWER = new Uint8Array(128);
for (let c = 0; c < 128; c++) LOWER[c] = c >= 65 && c <= 90 ? c + 32 : c;
for (let c = 0; c < 128; c++) {
  const ch = String.fromCharCode(c);
  CLASS[c] =
    (/[0-9@_\-+/=:~%.$#!*&^|\\]/.test(ch) ? SENSITIVE : 0) |
    (/[0-9@_=/+~:$%\\|#]/.test(ch) ? SUSPICIOUS : 0) |
    (/[A-Za-z0-9_-]/.test(ch) ? RUN_CHAR : 0) |
    (/\w/.test(ch) ? WORD : 0) |
    (/[0-9@:]/.test(ch) ? PII_TRIGGER : 0);
}
const isUpper = (c: number) => c >= 65 && c <= 90;
const isLower = (c: number) => c >= 97 && c <= 122;
/** ASCII lower case (other code units unchanged). */
const lowerAscii = (c: number) => (isUpper(c) ? c + 32 : c);
/** A code unit `.` does not match (without the `s` flag): the line terminators. */
const isLineTerminator = (c: number) => c === 10 || c === 13 || c === 0x2028 || c === 0x2029;

/** The whitespace the hold logic splits tokens on. */
function isSpace(c: number): boolean {
  return c === 32 || c === 10 || c === 9 || c === 13;
}

/**
 * `/[0-9@_=/+~:$%\\|#]|--|[a-z][A-Z]|[A-Z]{2}/.test(s) || SUSPICIOUS_WORD_RE.test(s)`: every
 * secret and PII shape has a digit, a symbol, an upper-case pair or a credential word. The
 * character part is one pass over the code units.
 */
function suspicious(s: string): boolean {
  let prev = -1;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 128) {
      if ((CLASS[c]! & SUSPICIOUS) !== 0) return true;
      if (c === 45 && prev === 45) return true;
      if (isUpper(c) && (isLower(prev) || isUpper(prev))) return true;
    }
    prev = c;
  }
  return SUSPICIOUS_WORD_RE.test(s);
}

/**
 * Whether the trailing token could be (part of) a secret or PII: a digit or symbol, an upper-case
 * letter after its first character (`/.\p{Lu}/u`, decided without the Unicode class when that
 * letter is A-Z), or a known key prefix.
 */
function sensitiveToken(tok: string): boolean {
  if (tok.length === 0) return false;
  let maybeUpper = false;
  for (let i = 0; i < tok.length; i++) {
    const c = tok.charCodeAt(i);
    if (c < 128 && (CLASS[c]! & SENSITIVE) !== 0) return true;
    // `.` then A-Z, or `.` then a non-ASCII unit that may be upper case (checked below).
    if (i > 0 && (isUpper(c) || c >= 128) && !isLineTerminator(tok.charCodeAt(i - 1))) {
      if (c < 128) return true;
      maybeUpper = true;
    }
  }
  if (maybeUpper && /.\p{Lu}/u.test(tok)) return true;
  return KEY_PREFIX_RE.test(tok);
}

/**
 * The words of `/(?:passw(?:or)?d|passwd|pwd|secret|token|api[_-]?key|key|bearer|auth)\W{0,3}\s*$/i`
 * (a value follows a credential word: hold it). `api_key` and the like end in `key`.
 */
const CREDENTIAL_WORDS = ['passwd', 'password', 'pwd', 'secret', 'token', 'key', 'bearer', 'auth'];
/** The last characters of {@link CREDENTIAL_WORDS}, by code. */
const CREDENTIAL_LAST = new Uint8Array(128);
for (const w of CREDENTIAL_WORDS) CREDENTIAL_LAST[w.charCodeAt(w.length - 1)] = 1;

/**
 * What a window must contain for the detectors to find anything in it (necessary, never
 * sufficient), so a window without it skips them with the same (empty) result:
 *   - `detectSecrets` (on texts under 64 Ki characters, which every window is unless a single
 *     delta is that large: then the detectors always run) tries a rule only when the lower-cased
 *     text contains one of its hints, and the three rules without hints only when the census shows
 *     a run of 20 or more `[A-Za-z0-9_-]` (AWS key: 20 of `[A-Z0-9]`; Twilio: 34 alphanumerics;
 *     Discord: 23 before a dot); its generic rule runs only when the text contains one of
 *     {@link GENERIC_KEYS}. Lower-casing maps no character to ASCII but U+0130 and U+212A, so
 *     without them a hint in the lower-cased text is an ASCII case-insensitive match in the text;
 *     those two characters are triggers themselves.
 *   - every PII pattern needs an ASCII digit, an `@` (e-mail) or a `:` (IPv6 without digits).
 * `output-triggers.test.ts` checks this against the detectors. A secret rule with neither a hint
 * nor one of the known gates turns the skip off (the detectors always run) rather than wrong.
 */
export const GENERIC_KEYS = ['key', 'secret', 'token', 'passw', 'pwd', 'cred', 'auth', 'login'];
const GATED_RULES = new Set(['aws-access-key', 'twilio-key', 'discord-token']);
const RUN = 20;
/**
 * Pending text longer than this goes to the detectors without a trigger scan. Far below 64 Ki,
 * the length from which `detectSecrets` runs every rule (no hints), which this scan assumes.
 */
const SCAN_LIMIT = 1024;
/** Every secret trigger word, lower case: the rules' hints and the generic rule's keys. */
const WORDS = [...new Set([...SECRET_HINTS, ...GENERIC_KEYS])];
const SKIP_OK =
  WORDS.every((w) => /^[\x01-\x7f]+$/.test(w) && w === w.toLowerCase() && w.length <= 16) &&
  SECRET_RULES.every((r) => (r.hint?.length ?? 0) > 0 || GATED_RULES.has(r.kind));
/** One-character words (`|`), by code. */
const SINGLE = new Uint8Array(128);
/** Longer words by their last two characters: a 128 x 128 table of indices into WORDS_BY_END. */
const END_SLOT = new Uint8Array(128 * 128);
const WORDS_BY_END: string[][] = [[]];
for (const w of WORDS) {
  if (w.length === 1) {
    SINGLE[w.charCodeAt(0)] = 1;
    continue;
  }
  const k = w.charCodeAt(w.length - 2) * 128 + w.charCodeAt(w.length - 1);
  if (END_SLOT[k] === 0) {
    END_SLOT[k] = WORDS_BY_END.length;
    WORDS_BY_END.push([]);
  }
  WORDS_BY_END[END_SLOT[k]!]!.push(w);
}

/**
 * The recent released (emitted) text, as the strings released (nothing copied per delta): the
 * pieces that cover the carry, its last CARRY units. The carry is joined only when the detectors
 * run; a unit before the carry reads as -1 (no window can see it).
 */
class Released {
  pieces: string[] = [];
  starts: number[] = [];
  /** The first piece still needed. */
  first = 0;
  /** Units released so far. */
  length = 0;

  add(s: string): void {
    this.pieces.push(s);
    this.starts.push(this.length);
    this.length += s.length;
    const from = this.length - CARRY;
    while (this.first + 1 < this.pieces.length && this.starts[this.first + 1]! <= from) this.first++;
    if (this.first >= 64) {
      this.pieces = this.pieces.slice(this.first);
      this.starts = this.starts.slice(this.first);
      this.first = 0;
    }
  }

  /** Where the carry starts. */
  carryStart(): number {
    return this.length > CARRY ? this.length - CARRY : 0;
  }

  unit(q: number): number {
    if (q < this.carryStart() || q >= this.length) return -1;
    let i = this.pieces.length - 1;
    while (this.starts[i]! > q) i--;
    return this.pieces[i]!.charCodeAt(q - this.starts[i]!);
  }

  /** The carry as a string. */
  carry(): string {
    const n = this.length - this.carryStart();
    const joined =
      this.first === this.pieces.length - 1
        ? this.pieces[this.first]!
        : this.pieces.slice(this.first).join('');
    return joined.length === n ? joined : joined.slice(joined.length - n);
  }
}

/** "No trigger" (a run's start may be before the scan's origin). */
const NONE = Number.MIN_SAFE_INTEGER;
/** Units of history a scan keeps for the words: a power of two above the longest word. */
const HIST = 16;

/**
 * A streaming scan for triggers: text is fed in pieces (no joining), and the latest trigger's
 * start is kept. Triggers, with `secrets`: a word (hint or generic key, ASCII case-insensitive), a
 * run of 20 `[A-Za-z0-9_-]`, U+0130 or U+212A; with `pii`: an ASCII digit, `@` or `:`. A trigger
 * may start before the piece it ends in, never before the scan's origin. Most units are lower-case
 * letters: for them a step is three table reads (class, lower case, the pair they end).
 */
class TriggerScan {
  /** Absolute position of the next unit fed. */
  at = 0;
  /** Where the scan started: no trigger starts before it. */
  origin = 0;
  run = 0;
  /** The last HIST units fed, lower-cased ASCII (0 for anything else), by position. */
  hist = new Uint8Array(HIST);
  /** Start of the latest trigger seen (NONE: none). */
  last = NONE;

  constructor(
    readonly secrets: boolean,
    readonly pii: boolean,
  ) {}

  reset(origin: number): void {
    this.at = origin;
    this.origin = origin;
    this.run = 0;
    this.last = NONE;
  }

  copy(o: TriggerScan): void {
    this.at = o.at;
    this.origin = o.origin;
    this.run = o.run;
    this.hist.set(o.hist);
    this.last = o.last;
  }

  /**
   * Feeds `s[i0, i1)`; with `first`, stops at the first trigger and returns true (`last` is then
   * that trigger's start, and the scan is not to be fed more).
   */
  feed(s: string, i0: number, i1: number, first: boolean): boolean {
    const { hist, secrets, pii } = this;
    let at = this.at;
    let run = this.run;
    let last = this.last;
    const origin = this.origin;
    for (let i = i0; i < i1; i++, at++) {
      const c = s.charCodeAt(i);
      let t = NONE;
      if (c >= 128) {
        run = 0;
        hist[at & (HIST - 1)] = 0;
        if (secrets && (c === 0x130 || c === 0x212a)) t = at;
      } else {
        const info = CLASS[c]!;
        const l = LOWER[c]!;
        hist[at & (HIST - 1)] = l;
        run = (info & RUN_CHAR) !== 0 ? run + 1 : 0;
        if (pii && (info & PII_TRIGGER) !== 0) t = at;
        else if (secrets) {
          if (SINGLE[l] === 1) t = at;
          else {
            if (run >= RUN) t = at - RUN + 1;
            const prev = at > origin ? hist[(at - 1) & (HIST - 1)]! : 0;
            const slot = END_SLOT[prev * 128 + l]!;
            if (slot !== 0)
              for (const w of WORDS_BY_END[slot]!) {
                const start = at - w.length + 1;
                if (start <= t || start < origin) continue;
                let k = w.length - 3;
                while (k >= 0 && hist[(start + k) & (HIST - 1)] === w.charCodeAt(k)) k--;
                if (k < 0) t = start;
              }
          }
        }
      }
      if (t === NONE) continue;
      if (t > last) last = t;
      if (first) {
        this.at = at + 1;
        this.run = run;
        this.last = last;
        return true;
      }
    }
    this.at = at;
    this.run = run;
    this.last = last;
    return false;
  }
}

/**
 * Whether `s` has a trigger (see {@link TriggerScan}): the screener's test, on a string. When it is
 * false for a text under 64 Ki characters, `detectSecrets` (with `secrets`) and `detectPii` (with
 * `pii`) find nothing in it.
 */
export function hasTrigger(s: string, secrets: boolean, pii: boolean): boolean {
  return new TriggerScan(secrets, pii).feed(s, 0, s.length, true);
}

const NO_HITS: never[] = [];

type DenyMatcher = { kind: string; reason: string; re: RegExp; prefixes: string[] };

function compileDeny(deny: readonly string[], canaries: readonly string[]): DenyMatcher[] {
  const out: DenyMatcher[] = [];
  for (const d of deny) {
    const m = /^\/(.+)\/([a-z]*)$/.exec(d);
    if (m)
      out.push({
        kind: 'deny',
        reason: 'deny',
        re: new RegExp(m[1]!, `${m[2]!.replace('g', '')}g`),
        prefixes: [],
      });
    else if (d.length > 0)
      out.push({
        kind: 'deny',
        reason: 'deny',
        re: new RegExp(d.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'), 'gi'),
        prefixes: [d.toLowerCase()],
      });
  }
  for (const c of canaries)
    if (c.length > 0)
      out.push({
        kind: 'canary',
        reason: 'canary',
        re: new RegExp(c.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'), 'gi'),
        prefixes: [c.toLowerCase()],
      });
  return out;
}

export function createOutputScreener(
  settings: ScreeningSettings,
  opts: OutputScreenerOptions = {},
): OutputScreener {
  const secretsAction = settings.output.secrets;
  const piiAction = settings.output.pii;
  const piiKinds = settings.pii.kinds;
  const deny = compileDeny(settings.output.deny, opts.canaries ?? []);
  const active = secretsAction !== 'off' || piiAction !== 'off' || deny.length > 0;
  const secretsOn = secretsAction !== 'off';
  const piiOn = piiAction !== 'off';
  /** Whether the detectors may be skipped on a window without a trigger (never with a deny list). */
  const skippable = deny.length === 0 && (secretsOn || piiOn) && (!secretsOn || SKIP_OK);
  /** The released (emitted) text, redactions included: its last CARRY units are the carry. */
  const out = new Released();
  /**
   * The trigger scan of the released text (lazy: only when a window needs it), and a copy of it
   * that goes on into `pending`.
   */
  let scan: TriggerScan | undefined;
  let probe: TriggerScan | undefined;
  /** The carry as a string, built when the detectors need it (null: released text since). */
  let carryText: string | null = '';
  let pending = '';
  let cut: { reason: string } | null = null;
  const found: OutputFound[] = [];
  /** Matches reported, by kind and position (made on the first: most answers have none). */
  let reported: Set<string> | undefined;
  /** Characters of the answer already released (for de-duplicating reports). */
  let emittedTotal = 0;

  type Hit = {
    start: number;
    end: number;
    kind: string;
    detector: Finding['detector'];
    action: ScreeningAction;
  };

  const carryLength = () => out.length - out.carryStart();
  const carry = (): string => {
    carryText ??= out.carry();
    return carryText;
  };

  const detect = (window: string): Hit[] => {
    const hits: Hit[] = [];
    const c = secretsAction !== 'off' || piiAction !== 'off' ? census(window) : undefined;
    if (secretsAction !== 'off')
      for (const f of detectSecrets(window, { census: c })) hits.push({ ...f, action: secretsAction });
    if (piiAction !== 'off')
      for (const f of detectPii(window, piiKinds, { census: c })) hits.push({ ...f, action: piiAction });
    for (const d of deny) {
      d.re.lastIndex = 0;
      for (const m of window.matchAll(d.re)) {
        if (m[0].length === 0) break;
        hits.push({
          start: m.index!,
          end: m.index! + m[0].length,
          kind: d.kind,
          detector: d.kind === 'canary' ? 'canary' : 'deny',
          action: 'block',
        });
      }
    }
    return hits.sort((a, b) => a.start - b.start);
  };

  /**
   * False only when the window (carry + pending) has no trigger, so the detectors would find
   * nothing in it. The released text is scanned once, from where the last scan stopped or from the
   * carry's start if that is later (a trigger before it is in no window again); `pending` is
   * scanned whole, from the run and unit the released text ends with.
   */
  const mayMatch = (): boolean => {
    // Long windows (a whole answer in one push, a held key block) are scanned by the detectors
    // anyway, and most have a trigger: looking for one first would only add to their cost.
    if (!skippable || pending.length > SCAN_LIMIT) return true;
    const from = out.carryStart();
    // Made on first use: most answers' deltas all take the fast path and never need them.
    scan ??= new TriggerScan(secretsOn, piiOn);
    probe ??= new TriggerScan(secretsOn, piiOn);
    // The released text: scanned once, piece by piece, from where the last scan stopped (or from
    // the carry's start if that is later: a trigger before it is in no window again).
    if (scan.at < from) scan.reset(from);
    if (scan.at < out.length) {
      let i = out.pieces.length - 1;
      while (out.starts[i]! > scan.at) i--;
      for (; i < out.pieces.length; i++) {
        const piece = out.pieces[i]!;
        scan.feed(piece, scan.at - out.starts[i]!, piece.length, false);
      }
    }
    if (scan.last >= from) return true;
    // Then pending, continuing from the released text's end (a copy: pending is not released).
    probe.copy(scan);
    return probe.feed(pending, 0, pending.length, true);
  };

  /** Text goes out: it joins the released text (the detectors' left context). */
  const release = (emit: string): void => {
    if (emit.length === 0) return;
    out.add(emit);
    carryText = null;
  };

  /**
   * `/(?:passw(?:or)?d|passwd|pwd|secret|token|api[_-]?key|key|bearer|auth)\W{0,3}\s*$/i` on
   * carry + pending[0, t): a credential word, at most three non-word characters, then only
   * whitespace to the end. Strip the trailing whitespace (all of it: a word character is not
   * whitespace, so a match never needs less), then try the word before 0-3 non-word characters.
   */
  /** Unit `q` of the released text followed by `pending` (one function, not a closure per call). */
  const pendingUnit = (q: number): number =>
    q >= out.length ? pending.charCodeAt(q - out.length) : out.unit(q);

  const credentialBefore = (t: number): boolean => {
    // Positions are in the released text: the carry is [from, out.length), then pending.
    const from = out.carryStart();
    const n = out.length;
    let w = n + t;
    while (w > from && isJsSpace(pendingUnit(w - 1))) w--;
    for (let k = 0; k <= 3 && w - k >= from; k++) {
      if (k > 0) {
        const c = pendingUnit(w - k);
        if (c < 128 && (CLASS[c]! & WORD) !== 0) break;
      }
      // A word ends at w - k - 1: only if that unit ends one of them (d, t, n, y, r, h).
      const last = w - k - 1 >= from ? lowerAscii(pendingUnit(w - k - 1)) : -1;
      if (last < 0 || last >= 128 || CREDENTIAL_LAST[last] === 0) continue;
      for (const word of CREDENTIAL_WORDS) {
        const s = w - k - word.length;
        if (s < from) continue;
        let i = 0;
        while (i < word.length && lowerAscii(pendingUnit(s + i)) === word.charCodeAt(i)) i++;
        if (i === word.length) return true;
      }
    }
    return false;
  };

  /** Whether pending[s, e) passes `GROUP_RE` and has a digit (length and digit checked first). */
  const digitGroup = (s: number, e: number): boolean => {
    if (e - s > 7) return false;
    let digit = false;
    for (let i = s; i < e && !digit; i++) {
      const c = pending.charCodeAt(i);
      digit = c >= 48 && c <= 57;
    }
    return digit && GROUP_RE.test(pending.slice(s, e));
  };

  /** Where in `pending` the held tail starts. */
  const holdFrom = (final: boolean): number => {
    if (final || !active) return pending.length;
    let hold = pending.length;
    // 1. The trailing token, when it could be (part of) a secret or PII.
    let t = pending.length;
    while (t > 0 && !isSpace(pending.charCodeAt(t - 1))) t--;
    const tokLength = pending.length - t;
    if (tokLength > 0) {
      const tok = pending.slice(t);
      if (sensitiveToken(tok) || credentialBefore(t)) hold = t;
      else if (piiAction !== 'off' && /^[\p{L}\p{N}]+$/u.test(tok)) hold = t; // e-mail local part
    }
    // 2. Digit groups that a card, phone or IBAN may continue ("4111 1111 1111 ", "+44 20 7946").
    if (tokLength === 0 || digitGroup(t, pending.length)) {
      let k = t;
      let groups = tokLength > 0 ? 1 : 0;
      for (;;) {
        let e = k;
        while (e > 0 && isSpace(pending.charCodeAt(e - 1)) && k - e < 2) e--;
        if (e === k) break;
        let s = e;
        while (s > 0 && !isSpace(pending.charCodeAt(s - 1))) s--;
        if (s === e || pending.length - s > 48 || !digitGroup(s, e)) break;
        groups++;
        k = s;
      }
      if (groups > 0) hold = Math.min(hold, k);
    }
    // 3. An open private key block.
    // (`indexOf` first: `lastIndexOf` has no fast search, and most pending text has no header.)
    const b = pending.indexOf('-----BEGIN') < 0 ? -1 : pending.lastIndexOf('-----BEGIN');
    if (b >= 0 && !pending.includes('-----END', b)) hold = Math.min(hold, b);
    // 4. The start of a deny word or canary.
    if (deny.length > 0) {
      const low = pending.toLowerCase();
      for (const d of deny)
        for (const p of d.prefixes)
          for (let n = Math.min(p.length - 1, low.length); n > 0; n--)
            if (low.endsWith(p.slice(0, n))) {
              hold = Math.min(hold, low.length - n);
              break;
            }
    }
    const cap = b >= 0 && hold === b ? MAX_KEY_HOLD : MAX_HOLD;
    return Math.max(hold, pending.length - cap);
  };

  const step = (final: boolean): OutputPush => {
    if (cut) return { emit: '' };
    if (!active) {
      const emit = pending;
      pending = '';
      return { emit };
    }
    let hold = holdFrom(final);
    // Fast path: nothing held and nothing a detector could match (every secret and PII shape has a
    // digit, a symbol, an upper-case pair or a credential word): send it without scanning.
    if (hold === pending.length && deny.length === 0 && !suspicious(pending)) {
      const emit = pending;
      pending = '';
      emittedTotal += emit.length;
      release(emit);
      return { emit };
    }
    const off = carryLength();
    const hits = mayMatch() ? detect(carry() + pending).filter((h) => h.end > off) : NO_HITS;
    if (hits.length === 0) {
      // Nothing found: what the general path below does with no hits, without its allocations.
      const emit = pending.slice(0, hold);
      pending = pending.slice(hold);
      emittedTotal += hold;
      release(emit);
      return { emit };
    }
    const newly: OutputFound[] = [];
    const note = (h: Hit) => {
      const key = `${h.detector}:${h.kind}:${h.start - off + emittedTotal}`;
      reported ??= new Set();
      if (reported.has(key)) return;
      reported.add(key);
      const f = { detector: h.detector, kind: h.kind, action: h.action };
      found.push(f);
      newly.push(f);
    };
    // A match that reaches into the held tail may still grow (or change kind): hold from its start.
    if (!final)
      for (const h of hits)
        if (h.end > off + hold && h.action !== 'flag') hold = Math.min(hold, Math.max(0, h.start - off));
    // Cut on the first complete blocking match.
    const blocker = hits.find((h) => h.action === 'block' && h.end <= off + hold);
    if (blocker) {
      note(blocker);
      const upto = Math.max(0, blocker.start - off);
      const emit = redactRange(pending.slice(0, upto), hits, off, upto);
      const scope =
        blocker.detector === 'secrets' || blocker.detector === 'pii' ? `${blocker.detector}:` : '';
      cut = { reason: `${scope}${blocker.kind}` };
      api.cut = cut;
      pending = '';
      emittedTotal += upto;
      return { emit, cut, found: newly };
    }
    for (const h of hits) if (h.start < off + hold) note(h);
    const emit =
      hits.length === 0 ? pending.slice(0, hold) : redactRange(pending.slice(0, hold), hits, off, hold);
    pending = pending.slice(hold);
    emittedTotal += hold;
    release(emit);
    return newly.length > 0 ? { emit, found: newly } : { emit };
  };

  // Plain properties, not getters (an object literal with accessors is built by runtime calls, a
  // cost per stream): `found` is the array itself, `cut` is set where the cut is decided.
  const api: { -readonly [K in keyof OutputScreener]: OutputScreener[K] } = {
    push(delta: string) {
      if (cut) return { emit: '' };
      pending += delta;
      return step(false);
    },
    flush() {
      return step(true).emit;
    },
    cut: null,
    found,
  };
  return api;
}

/** Apply `redact` hits to the part of pending being emitted (`[0, upto)`); window offsets shift by `off`. */
function redactRange(
  text: string,
  hits: readonly { start: number; end: number; kind: string; action: ScreeningAction }[],
  off: number,
  upto: number,
): string {
  let out = '';
  let at = 0;
  for (const h of hits) {
    if (h.action !== 'redact') continue;
    const s = Math.max(0, h.start - off);
    const e = Math.min(upto, h.end - off);
    if (e <= s || s < at) continue;
    out += text.slice(at, s) + `[REDACTED:${h.kind}]`;
    at = e;
  }
  return out + text.slice(at);
}

/** Screen a whole (non-streamed) answer with the same rules. */
export function screenOutputText(
  text: string,
  settings: ScreeningSettings,
  opts: OutputScreenerOptions = {},
): { text: string; cut: { reason: string } | null; found: readonly OutputFound[] } {
  const s = createOutputScreener(settings, opts);
  const first = s.push(text);
  const rest = s.cut ? '' : s.flush();
  return { text: first.emit + rest, cut: s.cut, found: s.found };
}

/**
 * A canary token for a task's server-side prompt, from caller-supplied random bytes (the core
 * has no randomness of its own): `sluice-canary-<hex>`.
 */
export function makeCanary(random: Uint8Array): string {
  let hex = '';
  for (const b of random.subarray(0, 12)) hex += b.toString(16).padStart(2, '0');
  return `sluice-canary-${hex}`;
}

/** The system prompt with the canary planted in it; an answer that repeats the prompt repeats it. */
export function withCanary(systemPrompt: string, canary: string): string {
  return `[${canary}]\n${systemPrompt}`;
}
