/**
 * Request-level screening for the gateway's `screen-input` stage: every text a model will read
 * in a chat, completions, embeddings, responses or messages body — user turns, system and
 * developer prompts, tool results, retrieved documents, Responses `input` items — goes through the
 * injection classifier (with its role's threshold), the secret detector and the PII detector.
 *
 * The result is a value: per-detector verdicts, one decision (`block` > `redact` > `flag` >
 * `allow`; shadow verdicts are reported but never decide), the redacted body when something was
 * redacted, a header value for `x-sluice-screening`, and for `block` the catalogue refusal
 * (`SLUICE_CONTENT_BLOCKED`, naming the detector and never the matched text). Pure.
 */
import { type Refusal, refuse } from '../errors.js';
import { type Census, census } from './census.js';
import { type Finding, redact } from './findings.js';
import { shippedInjectionModel } from './injection-model.js';
import type { ScreeningMemo, TextFindings } from './memo.js';
import { detectPii } from './pii.js';
import type { ScreeningSettings } from './policy.js';
import { thresholdFor } from './policy.js';
import { type InjectionModel, scoreInjection } from './prompt-injection.js';
import { detectSecrets } from './secrets.js';

export type ScreeningEndpoint = 'chat' | 'completions' | 'embeddings' | 'responses' | 'messages';
export type ScreeningDecision = 'allow' | 'flag' | 'redact' | 'block';

/** One text a model will read, and where it sits in the body (for redaction). */
export interface ScreenedText {
  /** Property path in the body, e.g. `['messages', 2, 'content']`. */
  path: (string | number)[];
  /** `user`, `system`, `developer`, `assistant`, `tool`, `document`, `input`. */
  role: string;
  text: string;
}

export interface InjectionVerdict {
  detector: 'injection';
  action: ScreeningDecision;
  shadow: boolean;
  /** Highest score over all texts, and the role and index of that text. */
  score: number;
  role: string | null;
  /** Index into `texts` of the highest-scoring text. */
  text: number | null;
  /** Where the score came from (`text`, `window`, `base64`, ...). */
  source: string | null;
}

export interface SpanVerdict {
  detector: 'secrets' | 'pii';
  action: ScreeningDecision;
  shadow: boolean;
  /** Findings with the index of the text they were found in. */
  findings: (Finding & { text: number })[];
}

export type Verdict = InjectionVerdict | SpanVerdict;

export interface ScreenResult {
  decision: ScreeningDecision;
  verdicts: Verdict[];
  texts: ScreenedText[];
  /** A copy of the body with redactions applied, when the decision is `redact`. */
  redactedBody?: unknown;
  /** Value for the `x-sluice-screening` response header, or null when nothing was found. */
  header: string | null;
  /** For `block`: the refusal to answer with. */
  refusal?: Refusal;
}

const RANK: Record<ScreeningDecision, number> = { allow: 0, flag: 1, redact: 2, block: 3 };

const ENDPOINTS: Record<string, ScreeningEndpoint> = {
  chat: 'chat',
  '/v1/chat/completions': 'chat',
  completions: 'completions',
  '/v1/completions': 'completions',
  embeddings: 'embeddings',
  '/v1/embeddings': 'embeddings',
  responses: 'responses',
  '/v1/responses': 'responses',
  messages: 'messages',
  '/v1/messages': 'messages',
};

/** `'/v1/chat/completions'` or `'chat'` → `'chat'`; null for endpoints that carry no prompt text. */
export function screeningEndpoint(endpoint: string): ScreeningEndpoint | null {
  return ENDPOINTS[endpoint] ?? null;
}

const isObj = (x: unknown): x is Record<string, unknown> =>
  typeof x === 'object' && x !== null && !Array.isArray(x);

