/**
 * REFERENCE COPY, for `output-differential.test.ts` only: `src/core/screening/output.ts` as it was
 * before the incremental screener (commit 920f00b), kept verbatim but for the import paths, so
 * the new screener can be checked against it on random chunkings. Not used by `src/`.
 */
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
 * run over the held text plus the last 256 emitted characters, so a secret split over three
 * chunks is found. `redact` replaces a match with `[REDACTED:<kind>]` (a match whose first
 * characters already went out has the rest replaced); `block` cuts: the text before the match is
 * emitted, then `cut: { reason }` and nothing more. `flag` only reports. Pure.
 */

import { census, isJsSpace } from '../../../../src/core/screening/census.js';
import type { Finding } from '../../../../src/core/screening/findings.js';
import { detectPii } from '../../../../src/core/screening/pii.js';
import type { ScreeningAction, ScreeningSettings } from '../../../../src/core/screening/policy.js';
import { detectSecrets } from '../../../../src/core/screening/secrets.js';

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
const CREDENTIAL_CONTEXT_RE =
  /(?:passw(?:or)?d|passwd|pwd|secret|token|api[_-]?key|key|bearer|auth)\W{0,3}\s*$/i;
const GROUP_RE = /^[+(]?[0-9A-Z()+.-]{1,6}$/;

const SUSPICIOUS_CHAR_RE = /[0-9@_=/+~:$%\\|#]|--|[a-z][A-Z]|[A-Z]{2}/;
const SUSPICIOUS_WORD_RE = /bearer|passw|secret|token|api.?key|auth|private/i;

function suspicious(s: string): boolean {
  return SUSPICIOUS_CHAR_RE.test(s) || SUSPICIOUS_WORD_RE.test(s);
}

function isSpace(c: string): boolean {
  return c === ' ' || c === '\n' || c === '\t' || c === '\r';
}

/**
 * `CREDENTIAL_CONTEXT_RE.test(carry + head)` on the only part a match can cover: it ends at the
 * end and is at most a credential word (8), three non-word characters and the trailing whitespace
 * long; that tail is taken without joining the two strings.
 */
function credentialBefore(carry: string, head: string): boolean {
  const n = carry.length + head.length;
  let ws = 0;
  while (ws < n) {
    const i = n - 1 - ws;
    if (!isJsSpace(i >= carry.length ? head.charCodeAt(i - carry.length) : carry.charCodeAt(i))) break;
    ws++;
  }
  const need = ws + 11;
  const tail =
    head.length >= need
      ? head.slice(head.length - need)
      : carry.slice(Math.max(0, carry.length - (need - head.length))) + head;
  return CREDENTIAL_CONTEXT_RE.test(tail);
}

/**
 * Necessary for `/.\p{Lu}/u` (a character, then an upper-case letter of any script): a code unit,
 * then A-Z or a unit above U+007F. Tested first because most tokens are plain lower-case words,
 * which it rules out faster than the Unicode property class can.
 */
const MAYBE_UPPER_AFTER_RE = /.[A-Z\u0080-\uFFFF]/;

function sensitiveToken(tok: string): boolean {
  if (tok.length === 0) return false;
  if (/[0-9@_\-+/=:~%.$#!*&^|\\]/.test(tok)) return true;
  if (MAYBE_UPPER_AFTER_RE.test(tok) && /.\p{Lu}/u.test(tok)) return true;
  return KEY_PREFIX_RE.test(tok);
}

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
  let carry = '';
  let pending = '';
  let cut: { reason: string } | null = null;
  const found: OutputFound[] = [];
  const reported = new Set<string>();
  /** Characters of the answer already released (for de-duplicating reports). */
  let emittedTotal = 0;

  type Hit = {
    start: number;
    end: number;
    kind: string;
    detector: Finding['detector'];
    action: ScreeningAction;
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

  /** Where in `pending` the held tail starts. */
  const holdFrom = (final: boolean): number => {
    if (final || !active) return pending.length;
    let hold = pending.length;
    // 1. The trailing token, when it could be (part of) a secret or PII.
    let t = pending.length;
    while (t > 0 && !isSpace(pending[t - 1]!)) t--;
    const tok = pending.slice(t);
    if (tok.length > 0 && (sensitiveToken(tok) || credentialBefore(carry, pending.slice(0, t)))) hold = t;
    else if (tok.length > 0 && piiAction !== 'off' && /^[\p{L}\p{N}]+$/u.test(tok)) hold = t; // e-mail local part
    // 2. Digit groups that a card, phone or IBAN may continue ("4111 1111 1111 ", "+44 20 7946").
    if (tok.length === 0 || (GROUP_RE.test(tok) && /\d/.test(tok))) {
      let k = t;
      let groups = tok.length > 0 ? 1 : 0;
      for (;;) {
        let e = k;
        while (e > 0 && isSpace(pending[e - 1]!) && k - e < 2) e--;
        if (e === k) break;
        let s = e;
        while (s > 0 && !isSpace(pending[s - 1]!)) s--;
        const w = pending.slice(s, e);
        if (s === e || !GROUP_RE.test(w) || !/\d/.test(w) || pending.length - s > 48) break;
        groups++;
        k = s;
      }
      if (groups > 0) hold = Math.min(hold, k);
    }
    // 3. An open private key block.
    const b = pending.lastIndexOf('-----BEGIN');
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
      carry = (carry + emit).slice(-CARRY);
      return { emit };
    }
    const off = carry.length;
    const window = carry + pending;
    const hits = detect(window).filter((h) => h.end > off);
    const newly: OutputFound[] = [];
    const note = (h: Hit) => {
      const key = `${h.detector}:${h.kind}:${h.start - off + emittedTotal}`;
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
      pending = '';
      emittedTotal += upto;
      return { emit, cut, found: newly };
    }
    for (const h of hits) if (h.start < off + hold) note(h);
    const emit = redactRange(pending.slice(0, hold), hits, off, hold);
    pending = pending.slice(hold);
    emittedTotal += hold;
    carry = (carry + emit).slice(-CARRY);
    return newly.length > 0 ? { emit, found: newly } : { emit };
  };

  return {
    push(delta: string) {
      if (cut) return { emit: '' };
      pending += delta;
      return step(false);
    },
    flush() {
      return step(true).emit;
    },
    get cut() {
      return cut;
    },
    get found() {
      return found;
    },
  };
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
