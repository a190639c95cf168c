/**
 * REFERENCE COPY, for `osr-differential.test.ts` only: `src/core/screening/pii.ts` as it was
 * before its loops were restructured so that no code follows a long loop (commit 8b56e94), kept
 * verbatim but for the import paths, so the new code can be checked against it on random texts.
 * Not used by `src/`.
 */
/**
 * PII detector: e-mail addresses, phone numbers, payment cards (Luhn and issuer prefix), IBANs
 * (country length and mod-97), US social security numbers (SSA exclusions), UK National Insurance
 * numbers, and IPv4 / IPv6 addresses. Each finding has a kind and a span on the original text.
 *
 * Kinds, as named in policy (`screening.pii.kinds`): `email`, `phone`, `card`, `iban`, `ssn`,
 * `nino`, `ip`. Validators turn look-alikes away (a 16-digit order number that fails Luhn, an IBAN
 * with a bad checksum, 999.1.1.1), so the regexes can stay permissive.
 */
import { type Census, census } from '../../../../src/core/screening/census.js';
import { byStart, type Finding, sortInPlace } from '../../../../src/core/screening/findings.js';

export const PII_KINDS = ['email', 'phone', 'card', 'iban', 'ssn', 'nino', 'ip'] as const;
export type PiiKind = (typeof PII_KINDS)[number];
/** Each kind's bit in `detectPii`'s mask of kinds to look for. */
const BIT = Object.fromEntries(PII_KINDS.map((k, i) => [k, 1 << i])) as Record<PiiKind, number>;
const KIND_BIT = new Map<string, number>(PII_KINDS.map((k, i) => [k, 1 << i]));

const EMAIL_RE =
  /(?<![A-Za-z0-9._%+:/-])[A-Za-z0-9](?:[A-Za-z0-9._%+-]{0,63})@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.){1,8}[A-Za-z]{2,24}(?![A-Za-z0-9-])/g;

/** EMAIL_RE anchored at one position: tried only within 64 characters before each `@`. */
const EMAIL_AT_RE = new RegExp(EMAIL_RE.source, 'y');

/**
 * The spans of `text.matchAll(EMAIL_RE)`, found without scanning every position: a match's local
 * part is at most 64 characters with no `@`, so it starts within 64 characters before the first
 * `@` after its start. Candidate starts are tried in text order, so the matches are the same.
 */
export function emailSpans(text: string): [number, number][] {
  const out: [number, number][] = [];
  let from = 0;
  let at = text.indexOf('@');
  while (at >= 0) {
    let next = at + 1;
    // A match starting at p has only local-part characters between p and this `@`: start at the
    // first position after the last character that is not one.
    let lo = at;
    const min = Math.max(from, at - 64);
    while (lo > min && isLocalChar(text.charCodeAt(lo - 1))) lo--;
    for (let p = lo; p <= at; p++) {
      EMAIL_AT_RE.lastIndex = p;
      const m = EMAIL_AT_RE.exec(text);
      if (m) {
        out.push([p, p + m[0].length]);
        from = p + m[0].length;
        next = from;
        break;
      }
    }
    at = text.indexOf('@', next);
  }
  return out;
}

/** `[A-Za-z0-9._%+-]`, the characters of {@link EMAIL_RE}'s local part. */
function isLocalChar(c: number): boolean {
  return (
    (c >= 97 && c <= 122) ||
    (c >= 65 && c <= 90) ||
    (c >= 48 && c <= 57) ||
    c === 46 ||
    c === 95 ||
    c === 37 ||
    c === 43 ||
    c === 45
  );
}

const CARD_RE = /(?<![\d-])(?:\d[ -]?){12,18}\d(?![\d-])/g;

function luhn(digits: string): boolean {
  let sum = 0;
  let dbl = false;
  for (let i = digits.length - 1; i >= 0; i--) {
    let d = digits.charCodeAt(i) - 48;
    if (dbl) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
    dbl = !dbl;
  }
  return sum % 10 === 0;
}

function cardIssuer(d: string): boolean {
  const n = d.length;
  if (d[0] === '4') return n === 13 || n === 16 || n === 19;
  const p2 = Number(d.slice(0, 2));
  const p4 = Number(d.slice(0, 4));
  if (p2 >= 51 && p2 <= 55) return n === 16;
  if (p4 >= 2221 && p4 <= 2720) return n === 16;
  if (p2 === 34 || p2 === 37) return n === 15;
  if (p2 === 36 || p2 === 38 || p2 === 39 || (p2 === 30 && Number(d[2]) <= 5)) return n >= 14 && n <= 19;
  if (d.startsWith('6011') || d.startsWith('65') || (p4 >= 6440 && p4 <= 6499)) return n >= 16;
  if (p2 === 35) return n >= 16;
  if (p2 === 62 || p2 === 81) return n >= 16; // UnionPay
  if (d.startsWith('50') || (p2 >= 56 && p2 <= 69)) return n >= 12; // Maestro
  return false;
}