/** Text parts of OpenAI / Anthropic / Responses content (string or array of parts). */
function contentTexts(content: unknown, path: (string | number)[], role: string, out: ScreenedText[]): void {
  if (typeof content === 'string') {
    out.push({ path, role, text: content });
    return;
  }
  if (!Array.isArray(content)) return;
  content.forEach((part, i) => {
    if (typeof part === 'string') out.push({ path: [...path, i], role, text: part });
    if (!isObj(part)) return;
    const p = [...path, i];
    if (typeof part.text === 'string') out.push({ path: [...p, 'text'], role, text: part.text });
    // Anthropic tool_result: content is a string or text blocks; indirect injection arrives here.
    if (part.type === 'tool_result') contentTexts(part.content, [...p, 'content'], 'tool', out);
    // Anthropic document blocks with a plain-text source.
    if (
      part.type === 'document' &&
      isObj(part.source) &&
      typeof part.source.data === 'string' &&
      part.source.type === 'text'
    )
      out.push({ path: [...p, 'source', 'data'], role: 'document', text: part.source.data });
    // Responses function_call_output items nested in content arrays (rare), and refusal text.
    if (typeof part.output === 'string')
      out.push({ path: [...p, 'output'], role: 'tool', text: part.output });
  });
}

/** Every text a model will read in `body`, with its role and path. */
export function extractTexts(endpoint: ScreeningEndpoint, body: unknown): ScreenedText[] {
  const out: ScreenedText[] = [];
  if (!isObj(body)) return out;
  switch (endpoint) {
    case 'chat': {
      const msgs = Array.isArray(body.messages) ? body.messages : [];
      msgs.forEach((m, i) => {
        if (!isObj(m)) return;
        const role = typeof m.role === 'string' ? m.role : 'user';
        contentTexts(m.content, ['messages', i, 'content'], role === 'function' ? 'tool' : role, out);
        if (Array.isArray(m.tool_calls))
          m.tool_calls.forEach((c, j) => {
            if (isObj(c) && isObj(c.function) && typeof c.function.arguments === 'string')
              out.push({
                path: ['messages', i, 'tool_calls', j, 'function', 'arguments'],
                role: 'assistant',
                text: c.function.arguments,
              });
          });
      });
      break;
    }
    case 'completions':
    case 'embeddings': {
      const key = endpoint === 'completions' ? 'prompt' : 'input';
      const role = endpoint === 'completions' ? 'user' : 'input';
      const v = body[key];
      if (typeof v === 'string') out.push({ path: [key], role, text: v });
      else if (Array.isArray(v))
        v.forEach((s, i) => {
          if (typeof s === 'string') out.push({ path: [key, i], role, text: s });
        });
      break;
    }
    case 'responses': {
      if (typeof body.instructions === 'string')
        out.push({ path: ['instructions'], role: 'system', text: body.instructions });
      const input = body.input;
      if (typeof input === 'string') out.push({ path: ['input'], role: 'user', text: input });
      else if (Array.isArray(input))
        input.forEach((item, i) => {
          if (typeof item === 'string') out.push({ path: ['input', i], role: 'user', text: item });
          if (!isObj(item)) return;
          if (item.type === 'function_call_output' || item.type === 'custom_tool_call_output') {
            contentTexts(item.output, ['input', i, 'output'], 'tool', out);
            return;
          }
          if (item.type === 'function_call' && typeof item.arguments === 'string') {
            out.push({ path: ['input', i, 'arguments'], role: 'assistant', text: item.arguments });
            return;
          }
          const role = typeof item.role === 'string' ? item.role : 'user';
          contentTexts(item.content, ['input', i, 'content'], role, out);
        });
      break;
    }
    case 'messages': {
      if (typeof body.system === 'string') out.push({ path: ['system'], role: 'system', text: body.system });
      else contentTexts(body.system, ['system'], 'system', out);
      const msgs = Array.isArray(body.messages) ? body.messages : [];
      msgs.forEach((m, i) => {
        if (!isObj(m)) return;
        contentTexts(
          m.content,
          ['messages', i, 'content'],
          typeof m.role === 'string' ? m.role : 'user',
          out,
        );
      });
      break;
    }
  }
  return out;
}

