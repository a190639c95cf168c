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
  const parts = v4.split('.');
  return parts.length === 4 ? `${parts[0]}.${parts[1]}.0.0/16` : '';
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

const REASONING =
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

export function promptFeatures(text: string): PromptFeatures {
  if (text.length === 0) return { template: 0, tail: 0, reasoning: false, lengthClass: 0 };
  const head = templateWords(text, TEMPLATE_WORDS);
  const tail = text.length > 120 ? templateWords(text, 3, true) : [];
  return {
    template: head.length >= 2 ? fnv(head.join(' ')) || 1 : 0,
    tail: tail.length >= 3 ? fnv(`~${tail.join(' ')}`) || 1 : 0,
    reasoning: REASONING.test(text.length > PROMPT_PREFIX * 2 ? text.slice(0, PROMPT_PREFIX * 2) : text),
    lengthClass: text.length < 64 ? 0 : text.length < 512 ? 1 : text.length < 4096 ? 2 : 3,
  };
}

/** A client fingerprint: user agent, header names in order, and network. */
export function clientFingerprint(userAgent: string | null, headerNames: string[], net: string): number {
  let h = fnv(userAgent ?? '-');
  for (const n of headerNames) h = fnv(n, h ^ 0x2c);
  return fnv(net, h);
}