/** IBAN lengths by country (SWIFT registry). */
const IBAN_LEN: Record<string, number> = {
  AD: 24,
  AE: 23,
  AL: 28,
  AT: 20,
  AZ: 28,
  BA: 20,
  BE: 16,
  BG: 22,
  BH: 22,
  BI: 27,
  BR: 29,
  BY: 28,
  CH: 21,
  CR: 22,
  CY: 28,
  CZ: 24,
  DE: 22,
  DJ: 27,
  DK: 18,
  DO: 28,
  EE: 20,
  EG: 29,
  ES: 24,
  FI: 18,
  FK: 18,
  FO: 18,
  FR: 27,
  GB: 22,
  GE: 22,
  GI: 23,
  GL: 18,
  GR: 27,
  GT: 28,
  HR: 21,
  HU: 28,
  IE: 22,
  IL: 23,
  IQ: 23,
  IS: 26,
  IT: 27,
  JO: 30,
  KW: 30,
  KZ: 20,
  LB: 28,
  LC: 32,
  LI: 21,
  LT: 20,
  LU: 20,
  LV: 21,
  LY: 25,
  MC: 27,
  MD: 24,
  ME: 22,
  MK: 19,
  MN: 20,
  MR: 27,
  MT: 31,
  MU: 30,
  NI: 28,
  NL: 18,
  NO: 15,
  OM: 23,
  PK: 24,
  PL: 28,
  PS: 29,
  PT: 25,
  QA: 29,
  RO: 24,
  RS: 22,
  RU: 33,
  SA: 24,
  SC: 31,
  SD: 18,
  SE: 24,
  SI: 19,
  SK: 24,
  SM: 27,
  SO: 23,
  ST: 25,
  SV: 28,
  TL: 23,
  TN: 24,
  TR: 26,
  UA: 29,
  VA: 22,
  VG: 24,
  XK: 20,
  YE: 30,
  // Partial-IBAN countries in common use
  DZ: 26,
  AO: 25,
  BJ: 28,
  BF: 28,
  CM: 27,
  CV: 25,
  IR: 26,
  CI: 28,
  MG: 27,
  ML: 28,
  MZ: 25,
  SN: 28,
};

const IBAN_RE = /(?<![A-Za-z0-9])([A-Z]{2}\d{2}(?:[ -]?[A-Z0-9]){10,31})(?![A-Za-z0-9])/g;

function ibanValid(raw: string): string | null {
  const s = raw.replace(/[ -]/g, '');
  const want = IBAN_LEN[s.slice(0, 2)];
  if (want === undefined) return null;
  if (s.length < want) return null;
  const iban = s.slice(0, want);
  const moved = iban.slice(4) + iban.slice(0, 4);
  let rem = 0;
  for (const ch of moved) {
    const c = ch.charCodeAt(0);
    const v = c >= 65 ? String(c - 55) : ch;
    for (const d of v) rem = (rem * 10 + (d.charCodeAt(0) - 48)) % 97;
  }
  return rem === 1 ? iban : null;
}

const SSN_RE = /(?<![\d-])(\d{3})([- .])(\d{2})\2(\d{4})(?![\d-])/g;
const NINO_RE =
  /(?<![A-Za-z0-9])(?!BG|GB|KN|NK|NT|TN|ZZ)[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z] ?\d{2} ?\d{2} ?\d{2} ?[A-D](?![A-Za-z0-9])/g;