/** `shadow` verdicts are computed and reported but never change the decision. */
function spanAction(action: ScreeningDecision | 'off', found: boolean): ScreeningDecision {
  if (!found || action === 'off') return 'allow';
  return action;
}

/**
 * A deep copy of a request body to redact: objects and arrays are copied, strings and other
 * primitives shared (they are immutable). For a parsed JSON body this is what `structuredClone`
 * gives, without copying every string; whatever is not a plain object or array, and anything
 * nested deeper than 64 levels, goes through `structuredClone`.
 */
function copyBody(v: unknown, depth: number): unknown {
  if (typeof v !== 'object' || v === null) return v;
  if (depth > 64) return structuredClone(v);
  if (Array.isArray(v)) {
    const out: unknown[] = new Array(v.length);
    for (let i = 0; i < v.length; i++) out[i] = copyBody(v[i], depth + 1);
    return out;
  }
  const proto = Object.getPrototypeOf(v);
  if (proto !== Object.prototype && proto !== null) return structuredClone(v);
  const out: Record<string, unknown> = {};
  for (const k of Object.keys(v)) {
    const x = copyBody((v as Record<string, unknown>)[k], depth + 1);
    // An own "__proto__" key (JSON.parse makes one) must stay a key, not set the prototype.
    if (k === '__proto__')
      Object.defineProperty(out, k, { value: x, enumerable: true, writable: true, configurable: true });
    else out[k] = x;
  }
  return out;
}

function setPath(root: unknown, path: (string | number)[], value: string): void {
  let o = root as Record<string | number, unknown>;
  for (let i = 0; i < path.length - 1; i++) o = o[path[i]!] as Record<string | number, unknown>;
  o[path[path.length - 1]!] = value;
}

export interface ScreenOptions {
  /** The classifier; defaults to the one shipped in the package. */
  model?: InjectionModel;
  /**
   * Findings of texts seen before (`memo.ts`): a text already in it is not scanned again, one
   * that is not is scanned and kept. The result is the same with or without it.
   */
  memo?: ScreeningMemo;
}

/**
 * Screen one request body. Never throws on odd bodies: anything that is not a recognised text
 * is skipped (schema validation is an earlier stage's job).
 */
export function screenRequest(
  endpoint: string,
  body: unknown,
  settings: ScreeningSettings,
  opts: ScreenOptions = {},
): ScreenResult {
  const ep = screeningEndpoint(endpoint);
  const texts = ep ? extractTexts(ep, body) : [];
  return screenTexts(texts, body, settings, opts);
}

