/**
 * Cheap, allocation-light features of a request for the anomaly detectors: network prefixes,
 * prompt-template fingerprints and reasoning-extraction cues. Pure; O(length of a bounded prefix).
 */

/** FNV-1a 32-bit over a string's UTF-16 code units. */
export function fnv(s: string, h = 0x811c9dc5): number {
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** The network a client address belongs to: the /24 of an IPv4 address, the /48 of an IPv6 one. */
export function netOf(ip: string): string {
  const v4 = ip.startsWith('::ffff:') ? ip.slice(7) : ip;
  if (v4.indexOf(':') < 0) {
    const last = v4.lastIndexOf('.');
    return last > 0 ? `${v4.slice(0, last)}.0/24` : v4;
  }
  const parts = ip.split(':', 3);
  return `${parts[0] ?? ''}:${parts[1] ?? ''}:${parts[2] ?? ''}::/48`;
}

/** The address range (/16, IPv6 /32) of a network as `netOf` writes it (`a.b.c.0/24`, `x:y:z::/48`). */
export function rangeOfNet(net: string): string {
  const sep = net.indexOf(':') >= 0 ? ':' : '.';
  const i = net.indexOf(sep);
  const j = i < 0 ? -1 : net.indexOf(sep, i + 1);
  return j < 0 ? net : net.slice(0, j);
}

/**
 * Loopback, private (RFC 1918, IPv6 ULA) and link-local addresses. Traffic from them is the
 * operator's own network, or a proxy whose address was not declared in `trustedProxies`: then every
 * tenant seems to come from one place, and correlating "many tenants, one network" would quarantine
 * them all. Cross-key network correlation (template campaigns, shared client fingerprints) skips them.
 */
export function isInternalAddress(ip: string): boolean {
  const v4 = ip.startsWith('::ffff:') ? ip.slice(7) : ip;
  if (v4.indexOf(':') < 0) {
    const dot = v4.indexOf('.');
    const a = Number(v4.slice(0, dot));
    const b = Number(v4.slice(dot + 1, v4.indexOf('.', dot + 1)));
    return (
      a === 127 ||
      a === 10 ||
      (a === 172 && b >= 16 && b <= 31) ||
      (a === 192 && b === 168) ||
      (a === 169 && b === 254)
    );
  }
  const lower = ip.toLowerCase();
  return lower === '::1' || /^f[cd][0-9a-f]{2}:/.test(lower) || /^fe[89ab][0-9a-f]:/.test(lower);
}

/** The /16 of an IPv4 address (credential stuffing spread over a wider range); '' for IPv6. */
export function wideNetOf(ip: string): string {
  const v4 = ip.startsWith('::ffff:') ? ip.slice(7) : ip;
  if (v4.indexOf(':') >= 0) return '';
  // Exactly four dot-separated parts (as split('.') would count them), without splitting: this runs
  // for every request once anything is quarantined.
  const d1 = v4.indexOf('.');
  const d2 = d1 < 0 ? -1 : v4.indexOf('.', d1 + 1);
  const d3 = d2 < 0 ? -1 : v4.indexOf('.', d2 + 1);
  if (d3 < 0 || v4.indexOf('.', d3 + 1) >= 0) return '';
  return `${v4.slice(0, d2)}.0.0/16`;
}

/** Only this many characters of a prompt are looked at (templates show in their first words). */
export const PROMPT_PREFIX = 400;

/** Words a template fingerprint keeps: enough to name the fixed instruction, not the filled slot. */
const TEMPLATE_WORDS = 4;

export interface PromptFeatures {
  /** Fingerprint of the normalised opening words (digits, quoted spans and names replaced). 0 if empty. */
  template: number;
  /** Fingerprint of the normalised closing words, for templates whose slot comes first. 0 if empty. */
  tail: number;
  /** The prompt asks for the model's reasoning ("step by step", "chain of thought", ...). */
  reasoning: boolean;
  /** Length class: 0 (< 64 chars), 1 (< 512), 2 (< 4096), 3 (longer). */
  lengthClass: number;
}

export const REASONING =
  /step[- ]by[- ]step|chain[- ]of[- ]thought|show (?:your|all) (?:work|reasoning)|explain (?:your|the) reasoning|reasoning (?:trace|process)|think (?:carefully|out loud|aloud)|walk me through|derive|justify each step/i;

/**
 * Normalises a prompt into words: lower case, every digit run -> `0`, quoted spans -> `q`,
 * capitalised words after the first (names) -> `n`, punctuation dropped. Returns up to `max` words
 * from the start (or the end when `fromEnd`).
 */
export function templateWords(text: string, max: number, fromEnd = false): string[] {
  const s = fromEnd ? text.slice(-PROMPT_PREFIX) : text.slice(0, PROMPT_PREFIX);
  const words: string[] = [];
  let cur = '';
  let quote = '';
  let first = true;
  let cap = false;
  const push = () => {
    if (cur.length === 0) return;
    words.push(cap && !first ? 'n' : cur);
    first = false;
    cur = '';
    cap = false;
  };
  for (let i = 0; i < s.length; i++) {
    const c = s[i]!;
    if (quote) {
      if (c === quote) {
        quote = '';
        words.push('q');
        first = false;
      }
      continue;
    }
    if (c === '"' || c === '«' || c === '“') {
      push();
      quote = c === '“' ? '”' : c === '«' ? '»' : '"';
      continue;
    }
    const code = c.charCodeAt(0);
    if (code >= 48 && code <= 57) {
      if (!cur.endsWith('0')) cur += '0';
      continue;
    }
    const lower = c.toLowerCase();
    if (lower !== c.toUpperCase()) {
      if (cur.length === 0 && lower !== c) cap = true;
      cur += lower;
      continue;
    }
    if (c === "'" || c === '-') continue;
    push();
    if (!fromEnd && words.length >= max) break;
  }
  push();
  if (quote) words.push('q');
  return fromEnd ? words.slice(-max) : words.slice(0, max);
}

/** `templateWords` semantics, hashed as the words go by: no arrays, no strings (ASCII fast path). */
class TemplateHasher {
  /** Words emitted so far in this scan. */
  n = 0;
  /** Head mode: running FNV-1a of the words joined by spaces (first `max`). */
  h = 0;
  max = 0;
  /** Tail mode: the last 3 words as (kind, start, end); kind 0 literal, 1 'n', 2 'q'. */
  readonly ring = new Int32Array(9);
  tail = false;

  reset(max: number, tail: boolean): void {
    this.n = 0;
    this.h = 0x811c9dc5;
    this.max = max;
    this.tail = tail;
  }

  word(s: string, kind: number, start: number, end: number): void {
    if (this.tail) {
      const i = (this.n % 3) * 3;
      this.ring[i] = kind;
      this.ring[i + 1] = start;
      this.ring[i + 2] = end;
    } else if (this.n < this.max) {
      if (this.n > 0) this.h = Math.imul(this.h ^ 32, 0x01000193);
      this.h = hashWord(s, kind, start, end, this.h);
    }
    this.n++;
  }

  /** Tail mode: FNV-1a of `~` + the last three words joined by spaces. */
  tailHash(s: string): number {
    let h = Math.imul(0x811c9dc5 ^ 126, 0x01000193);
    for (let k = 0; k < 3; k++) {
      const i = ((this.n - 3 + k) % 3) * 3;
      if (k > 0) h = Math.imul(h ^ 32, 0x01000193);
      h = hashWord(s, this.ring[i]!, this.ring[i + 1]!, this.ring[i + 2]!, h);
    }
    return h >>> 0;
  }
}

/** Hashes one normalised word into `h`: 'n', 'q', or the span lower-cased with digit runs as '0'. */
function hashWord(s: string, kind: number, start: number, end: number, h: number): number {
  if (kind === 1) return Math.imul(h ^ 110, 0x01000193);
  if (kind === 2) return Math.imul(h ^ 113, 0x01000193);
  let zero = false;
  for (let i = start; i < end; i++) {
    const code = s.charCodeAt(i);
    if (code >= 48 && code <= 57) {
      if (!zero) h = Math.imul(h ^ 48, 0x01000193);
      zero = true;
    } else if (code === 39 || code === 45) {
    } else if (code < 128) {
      h = Math.imul(h ^ (code >= 65 && code <= 90 ? code + 32 : code), 0x01000193);
      zero = false;
    } else {
      const lower = s[i]!.toLowerCase();
      for (let j = 0; j < lower.length; j++) h = Math.imul(h ^ lower.charCodeAt(j), 0x01000193);
      zero = lower.endsWith('0');
    }
  }
  return h;
}

/** 0 not a word character, 1 letter, 2 digit, 3 skipped inside a word (' and -), 4 opens a quote. */
function charClass(code: number, s: string, i: number): number {
  if (code >= 48 && code <= 57) return 2;
  if (code < 128) {
    if ((code >= 65 && code <= 90) || (code >= 97 && code <= 122)) return 1;
    if (code === 39 || code === 45) return 3;
    return code === 34 ? 4 : 0;
  }
  if (code === 0xab || code === 0x201c) return 4;
  const c = s[i]!;
  return c.toLowerCase() !== c.toUpperCase() ? 1 : 0;
}

function isUpper(code: number, s: string, i: number): boolean {
  if (code < 128) return code >= 65 && code <= 90;
  const c = s[i]!;
  return c.toLowerCase() !== c;
}

/** Scans `s[from, to)` like `templateWords`, handing every word to `w`. */
function scanWords(s: string, from: number, to: number, w: TemplateHasher): void {
  let start = -1;
  let has = false;
  let cap = false;
  let quote = 0;
  for (let i = from; i < to; i++) {
    const code = s.charCodeAt(i);
    if (quote) {
      if (code === quote) {
        quote = 0;
        w.word(s, 2, i, i);
      }
      continue;
    }
    const cls = charClass(code, s, i);
    if (cls === 0 || cls === 4) {
      if (has) w.word(s, cap && w.n > 0 ? 1 : 0, start, i);
      start = -1;
      has = false;
      cap = false;
      if (cls === 4) quote = code === 0x201c ? 0x201d : code === 0xab ? 0xbb : 34;
      else if (!w.tail && w.n >= w.max) return;
      continue;
    }
    if (start < 0) start = i;
    if (cls === 1 && !has && isUpper(code, s, i)) cap = true;
    if (cls !== 3) has = true;
  }
  if (has) w.word(s, cap && w.n > 0 ? 1 : 0, start, to);
  if (quote) w.word(s, 2, to, to);
}

const hasher = new TemplateHasher();

/** The last words `tailBackward` found, from the end: (cap, start, end) each. */
const back = new Int32Array(12);

/**
 * The tail fingerprint of `s[from, to)` as `scanWords` in tail mode gives it, for a window without
 * quote marks (nothing then depends on what came before a word): the last three words are found
 * scanning backwards from the end, instead of scanning the whole window forwards. -1 when the
 * window holds fewer than three words.
 */
function tailBackward(s: string, from: number, to: number): number {
  let found = 0;
  let i = to - 1;
  // A fourth word decides only that the third from the end is not the window's first (see `kind`).
  while (found < 4) {
    while (i >= from && charClass(s.charCodeAt(i), s, i) === 0) i--;
    if (i < from) break;
    const end = i + 1;
    while (i >= from && charClass(s.charCodeAt(i), s, i) !== 0) i--;
    const start = i + 1;
    // A word needs a letter or digit (a run of ' and - alone is none); it is a name when the first
    // of them is an upper-case letter.
    let j = start;
    let cls = 3;
    for (; j < end; j++) {
      cls = charClass(s.charCodeAt(j), s, j);
      if (cls !== 3) break;
    }
    if (j === end) continue;
    if (found < 3) {
      back[found * 3] = cls === 1 && isUpper(s.charCodeAt(j), s, j) ? 1 : 0;
      back[found * 3 + 1] = start;
      back[found * 3 + 2] = end;
    }
    found++;
  }
  if (found < 3) return -1;
  let h = Math.imul(0x811c9dc5 ^ 126, 0x01000193);
  for (let k = 2; k >= 0; k--) {
    if (k < 2) h = Math.imul(h ^ 32, 0x01000193);
    // The window's first word is never a name (`w.n > 0` in scanWords).
    const kind = k === 2 && found === 3 ? 0 : back[k * 3]!;
    h = hashWord(s, kind, back[k * 3 + 1]!, back[k * 3 + 2]!, h);
  }
  return h >>> 0;
}

/** The template fingerprints of a prompt, as `promptFeatures` computes them, without allocating. */
export function templateHashes(text: string): { template: number; tail: number } {
  hasher.reset(TEMPLATE_WORDS, false);
  scanWords(text, 0, Math.min(text.length, PROMPT_PREFIX), hasher);
  const template = hasher.n >= 2 ? hasher.h >>> 0 || 1 : 0;
  let tail = 0;
  if (text.length > 120) {
    const from = Math.max(0, text.length - PROMPT_PREFIX);
    if (text.indexOf('"', from) < 0 && text.indexOf('«', from) < 0 && text.indexOf('“', from) < 0) {
      const h = tailBackward(text, from, text.length);
      if (h >= 0) tail = h || 1;
    } else {
      hasher.reset(3, true);
      scanWords(text, from, text.length, hasher);
      if (hasher.n >= 3) tail = hasher.tailHash(text) || 1;
    }
  }
  scratch.template = template;
  scratch.tail = tail;
  return scratch;
}
const scratch = { template: 0, tail: 0 };

export function promptFeatures(text: string): PromptFeatures {
  if (text.length === 0) return { template: 0, tail: 0, reasoning: false, lengthClass: 0 };
  const { template, tail } = templateHashes(text);
  return {
    template,
    tail,
    reasoning: REASONING.test(text.length > PROMPT_PREFIX * 2 ? text.slice(0, PROMPT_PREFIX * 2) : text),
    lengthClass: lengthClassOf(text.length),
  };
}

/** Length class: 0 (< 64 chars), 1 (< 512), 2 (< 4096), 3 (longer). */
export function lengthClassOf(n: number): number {
  // The three comparisons made for every length (3 less the thresholds it stays under: the chained
  // form's value for every number, NaN included), not one after another: the first prompt of 512
  // characters or more came minutes into a run, after the detectors' `observe` was optimized
  // without ever making the third, and deoptimized it.
  return 3 - (n < 64 ? 1 : 0) - (n < 512 ? 1 : 0) - (n < 4096 ? 1 : 0);
}

/** The reference implementation `templateHashes` must agree with (tests compare them). */
export function promptFeaturesReference(text: string): { template: number; tail: number } {
  if (text.length === 0) return { template: 0, tail: 0 };
  const head = templateWords(text, TEMPLATE_WORDS);
  const tail = text.length > 120 ? templateWords(text, 3, true) : [];
  return {
    template: head.length >= 2 ? fnv(head.join(' ')) || 1 : 0,
    tail: tail.length >= 3 ? fnv(`~${tail.join(' ')}`) || 1 : 0,
  };
}

/** A client fingerprint: user agent, header names in order, and network. */
export function clientFingerprint(
  userAgent: string | null,
  headerNames: readonly string[],
  net: string,
): number {
  return fnv(net, clientHash(userAgent, headerNames));
}

/** The client part of a fingerprint (user agent and header names in order), on any network. */
export function clientHash(userAgent: string | null, headerNames: readonly string[]): number {
  let h = fnv(userAgent ?? '-');
  for (const n of headerNames) h = fnv(n, h ^ 0x2c);
  return h;
}

/** The network of a fingerprint from its client part: `clientFingerprint` = `fingerprintOn(clientHash, net)`. */
export function fingerprintOn(client: number, net: string): number {
  return fnv(net, client);
}

/**
 * An IPv4 address's /22 (`a.b.c.0/22`, c a multiple of 4): a hoster's block of addresses, which a
 * farm of accounts spreads over four /24s. Other addresses: their `netOf` (IPv6 /48).
 */
export function blockOf(ip: string): string {
  const v4 = ip.startsWith('::ffff:') ? ip.slice(7) : ip;
  const p = v4.split('.');
  if (p.length !== 4) return netOf(ip);
  return `${p[0]}.${p[1]}.${Number(p[2]) & 0xfc}.0/22`;
}

/** Header names that say nothing about the client (ids, credentials, sizes): not part of its fingerprint. */
export const NOT_FINGERPRINT = [
  'authorization',
  'x-api-key',
  'x-request-id',
  'content-length',
  'host',
  'cookie',
];
/**
 * Length -> the names of NOT_FINGERPRINT of that length. A header name is compared (lower-cased as
 * it goes, no copy) only with those: most names have a length none of them has. Before, every name
 * was hashed once more and looked up in a map, to confirm a hit against the name anyway.
 */
const NOT_FP_BY_LENGTH: (string[] | undefined)[] = [];
for (const n of NOT_FINGERPRINT) {
  const list = NOT_FP_BY_LENGTH[n.length];
  if (list) list.push(n);
  else NOT_FP_BY_LENGTH[n.length] = [n];
}

/** Whether `name`, lower-cased, is one of NOT_FINGERPRINT. */
function notFingerprint(name: string): boolean {
  const list = name.length < NOT_FP_BY_LENGTH.length ? NOT_FP_BY_LENGTH[name.length] : undefined;
  if (list === undefined) return false;
  for (let i = 0; i < list.length; i++) if (equalsLower(name, list[i]!)) return true;
  return false;
}

/** `name.toLowerCase() === lower` for an ASCII lower-case `lower`, without allocating. */
function equalsLower(name: string, lower: string): boolean {
  if (name.length !== lower.length) return false;
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i);
    if ((c >= 65 && c <= 90 ? c + 32 : c) !== lower.charCodeAt(i)) return false;
  }
  return true;
}

/** FNV-1a of a header name, lower-cased (ASCII; header names are tokens). */
function lowerFnv(s: string, h: number): number {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    h = Math.imul(h ^ (c >= 65 && c <= 90 ? c + 32 : c), 0x01000193);
  }
  return h >>> 0;
}

/**
 * `clientFingerprint` over Node's raw header list (name, value, ...): the first 32 names, lower-cased,
 * without those in `NOT_FINGERPRINT`; the same value as `clientFingerprint` of that name list.
 */
export function rawClientFingerprint(userAgent: string | null, raw: readonly string[], net: string): number {
  return fnv(net, rawClientHash(userAgent, raw));
}

/** `clientHash` over Node's raw header list, as `rawClientFingerprint` filters it. */
export function rawClientHash(userAgent: string | null, raw: readonly string[]): number {
  let h = fnv(userAgent ?? '-');
  let names = 0;
  for (let i = 0; i < raw.length && names < 32; i += 2) {
    const name = raw[i]!;
    if (notFingerprint(name)) continue;
    h = lowerFnv(name, (h ^ 0x2c) >>> 0);
    names++;
  }
  return h;
}
