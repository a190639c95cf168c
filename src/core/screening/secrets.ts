/**
 * Secret detector: gitleaks-style rules (a provider prefix or a structural shape), then a generic
 * rule for a high-entropy value assigned to a credential-sounding name, with an allowlist of
 * placeholders so `api_key = "YOUR_API_KEY"` and `AKIA...EXAMPLE` do not fire.
 *
 * Runs on the original text (spans are used for redaction). Every pattern is linear-time: no
 * nested quantifiers, bounded repetitions.
 */
import { type Census, census, mayContainPairs, pairBits } from './census.js';
import { byStart, entropy, type Finding, sortInPlace } from './findings.js';

export interface Rule {
  kind: string;
  re: RegExp;
  /** Which capture group is the secret (0 = whole match). */
  group?: number;
  /** Minimum Shannon entropy of the secret (bits/char). */
  minEntropy?: number;
  /** Cheap substring check before running the regex (lower-cased text). */
  hint?: string[];
  /** For rules without a hint: a necessary condition on the text's {@link census}. */
  gate?: (c: Census) => boolean;
}

const B = '(?<![A-Za-z0-9_-])';
const E = '(?![A-Za-z0-9_-])';

export const SECRET_RULES: Rule[] = [
  {
    // A header alone is enough in a stream (the body may be in the next chunk); a fixture such as
    // "BEGIN PRIVATE KEY-----anything-----END" needs 32+ key characters to count.
    kind: 'private-key',
    re: /-----BEGIN[A-Z0-9 ]{0,40}PRIVATE KEY(?: BLOCK)?-----(?:\s*[A-Za-z0-9+/=\s]{32,20000}?(?:-----END[A-Z0-9 ]{0,40}PRIVATE KEY(?: BLOCK)?-----|$)|(?=\s*$))/g,
    hint: ['private key'],
  },
  {
    kind: 'anthropic-key',
    re: new RegExp(`${B}sk-ant-(?:api|admin|sid)\\d{2}-[A-Za-z0-9_-]{20,200}`, 'g'),
    hint: ['sk-ant-'],
  },
  {
    kind: 'openai-key',
    re: new RegExp(
      `${B}sk-(?:(?:proj|svcacct|admin|None)-)?(?:[A-Za-z0-9_-]{20,200}T3BlbkFJ[A-Za-z0-9_-]{20,200}|[A-Za-z0-9]{32,64}|[A-Za-z0-9_-]{40,200})${E}`,
      'g',
    ),
    hint: ['sk-'],
    minEntropy: 3.5,
  },
  {
    kind: 'aws-access-key',
    re: /(?<![A-Z0-9])(?:A3T[A-Z0-9]|AKIA|ASIA|ABIA|ACCA)[A-Z2-7]{16}(?![A-Z0-9])/g,
    minEntropy: 3,
    gate: (c) => c.upperDigitRun >= 20,
  },
  {
    kind: 'aws-secret-key',
    re: /aws.{0,20}?(?:secret|sk).{0,20}?["'=:\s]\s*["']?([A-Za-z0-9/+]{40})(?![A-Za-z0-9/+])/gi,
    group: 1,
    minEntropy: 3.5,
    hint: ['aws'],
  },
  {
    kind: 'github-token',
    re: /(?<![A-Za-z0-9_])(?:(?:ghp|gho|ghu|ghs|ghr)_[A-Za-z0-9]{36,255}|github_pat_[A-Za-z0-9_]{60,255})/g,
    hint: ['gh', 'github_pat_'],
  },
  {
    kind: 'gitlab-token',
    re: /(?<![A-Za-z0-9_])(?:gl(?:pat|dt|ptt|rt|cbt|soat|ft|imt|agent|oas)-[A-Za-z0-9_-]{20,64}(?![A-Za-z0-9_-])|GR1348941(?=[A-Za-z0-9_-]*[A-Za-z])[A-Za-z0-9_-]{20,})/g,
    hint: ['gl', 'gr1348941'],
  },
  {
    kind: 'slack-token',
    re: /(?<![A-Za-z0-9])xox[abposre]-(?:\d-)?\d{6,}-[A-Za-z0-9-]{10,250}/g,
    hint: ['xox'],
  },
  { kind: 'slack-token', re: /xapp-\d-[A-Z0-9]+-\d+-[a-z0-9]+/g, hint: ['xapp-'] },
  {
    kind: 'slack-webhook',
    re: /https?:\/\/hooks\.slack\.com\/(?:services|workflows|triggers)\/[A-Za-z0-9+/_-]{20,120}/g,
    hint: ['hooks.slack.com'],
  },
  {
    kind: 'stripe-key',
    re: /(?<![A-Za-z0-9])(?:sk|rk|pk)_(?:live|test|prod)_[A-Za-z0-9]{10,99}/g,
    hint: ['_live_', '_test_', '_prod_'],
  },
  {
    kind: 'google-api-key',
    re: /(?<![A-Za-z0-9_-])AIza[0-9A-Za-z_-]{35}(?![A-Za-z0-9_-])/g,
    hint: ['aiza'],
    minEntropy: 3,
  },
  {
    kind: 'huggingface-token',
    re: /(?<![A-Za-z0-9])(?:hf_|api_org_)[A-Za-z]{34}(?![A-Za-z0-9])/g,
    hint: ['hf_', 'api_org_'],
  },
  { kind: 'npm-token', re: /(?<![A-Za-z0-9])npm_[A-Za-z0-9]{36}(?![A-Za-z0-9])/g, hint: ['npm_'] },
  { kind: 'pypi-token', re: /pypi-AgE[A-Za-z0-9_-]{50,1000}/g, hint: ['pypi-'] },
  { kind: 'sendgrid-key', re: /SG\.[A-Za-z0-9_-]{16,32}\.[A-Za-z0-9_-]{16,64}/g, hint: ['sg.'] },
  {
    kind: 'twilio-key',
    re: /(?<![A-Za-z0-9])(?:SK|AC)[0-9a-fA-F]{32}(?![A-Za-z0-9])/g,
    minEntropy: 3,
    gate: (c) => c.alnumRun >= 34 && c.hexRun >= 32,
  },
  { kind: 'shopify-token', re: /shp(?:at|ca|pa|ss)_[a-fA-F0-9]{32}/g, hint: ['shp'] },
  { kind: 'digitalocean-token', re: /do[opr]_v1_[a-f0-9]{64}/g, hint: ['_v1_'] },
  {
    kind: 'databricks-token',
    re: /(?<![A-Za-z0-9])dapi[a-f0-9]{32}(?:-\d)?(?![A-Za-z0-9])/g,
    hint: ['dapi'],
  },
  { kind: 'azure-storage-key', re: /AccountKey=[A-Za-z0-9+/=]{40,100}/g, hint: ['accountkey='] },
  {
    kind: 'azure-client-secret',
    re: /(?<![A-Za-z0-9_~.-])[A-Za-z0-9_~.]{3}\dQ~[A-Za-z0-9_~.-]{31,34}/g,
    hint: ['q~'],
  },
  {
    kind: 'discord-token',
    re: /(?<![A-Za-z0-9_-])[MNOA-Z][A-Za-z\d_-]{22,27}\.[A-Za-z\d_-]{6}\.[A-Za-z\d_!-]{27,40}/g,
    gate: (c) => c.wordDashBeforeDot >= 23,
  },
  { kind: 'mailchimp-key', re: /(?<![A-Za-z0-9])[0-9a-f]{32}-us\d{1,2}(?![A-Za-z0-9])/g, hint: ['-us'] },
  { kind: 'telegram-token', re: /(?<!\d)\d{8,10}:AA[A-Za-z0-9_-]{32,34}(?![A-Za-z0-9_-])/g, hint: [':aa'] },
  {
    kind: '1password-key',
    re: /\bA3-[A-Z0-9]{6}-(?:[A-Z0-9]{11}|[A-Z0-9]{6}-[A-Z0-9]{5})-[A-Z0-9]{5}-[A-Z0-9]{5}-[A-Z0-9]{5}\b/g,
    hint: ['a3-'],
  },
  { kind: '1password-token', re: /\bops_eyJ[A-Za-z0-9+/]{100,}={0,3}/g, hint: ['ops_eyj'] },
  {
    kind: 'age-key',
    re: /AGE-SECRET-KEY-1[QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L]{58}/g,
    hint: ['age-secret-key'],
  },
  { kind: 'facebook-token', re: /(?<![A-Za-z0-9])EAA[A-Za-z0-9]{90,}/g, hint: ['eaa'] },
  { kind: 'facebook-token', re: /(?<!\d)\d{15,16}\|[A-Za-z0-9_-]{27}(?![A-Za-z0-9_-])/g, hint: ['|'] },
  {
    kind: 'flyio-token',
    re: /(?:FlyV1 fm\d_[A-Za-z0-9+/=,_-]{100,}|\bfo1_[A-Za-z0-9_-]{43})/g,
    hint: ['fm1', 'fm2', 'fo1_'],
  },
  {
    kind: 'grafana-token',
    re: /\b(?:glc_[A-Za-z0-9+/]{32,400}={0,2}|glsa_[A-Za-z0-9]{32}_[A-Fa-f0-9]{8})/g,
    hint: ['glc_', 'glsa_'],
    minEntropy: 3,
  },
  { kind: 'vault-token', re: /\bhv[sb]\.[A-Za-z0-9_-]{90,}/g, hint: ['hvs.', 'hvb.'] },
  { kind: 'heroku-key', re: /\bHRKU-AA[A-Za-z0-9_-]{58}/g, hint: ['hrku-'] },
  { kind: 'notion-token', re: /\bntn_[A-Za-z0-9]{40,50}\b/g, hint: ['ntn_'] },
  { kind: 'sentry-token', re: /\b(?:sntrys_eyJ[A-Za-z0-9+/=_]{50,}|sntryu_[a-f0-9]{64})/g, hint: ['sntry'] },
  { kind: 'sonar-token', re: /\bsq[pau]_[A-Za-z0-9]{40}\b/g, hint: ['sqp_', 'sqa_', 'squ_'] },
  { kind: 'sourcegraph-token', re: /\bsgp_(?:local_)?[A-Za-z0-9_]{40,}\b/g, hint: ['sgp_'], minEntropy: 3.3 },
  {
    kind: 'square-token',
    re: /\b(?:sq0csp-[A-Za-z0-9_-]{40,50}|sq0atp-[A-Za-z0-9_-]{22}|EAAA[A-Za-z0-9_+-]{60})/g,
    hint: ['sq0', 'eaaa'],
  },
  { kind: 'intra42-secret', re: /\bs-s4t2(?:ud|af)-[a-f0-9]{64}\b/g, hint: ['s-s4t2'] },
  {
    kind: 'sidekiq-secret',
    re: /BUNDLE_(?:ENTERPRISE|GEMS)__CONTRIBSYS__COM[\s:="']{1,6}([a-f0-9]{8}:[a-f0-9]{8})/gi,
    group: 1,
    hint: ['contribsys'],
  },
  {
    kind: 'jwt',
    re: /(?<![A-Za-z0-9_-])eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}(?:\.[A-Za-z0-9_-]*)?/g,
    hint: ['eyj'],
  },
  {
    kind: 'connection-string',
    re: /\b(?:postgres(?:ql)?|mysql|mariadb|mongodb(?:\+srv)?|rediss?|amqps?|mssql|sqlserver|ftp|sftp|smtps?|ldaps?|https?):\/\/[^\s:@/'"`]{1,100}:([^\s@/'"`]{3,200})@[^\s'"`]{2,}/gi,
    group: 1,
    hint: ['://'],
  },
  {
    // curl -u user:password / --user "user:password"
    kind: 'basic-auth',
    re: /(?:\s-u|--user)\s+["']?(\{?[^\s"':]{0,100}\}?["']?:["']?\{?[^\s"']{4,200})/g,
    group: 1,
    minEntropy: 2.5,
    hint: ['-u ', '--user'],
  },
  {
    kind: 'authorization-header',
    re: /\b(?:authorization|x-api-key|api-key|x-auth-token|token)["']?\s*:\s*(?:(?:basic|bearer|token|api-token|apikey)\s+)?([A-Za-z0-9._~+/=@!#$%^&*-]{12,500})/gi,
    group: 1,
    minEntropy: 2.8,
    hint: ['authorization', 'api-key', 'token'],
  },
  {
    kind: 'bearer-token',
    re: /\bbearer\s+([A-Za-z0-9._~+/=-]{20,500})/gi,
    group: 1,
    minEntropy: 3.2,
    hint: ['bearer'],
  },
];

/**
 * Names that make a nearby value a credential (gitleaks' generic-api-key keywords, roughly). The
 * captured suffix tells an identifier apart: `credentialsId`, `kms_key_id`, `access_token_url`.
 */
const GENERIC_RE =
  /(?:api[_.-]?key|apikey|secret|token|passw(?:or)?d|passwd|pwd|credential|creds|auth(?![a-z])|login|access[_.-]?key|private[_.-]?key|signing[_.-]?key|session[_.-]?key|encryption[_.-]?key|(?<![A-Za-z])key(?![A-Za-z]))([A-Za-z0-9_.-]{0,20})["']?[ \t]{0,5}(?::{1,3}=|=>|\?=|==|[:=]|[ \t](?:is|=)[ \t]|,[ \t]*(?=["']))[ \t]{0,5}(?:b?["'`]|\(["'])?([A-Za-z0-9_\-+/=.~!@#$%^&*:;|?]{8,300})/gi;
const ID_SUFFIX_RE =
  /(?:id|ids|name|names|url|uri|file|path|type|variable|env|length|len|size|count|field|header|prefix|format)$/i;

/** Placeholder and example values: never a live secret (specific rules). */
const PLACEHOLDER_RE = /x{5,}|\*{3,}|your[_-]|example|placeholder|redacted|changeme|<[^>]*>|\$\{|\{\{/i;
/** Generic rule: also words, identifiers, booleans, numbers and repeated characters. */
const GENERIC_PLACEHOLDER_RE =
  /x{5,}|\*{3,}|your[_-]?|example|sample|dummy|placeholder|changeme|redacted|<[^>]*>|\$\{|\{\{|%\(|insert|replace|^(?:true|false|null|none|undefined)$|^\d+$|^(.)\1+$|^https?:/i;
/** A word or identifier in one case (`NEXUS_API`, `my-service`) is a name, not a secret. */
const ONE_CASE_WORDS_RE = /^[a-z]+(?:[_.-][a-z]+)*$|^[A-Z]+(?:[_.-][A-Z]+)*$/;
/** `curl -u user:password` where the password is a placeholder or a variable. */
const BASIC_PLACEHOLDER_RE = /:["']?(?:pass(?:word)?|token|secret|\$|\[|%|\{\{)/i;

const GENERIC_MIN_ENTROPY = 3.0;

/**
 * Every rule's hints in one pre-scan: a zero-width regex stops wherever some hint starts, and there
 * the hints with that first character are compared. The result is exactly the set of hints that
 * `lower.includes(h)` would find, for one pass over the text instead of one per hint.
 */
export const SECRET_HINTS = [...new Set(SECRET_RULES.flatMap((r) => r.hint ?? []))];
const HINT_SCAN_RE = new RegExp(
  `(?=${SECRET_HINTS.map((h) => h.replace(/[.*+?^${}()|[\]\\/-]/g, '\\$&')).join('|')})`,
  'g',
);
const HINTS_BY_FIRST = new Map<string, string[]>();
for (const h of SECRET_HINTS) HINTS_BY_FIRST.set(h[0]!, [...(HINTS_BY_FIRST.get(h[0]!) ?? []), h]);

export function hintsIn(lower: string): Set<string> {
  const found = new Set<string>();
  HINT_SCAN_RE.lastIndex = 0;
  for (let m = HINT_SCAN_RE.exec(lower); m !== null; m = HINT_SCAN_RE.exec(lower)) {
    const p = m.index;
    for (const h of HINTS_BY_FIRST.get(lower[p]!) ?? []) if (lower.startsWith(h, p)) found.add(h);
    HINT_SCAN_RE.lastIndex = p + 1;
  }
  return found;
}

/**
 * Every name {@link GENERIC_RE} can start with contains one of these (lower-cased): a text with
 * none of them has no generic match.
 */
const GENERIC_KEYS = ['key', 'secret', 'token', 'passw', 'pwd', 'cred', 'auth', 'login'];
/** The census pair bits of each hint and generic keyword, computed once. */
const HINT_PAIRS = SECRET_HINTS.map(pairBits);
const GENERIC_KEY_PAIRS = GENERIC_KEYS.map(pairBits);

/**
 * `s` as a case-insensitive regex (without the `u` flag). On a text whose census has a pair filter
 * (no U+0130 or U+212A, the two characters whose lower case is or holds ASCII), `re.test(text)` is
 * `text.toLowerCase().includes(s)` for lower-case ASCII `s`: without `u`, `i` matches an ASCII
 * letter only to itself and its other case, as lower-casing does. That spares the lower-cased
 * copy of the text (4 KB for a 4 kB prompt, every call) at the same cost.
 */
const literalRe = (s: string, flags: string) => new RegExp(s.replace(/[.*+?^${}()|[\]\\/-]/g, '\\$&'), flags);
/** Null for a hint without letters (`|`, `://`): `text.includes` finds it, and faster. */
const HINT_RES = SECRET_HINTS.map((h) => (/[a-z]/.test(h) ? literalRe(h, 'i') : null));
const GENERIC_KEY_RES = GENERIC_KEYS.map((k) => literalRe(k, 'i'));

/** How each of {@link GENERIC_RE}'s names begins (lower case): a match can only start at one. */
const GENERIC_STARTS = [
  'api',
  'secret',
  'token',
  'passw',
  'pwd',
  'cred',
  'auth',
  'login',
  'access',
  'private',
  'signing',
  'session',
  'encryption',
  'key',
];
const GENERIC_START_PAIRS = GENERIC_STARTS.map(pairBits);
/** Global, so that `test` leaves `lastIndex` after each occurrence (no match array is built). */
const GENERIC_START_RES = GENERIC_STARTS.map((w) => literalRe(w, 'gi'));
const GENERIC_STICKY = new RegExp(GENERIC_RE.source, 'iy');
const byNumber = (a: number, b: number): number => a - b;

/**
 * `text.matchAll(GENERIC_RE)`, trying the regex only where one of its names begins (found behind
 * the census pair filter, by `literalRe` regexes on the text, or without a pair filter by `indexOf`
 * in the lower-cased text) instead of at every position: the leftmost match from each point on,
 * as `matchAll` finds it. Falls back to `matchAll` without a census, or when lower-casing changed
 * the text's length (U+0130), since positions would not line up.
 */
function genericMatches(
  text: string,
  lower: string,
  c: Census | null,
): RegExpExecArray[] | IterableIterator<RegExpMatchArray> {
  if (!c || (!c.pairs && lower.length !== text.length)) {
    GENERIC_RE.lastIndex = 0;
    return text.matchAll(GENERIC_RE);
  }
  const starts: number[] = [];
  for (let i = 0; i < GENERIC_STARTS.length; i++) {
    if (!mayContainPairs(c, GENERIC_START_PAIRS[i]!)) continue;
    const w = GENERIC_STARTS[i]!;
    if (c.pairs) {
      // Every occurrence, overlapping ones included, as the `indexOf` loop below finds them.
      const re = GENERIC_START_RES[i]!;
      re.lastIndex = 0;
      while (re.test(text)) {
        const p = re.lastIndex - w.length;
        starts.push(p);
        re.lastIndex = p + 1;
      }
      continue;
    }
    for (let p = lower.indexOf(w); p >= 0; p = lower.indexOf(w, p + 1)) starts.push(p);
  }
  sortInPlace(starts, byNumber);
  const out: RegExpExecArray[] = [];
  let from = 0;
  for (const p of starts) {
    if (p < from) continue;
    GENERIC_STICKY.lastIndex = p;
    const m = GENERIC_STICKY.exec(text);
    if (m) {
      out.push(m);
      from = p + m[0].length;
    }
  }
  return out;
}

/** Each rule's hints as indices into SECRET_HINTS (null: the rule has none). */
const HINT_INDEX = new Map(SECRET_HINTS.map((h, i) => [h, i] as const));
const RULE_HINTS = SECRET_RULES.map((r) =>
  r.hint ? Int32Array.from(r.hint, (h) => HINT_INDEX.get(h)!) : null,
);
/**
 * Which hints the current text has (scratch: filled at the start of each `detectSecrets` call,
 * which runs to the end without yielding, so one array serves every call).
 */
const hintOn = new Uint8Array(SECRET_HINTS.length);

/**
 * Fills {@link hintOn} for `lower`: with a census pair filter, `includes` for the hints it lets
 * by; without one, `hintsIn`. Either way exactly the hints `lower.includes(h)` finds.
 */
function markHints(c: Census | null, text: string, lower: string): void {
  if (c?.pairs) {
    for (let i = 0; i < SECRET_HINTS.length; i++)
      hintOn[i] =
        mayContainPairs(c, HINT_PAIRS[i]!) && (HINT_RES[i]?.test(text) ?? text.includes(SECRET_HINTS[i]!))
          ? 1
          : 0;
    return;
  }
  const found = hintsIn(lower);
  for (let i = 0; i < SECRET_HINTS.length; i++) hintOn[i] = found.has(SECRET_HINTS[i]!) ? 1 : 0;
}

export interface DetectOptions {
  /**
   * Skip the regexes the text's census shows cannot match (default). `false` runs every rule
   * whose hint occurs, as before the census; the results are the same either way
   * (`census-gates.test.ts`).
   */
  gates?: boolean;
  /** The text's census, when the caller has it (computed here otherwise). */
  census?: Census;
}

/** Whether the lower-cased text has one of {@link GENERIC_KEYS} (`lower` is '' when `c.pairs`). */
function hasGenericKey(c: Census, text: string, lower: string): boolean {
  for (let i = 0; i < GENERIC_KEYS.length; i++) {
    if (!mayContainPairs(c, GENERIC_KEY_PAIRS[i]!)) continue;
    if (c.pairs ? GENERIC_KEY_RES[i]!.test(text) : lower.includes(GENERIC_KEYS[i]!)) return true;
  }
  return false;
}

/**
 * All secrets in `text`, by kind and span, in text order.
 *
 * The rule loop and the generic pass are functions of their own, and this one has no loop: a
 * function with a loop can be compiled on stack (OSR) in the middle of a call, with the feedback
 * of the texts seen so far, and V8 (Node 20) enters that code again on later calls from the loop's
 * back edge. When the rule loop and the early return for a text without a generic name were one
 * function, code compiled while only texts with such a name came by (a 4 kB prompt that says
 * "token") deoptimised on the early return of every later short text without one (a system
 * prompt), once per call, and kept the function from being optimised again: about 40 µs per
 * request in one process in four (`bench/screening.mjs`, 7,000 deopts in 7,000 calls under
 * `--trace-deopt`). Here whatever follows a loop is a plain return.
 */
export function detectSecrets(text: string, opts: DetectOptions = {}): Finding[] {
  const gates = opts.gates !== false && text.length < 65536;
  const c = gates ? (opts.census ?? census(text)) : null;
  // With a census pair filter the hints and generic names are looked for by case-insensitive
  // regexes (`literalRe`) and the lower-cased copy is not needed: it is '' then.
  const lower = text.length < 65536 && !c?.pairs ? text.toLowerCase() : '';
  // Texts of 64 Ki characters or more run every rule (no lower-cased copy, no hint test).
  const hinted = text.length < 65536;
  if (hinted) markHints(c, text, lower);
  const out = ruleFindings(text, c, hinted);
  if (!c || hasGenericKey(c, text, lower)) genericFindings(text, lower, c, out);
  return sortInPlace(out, byStart);
}

/** The findings of {@link SECRET_RULES} (those whose hint {@link markHints} found, when `hinted`). */
function ruleFindings(text: string, c: Census | null, hinted: boolean): Finding[] {
  const out: Finding[] = [];
  for (let ri = 0; ri < SECRET_RULES.length; ri++) {
    const r = SECRET_RULES[ri]!;
    const hs = RULE_HINTS[ri];
    if (hs && hinted) {
      let on = false;
      for (let k = 0; k < hs.length && !on; k++) on = hintOn[hs[k]!] === 1;
      if (!on) continue;
    }
    if (r.gate && c && !r.gate(c)) continue;
    r.re.lastIndex = 0;
    for (const m of text.matchAll(r.re)) {
      const g = r.group ?? 0;
      const value = m[g];
      if (value === undefined) continue;
      if (r.minEntropy !== undefined && entropy(value) < r.minEntropy) continue;
      if (r.kind !== 'private-key' && PLACEHOLDER_RE.test(value)) continue;
      if (r.kind === 'basic-auth' && (BASIC_PLACEHOLDER_RE.test(value) || value.includes('$'))) continue;
      const start = m.index! + (g === 0 ? 0 : m[0].indexOf(value));
      out.push({ detector: 'secrets', kind: r.kind, start, end: start + value.length });
    }
  }
  return out;
}

/** Adds the generic rule's findings that overlap none already in `out`. */
function genericFindings(text: string, lower: string, c: Census | null, out: Finding[]): void {
  for (const m of genericMatches(text, lower, c)) {
    if (ID_SUFFIX_RE.test(m[1]!)) continue;
    let value = m[2]!;
    // Trailing punctuation belongs to the sentence, not the secret.
    value = value.replace(/[.,;:!?|]+$/, '').replace(/["'`)]+$/, '');
    if (value.length < 10) continue;
    if (GENERIC_PLACEHOLDER_RE.test(value) || ONE_CASE_WORDS_RE.test(value)) continue;
    const hasDigit = /\d/.test(value);
    const hasAlpha = /[A-Za-z]/.test(value);
    if (!hasDigit || !hasAlpha) {
      if (entropy(value) < 3.5 || value.length < 16) continue;
    } else if (entropy(value) < GENERIC_MIN_ENTROPY) continue;
    const start = m.index! + m[0].lastIndexOf(m[2]!);
    const f: Finding = { detector: 'secrets', kind: 'generic-secret', start, end: start + value.length };
    if (!out.some((o) => o.start < f.end && f.start < o.end)) out.push(f);
  }
}