/** Screen already-extracted texts (the CLI uses this for `{"text": ...}` lines). */
export function screenTexts(
  texts: ScreenedText[],
  body: unknown,
  settings: ScreeningSettings,
  opts: ScreenOptions = {},
): ScreenResult {
  const verdicts: Verdict[] = [];
  // One census per text, shared by normalisation, secrets and PII.
  const censuses: (Census | undefined)[] = new Array(texts.length);
  const censusOf = (i: number) => (censuses[i] ??= census(texts[i]!.text));
  // What the memo already knows of each text (undefined: not kept there).
  const memo = opts.memo;
  const known: (TextFindings | undefined)[] = memo ? texts.map((t) => memo.entry(t.text)) : [];

  if (settings.injection.action !== 'off') {
    const model = opts.model ?? shippedInjectionModel();
    let best: InjectionVerdict = {
      detector: 'injection',
      action: 'allow',
      shadow: settings.injection.shadow,
      score: 0,
      role: null,
      text: null,
      source: null,
    };
    let hit = false;
    for (let i = 0; i < texts.length; i++) {
      const t = texts[i]!;
      if (t.text.length === 0) continue;
      const k = known[i];
      let s = k?.injection?.model === model ? k.injection.score : undefined;
      if (!s) {
        s = scoreInjection(model, t.text, censusOf(i));
        if (k) k.injection = { model, score: s };
      }
      const over = s.score >= thresholdFor(settings, t.role);
      // Report the text that crossed its threshold; among those (or none), the highest score.
      if ((over && !hit) || (over === hit && s.score > best.score)) {
        best = { ...best, score: s.score, role: t.role, text: i, source: s.source };
        hit = over;
      }
    }
    best.action = hit ? settings.injection.action : 'allow';
    verdicts.push(best);
  }

  const spanDetectors: ['secrets' | 'pii', ScreeningSettings['secrets']['action'], boolean][] = [
    ['secrets', settings.secrets.action, settings.secrets.shadow],
    ['pii', settings.pii.action, settings.pii.shadow],
  ];
  const piiKinds = settings.pii.kinds.join(',');
  const redactions = new Map<number, Finding[]>();
  for (const [detector, action, shadow] of spanDetectors) {
    if (action === 'off') continue;
    const findings: SpanVerdict['findings'] = [];
    for (let i = 0; i < texts.length; i++) {
      const t = texts[i]!;
      const k = known[i];
      let fs: Finding[] | undefined;
      if (detector === 'secrets') {
        fs = k?.secrets;
        if (!fs) {
          fs = detectSecrets(t.text, { census: censusOf(i) });
          if (k) k.secrets = fs;
        }
      } else {
        fs = k?.pii?.kinds === piiKinds ? k.pii.findings : undefined;
        if (!fs) {
          fs = detectPii(t.text, settings.pii.kinds, { census: censusOf(i) });
          if (k) k.pii = { kinds: piiKinds, findings: fs };
        }
      }
      // A literal, not a spread: copying by spread was a tenth of a request whose texts the memo knew.
      for (const f of fs)
        findings.push({ detector: f.detector, kind: f.kind, start: f.start, end: f.end, text: i });
    }
    const v: SpanVerdict = { detector, action: spanAction(action, findings.length > 0), shadow, findings };
    verdicts.push(v);
    if (v.action === 'redact' && !shadow)
      for (const f of findings) {
        const list = redactions.get(f.text) ?? [];
        list.push(f);
        redactions.set(f.text, list);
      }
  }

  let decision: ScreeningDecision = 'allow';
  for (const v of verdicts) if (!v.shadow && RANK[v.action] > RANK[decision]) decision = v.action;

  const result: ScreenResult = { decision, verdicts, texts, header: headerValue(decision, verdicts) };
  if (decision === 'block') {
    const blocking = verdicts.filter((v) => !v.shadow && v.action === 'block').map((v) => v.detector);
    result.refusal = refuse('SLUICE_CONTENT_BLOCKED', blocking.join(', '));
  } else if (decision === 'redact' && redactions.size > 0) {
    const copy = copyBody(body, 0);
    for (const [i, fs] of redactions) setPath(copy, texts[i]!.path, redact(texts[i]!.text, fs));
    result.redactedBody = copy;
  }
  return result;
}

/**
 * `x-sluice-screening: flag; injection=0.93; secrets=openai-key; pii=email,phone` — the decision,
 * then each detector that found something (kinds only, never matched text); `shadow` marks
 * verdicts that did not act. Null when nothing was found.
 */
export function headerValue(decision: ScreeningDecision, verdicts: readonly Verdict[]): string | null {
  const parts: string[] = [];
  for (const v of verdicts) {
    const tag = v.shadow ? ' (shadow)' : '';
    if (v.detector === 'injection') {
      if (v.action !== 'allow') parts.push(`injection=${v.score.toFixed(2)}${tag}`);
    } else if (v.findings.length > 0 && v.action !== 'allow') {
      parts.push(`${v.detector}=${[...new Set(v.findings.map((f) => f.kind))].join(',')}${tag}`);
    }
  }
  if (parts.length === 0) return null;
  return [decision, ...parts].join('; ');
}