const IPV4_RE =
  /(?<![\d.A-Za-z])(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(?:\/(?:3[0-2]|[12]?\d))?(?![\d.]*\d)/g;
const IPV6_RE =
  /(?<![A-Za-z0-9:])(?:[0-9A-Fa-f]{0,4}:){2,7}(?:[0-9A-Fa-f]{1,4}|(?:\d{1,3}\.){3}\d{1,3})?(?![A-Za-z0-9:])/g;

/**
 * Every match of {@link IPV6_RE} has two colons at most four hex digits apart (its first two
 * groups); a text without that pair has no candidate, and this test scans for colons only.
 */
const IPV6_HINT_RE = /:[0-9A-Fa-f]{0,4}:/;

function ipv6Valid(s: string): boolean {
  if (s === '::1' || s === '::') return true;
  if (!/[0-9A-Fa-f]/.test(s)) return false;
  const v4 = /(\d{1,3}\.){3}\d{1,3}$/.test(s);
  const parts = s.split('::');
  if (parts.length > 2) return false;
  const groups = (p: string) => (p === '' ? [] : p.split(':'));
  const head = groups(parts[0]!);
  const tail = parts.length === 2 ? groups(parts[1]!) : [];
  const all = [...head, ...tail];
  if (all.some((g, i) => g === '' || (g.length > 4 && !(v4 && i === all.length - 1)))) return false;
  const count = all.length + (v4 ? 1 : 0);
  if (parts.length === 1) return count === 8;
  // `::` must stand for at least one group; "a::b" style needs a hex letter or a known prefix to
  // be told from a time such as 10::30 or a C++ scope such as std::vector.
  if (count > 7) return false;
  if (all.length === 0) return true;
  return all.some((g) => /[a-fA-F]/.test(g) || g.length >= 3) || head.length + tail.length >= 3;
}

/**
 * Phone numbers: a leading `+` and 8-15 digits, or a national shape with separators
 * ((555) 123-4567, 555-123-4567, 06 12 34 56 78, 020 7946 0958), or 7+ digits right after a phone
 * word (tel, phone, mobile, call, fax ...).
 */
const EXT = '(?:\\s?(?:x|ext\\.?)\\s?\\d{1,6})?';
const PHONE_RE = new RegExp(
  '(?<![\\w+/.-])(?:' +
    [
      '\\+\\d{1,3}[\\s.-]?(?:\\(\\d{1,4}\\)[\\s.-]?)?\\d{1,5}(?:[\\s.-]?\\d{1,5}){1,5}',
      '(?:001[\\s.-]?)?\\(\\d{2,5}\\)[\\s.-]?\\d{2,5}(?:[\\s.-]?\\d{2,5}){1,3}',
      '(?:00|0)\\d{1,4}(?:[\\s.-]\\d{2,5}){2,5}',
      '(?:001[\\s.-])?\\d{3}[\\s.-]\\d{3}[\\s.-]\\d{4}',
      '\\d{3}[.-]\\d{4}',
      '\\d{2}(?:[ .]\\d{2}){4}',
      '0\\d{9,10}',
    ].join('|') +
    `)${EXT}(?![\\w/]|[.-]\\d)`,
  'g',
);
/** A number after a phone word (tel, phone, call, reach us at ...), in any common grouping. */
const PHONE_WORD_RE =
  /(?:phone|tel(?:ephone)?|mobile|cell|fax|call|reach (?:me|us|you)|answering at|registered|whatsapp|sms|text me|contact|telefon|téléphone|teléfono|handy|número|numero|phones?)\b[^\d+]{0,25}(\+?\(?\d(?:[\d\s().-]{5,18})\d)/gi;
/** A number before a phone word: "085 175 7641-Office", "2813882583 mobile". */
const PHONE_BEFORE_RE =
  /(?<![\w+/.-])(\+?\(?\d[\d\s().-]{5,18}\d(?:x\d{1,6})?)[\s-]{0,2}(?:office|fax|mobile|cell|home|work)\b/gi;

function phoneDigits(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) >= 48 && s.charCodeAt(i) <= 57) n++;
  return n;
}

function looksLikeDate(s: string): boolean {
  return /^\d{4}[-./]\d{1,2}[-./]\d{1,2}$|^\d{1,2}[-./]\d{1,2}[-./]\d{2,4}$/.test(s.trim());
}

/**
 * All PII of the requested kinds in `text`, by kind and span, in text order. With `gates` (the
 * default) a kind whose necessary condition is missing from the text's census is not searched
 * (no digits run long enough for a phone, no `[A-Z]{2}\d{2}` for an IBAN ...); `gates: false`
 * searches every kind, with the same results (`census-gates.test.ts`).
 */
export function detectPii(
  text: string,
  kinds: readonly string[] = PII_KINDS,
  opts: { gates?: boolean; census?: Census } = {},
): Finding[] {
  // The kinds to look for as a bit mask (a Set per call was a twentieth of what screening a
  // 4 kB prompt allocated); unknown names are ignored, as the Set ignored them.
  let want = 0;
  for (const k of kinds) want |= KIND_BIT.get(k) ?? 0;
  const c = opts.gates !== false ? (opts.census ?? census(text)) : null;
  if (c) {
    if (!c.at) want &= ~BIT.email;
    if (!c.upperPairDigits) {
      want &= ~BIT.iban;
      want &= ~BIT.nino;
    }
    if (c.phoneRunDigits < 13) want &= ~BIT.card;
    if (c.phoneRunDigits < 9) want &= ~BIT.ssn;
    if (c.phoneRunDigits < 7) want &= ~BIT.phone;
    if (c.digitDotRunDots < 3 && !c.colonPair) want &= ~BIT.ip;
  }
  const out: Finding[] = [];
  const add = (kind: string, start: number, end: number) => {
    if (!out.some((o) => o.start < end && start < o.end)) out.push({ detector: 'pii', kind, start, end });
  };
  const hasAt = text.includes('@');
  if ((want & BIT.email) !== 0 && hasAt)
    for (const [start, end] of emailSpans(text)) add('email', start, end);
  if ((want & BIT.iban) !== 0)
    for (const m of text.matchAll(IBAN_RE)) {
      const v = ibanValid(m[1]!);
      if (!v) continue;
      // Span: the characters that make up the validated IBAN (separators included).
      let seen = 0;
      let end = m.index!;
      while (seen < v.length && end < text.length) {
        if (/[A-Za-z0-9]/.test(text[end]!)) seen++;
        end++;
      }
      add('iban', m.index!, end);
    }
  if ((want & BIT.card) !== 0)
    for (const m of text.matchAll(CARD_RE)) {
      const raw = m[0];
      const d = raw.replace(/[ -]/g, '');
      // Mixed separators ("1234 5678-9012") are not how cards are written.
      if (raw.includes(' ') && raw.includes('-')) continue;
      if (d.length < 13 || d.length > 19 || !luhn(d) || !cardIssuer(d)) continue;
      add('card', m.index!, m.index! + raw.length);
    }
  if ((want & BIT.ssn) !== 0)
    for (const m of text.matchAll(SSN_RE)) {
      const [a, b, c] = [m[1]!, m[3]!, m[4]!];
      if (a === '000' || a === '666' || a[0] === '9' || b === '00' || c === '0000') continue;
      // A well-known invalid pair used in examples, and repeated digits.
      if (/^(\d)\1{2}$/.test(a) && a === b.padEnd(3, b[0]) && c === a[0]!.repeat(4)) continue;
      add('ssn', m.index!, m.index! + m[0].length);
    }
  if ((want & BIT.nino) !== 0)
    for (const m of text.matchAll(NINO_RE)) add('nino', m.index!, m.index! + m[0].length);
  if ((want & BIT.ip) !== 0) {
    if (!c || c.digitDotRunDots >= 3)
      for (const m of text.matchAll(IPV4_RE)) {
        // Version strings ("version 1.2.3.4") are not addresses.
        const before = text.slice(Math.max(0, m.index! - 9), m.index!).toLowerCase();
        if (/\bv(?:ersion)?\s?$/.test(before)) continue;
        add('ip', m.index!, m.index! + m[0].length);
      }
    if (c ? c.colonPair : IPV6_HINT_RE.test(text))
      for (const m of text.matchAll(IPV6_RE)) {
        const s = m[0];
        const start = m.index!;
        // "foo2001:db8::1": the address starts where the hex digits do.
        if (ipv6Valid(s)) add('ip', start, start + s.length);
        else if (s.endsWith(':') && ipv6Valid(s.slice(0, -1))) add('ip', start, start + s.length - 1);
      }
  }
  if ((want & BIT.phone) !== 0) {
    // Digit groups inside an IBAN-shaped or card-shaped run are not phone numbers, valid or not.
    const taken: [number, number][] = [];
    for (const m of text.matchAll(IBAN_RE)) taken.push([m.index!, m.index! + m[0].length]);
    for (const m of text.matchAll(CARD_RE)) taken.push([m.index!, m.index! + m[0].length]);
    const phone = (start: number, s: string) => {
      const n = phoneDigits(s);
      if (n < 7 || n > 15 || looksLikeDate(s)) return;
      const end = start + s.length;
      if (taken.some(([a, b]) => a < end && start < b)) return;
      add('phone', start, end);
    };
    for (const m of text.matchAll(PHONE_RE)) phone(m.index!, m[0]);
    for (const m of text.matchAll(PHONE_WORD_RE)) phone(m.index! + m[0].lastIndexOf(m[1]!), m[1]!.trim());
    for (const m of text.matchAll(PHONE_BEFORE_RE)) phone(m.index!, m[1]!.trim());
  }
  return sortInPlace(out, byStart);
}
