/**
 * Stage `screenOutput`: output screening of whole (non-streamed) answers with the principal's
 * `screening.output` settings: secrets and PII are redacted (`[REDACTED:<kind>]`) or, for
 * `block`, the answer is cut at the match and ends as a content-filter stop in its own format
 * (OpenAI chat/completions `finish_reason: "content_filter"`, Responses `status: "incomplete"`
 * with `incomplete_details.reason: "content_filter"`, Anthropic `stop_reason: "refusal"`); the
 * deny list and a task's canary (planted in its server-side prompt by `screenInput`) cut too.
 * Streams get the same screener (`createOutputScreener`, one per text channel) through the
 * provider's event transform (`transformedBytes`): each text delta is kept byte for byte when the
 * screener emits it unchanged, re-rendered when it redacts or holds text back, and a block cuts
 * the stream with a well-formed ending in its own format. Only `events` is read (never `body` too);
 * deltas with nothing suspicious go out as they arrive, so an unaffected stream stays incremental.
 * What was found (kinds only) and a cut's reason go on `ctx.screening` for the audit event.
 */
import type { SluiceConfig } from '../../../config/schema.js';
import type { Refusal } from '../../../core/errors.js';
import type { StreamEvent, StreamFormat } from '../../../core/ports.js';
import {
  createOutputScreener,
  type OutputScreener,
  type OutputScreenerOptions,
  screenOutputText,
} from '../../../core/screening/output.js';
import {
  compileScreeningPolicy,
  type ScreeningPolicy,
  type ScreeningSettings,
} from '../../../core/screening/policy.js';
import { outputSignals } from '../../../core/screening/signals.js';
import { mockChatAnswerText } from '../../../providers/mock.js';
import { streamFormatOf } from '../../../providers/stream-events.js';
import type { TextEvent } from '../../../providers/stream-render.js';
import {
  type EventTransform,
  type HeldText,
  type TransformDecision,
  transformedBytes,
} from '../../../providers/stream-transform.js';
import type { RequestContext } from '../context.js';
import { taskCanaries } from './screen-input.js';

const policies = new WeakMap<SluiceConfig, ScreeningPolicy>();
function policyFor(cfg: SluiceConfig): ScreeningPolicy {
  const p = policies.get(cfg) ?? compileScreeningPolicy(cfg);
  policies.set(cfg, p);
  return p;
}

type Obj = Record<string, unknown>;
type Opts = OutputScreenerOptions;
const isObj = (x: unknown): x is Obj => typeof x === 'object' && x !== null && !Array.isArray(x);

/** Screens `o[key]` in place; returns the cut reason, if any. */
function screenField(o: Obj, key: string, s: ScreeningSettings, found: string[], opts: Opts): string | null {
  const v = o[key];
  if (typeof v !== 'string' || v.length === 0) return null;
  const r = screenOutputText(v, s, opts);
  for (const f of r.found) found.push(`${f.detector}:${f.kind}`);
  o[key] = r.text;
  return r.cut ? r.cut.reason : null;
}

/** Rewrites a parsed answer in place; returns the cut reason, if it was cut. */
function screenAnswer(
  endpoint: string,
  body: Obj,
  s: ScreeningSettings,
  found: string[],
  opts: Opts,
): string | null {
  let reason: string | null = null;
  if (endpoint === 'chat' || endpoint === 'completions') {
    for (const c of Array.isArray(body.choices) ? body.choices : []) {
      if (!isObj(c)) continue;
      const cut =
        endpoint === 'chat' && isObj(c.message)
          ? screenField(c.message, 'content', s, found, opts)
          : screenField(c, 'text', s, found, opts);
      if (cut) {
        c.finish_reason = 'content_filter';
        reason ??= cut;
      }
    }
  } else if (endpoint === 'responses') {
    for (const item of Array.isArray(body.output) ? body.output : []) {
      if (!isObj(item) || !Array.isArray(item.content)) continue;
      for (const part of item.content)
        if (isObj(part)) {
          const cut = screenField(part, 'text', s, found, opts);
          if (!cut) continue;
          reason ??= cut;
          body.status = 'incomplete';
          body.incomplete_details = { reason: 'content_filter' };
        }
    }
  } else if (endpoint === 'messages') {
    for (const part of Array.isArray(body.content) ? body.content : [])
      if (isObj(part) && part.type === 'text') {
        const cut = screenField(part, 'text', s, found, opts);
        if (!cut) continue;
        reason ??= cut;
        body.stop_reason = 'refusal';
      }
  }
  return reason;
}

/**
 * The record of what output screening did, on the context for the audit event (kinds, never
 * text); what is new since the last call also goes to `deps.onScreening` (metrics, abuse).
 */
function noteOutput(
  ctx: RequestContext,
  s: ScreeningSettings,
  found: readonly string[],
  cut: string | null,
): void {
  if (found.length === 0 && !cut) return;
  const prev = ctx.screening ?? {};
  const output = { ...(prev.output ?? {}) } as { found?: string[]; cut?: string };
  const before = new Set(output.found ?? []);
  const fresh = found.filter((f) => !before.has(f));
  const freshCut = cut && !output.cut ? cut : null;
  output.found = [...new Set([...before, ...found])];
  if (cut) output.cut = cut;
  ctx.screening = { ...prev, output };
  const p = ctx.principal;
  if (ctx.deps.onScreening && p && (fresh.length > 0 || freshCut))
    ctx.deps.onScreening({
      requestId: ctx.id,
      tenantId: p.tenantId,
      keyId: p.keyId,
      ip: ctx.ip,
      endpoint: ctx.endpoint ?? '',
      signals: outputSignals(fresh, freshCut, s),
    });
}

/** A delta the screener passed unchanged: its bytes go out as they came (one shared value). */
const KEEP: TransformDecision = { action: 'keep' };

/**
 * The event transform of a screened stream: one output screener per text channel (choice and
 * content part). A delta the screener passes unchanged is kept (its bytes go out untouched);
 * otherwise it is replaced by what the screener emits (redactions, or less while it holds a
 * possible match back). A block emits the text before the match, then cuts at the next event.
 */
export function outputTransform(
  s: ScreeningSettings,
  onFound?: (found: string[]) => void,
  opts: Opts = {},
): EventTransform & { found(): string[] } {
  type Channel = { screener: OutputScreener; template: TextEvent };
  const channels = new Map<string, Channel>();
  /** The channel of the last delta: most streams have one, so most deltas need no key. */
  let last: Channel | undefined;
  let pendingCut: string | null = null;
  let reported = 0;
  const report = () => {
    let n = 0;
    for (const ch of channels.values()) n += ch.screener.found.length;
    if (n === reported) return;
    reported = n;
    onFound?.(t.found());
  };
  const t = {
    found(): string[] {
      const all: string[] = [];
      for (const ch of channels.values())
        for (const f of ch.screener.found) all.push(`${f.detector}:${f.kind}`);
      return [...new Set(all)];
    },
    text(ev: TextEvent): TransformDecision {
      if (pendingCut) return { action: 'cut', reason: pendingCut };
      let ch = last;
      if (!ch || ch.template.choice !== ev.choice || ch.template.contentIndex !== ev.contentIndex) {
        const key = `${ev.choice}:${ev.contentIndex}`;
        ch = channels.get(key);
        if (!ch) {
          ch = { screener: createOutputScreener(s, opts), template: ev };
          channels.set(key, ch);
        }
        last = ch;
      }
      ch.template = ev;
      const r = ch.screener.push(ev.text);
      report();
      if (r.cut) {
        if (r.emit.length === 0) return { action: 'cut', reason: r.cut.reason };
        pendingCut = r.cut.reason; // the text before the match goes out; the cut follows it
        return { action: 'replace', text: r.emit };
      }
      return r.emit === ev.text ? KEEP : { action: 'replace', text: r.emit };
    },
    flush(): HeldText[] | { action: 'cut'; reason: string } {
      if (pendingCut) return { action: 'cut', reason: pendingCut };
      const out: HeldText[] = [];
      for (const ch of channels.values()) {
        const text = ch.screener.flush();
        report();
        if (ch.screener.cut) {
          pendingCut = ch.screener.cut.reason;
          return { action: 'cut', reason: pendingCut };
        }
        if (text.length > 0) out.push({ template: ch.template, text });
      }
      return out;
    },
  };
  return t;
}

function screenStream(
  ctx: RequestContext,
  format: StreamFormat,
  events: AsyncIterable<StreamEvent>,
  s: ScreeningSettings,
  opts: Opts,
): void {
  // Noted as they happen (the end stages run once the upstream's stream ended, which a cut causes).
  const transform = outputTransform(s, (found) => noteOutput(ctx, s, found, null), opts);
  ctx.response!.body = transformedBytes(format, events, transform, {
    onCut: (reason) => noteOutput(ctx, s, transform.found(), reason),
  });
}

/** The endpoints whose whole answers `screenAnswer` reads text from. */
const TEXT_ANSWERS = new Set(['chat', 'completions', 'responses', 'messages']);

export function screenOutput(ctx: RequestContext): Refusal | undefined {
  const res = ctx.response;
  if (!res || !ctx.principal || !ctx.endpoint || res.status !== 200) return undefined;
  const streamed = res.events !== undefined;
  if (!streamed && !(res.body instanceof Uint8Array)) return undefined;
  const s = policyFor(ctx.rt.cfg).settingsFor(ctx.principal);
  const canary = taskCanaries.get(ctx);
  const opts: Opts = canary ? { canaries: [canary] } : {};
  if (s.output.secrets === 'off' && s.output.pii === 'off' && s.output.deny.length === 0 && !canary)
    return undefined;
  if (streamed) {
    const format = streamFormatOf(ctx.endpoint);
    if (format) screenStream(ctx, format, res.events!, s, opts);
    return undefined;
  }
  // Only answers with text are screened: an embeddings answer (1,536 numbers per input) or an
  // image URL list is not parsed at all, which was a third of a simulated embeddings request.
  if (!TEXT_ANSWERS.has(ctx.endpoint)) return undefined;
  // A whole chat answer of the built-in mock (most calls of `sluice simulate`): its text is known
  // without decoding and parsing the bytes back. Every choice carries that text, so one screening
  // tells whether any would find something; only then is the answer parsed and rewritten below.
  if (ctx.endpoint === 'chat') {
    const text = mockChatAnswerText(res);
    if (text !== undefined && (text.length === 0 || screenOutputText(text, s, opts).found.length === 0))
      return undefined;
  }
  let body: unknown;
  try {
    body = JSON.parse(Buffer.from(res.body as Uint8Array).toString('utf8'));
  } catch {
    return undefined; // not JSON (never for these endpoints): passed through as it came
  }
  if (!isObj(body)) return undefined;
  const found: string[] = [];
  const cut = screenAnswer(ctx.endpoint, body, s, found, opts);
  if (found.length === 0) return undefined;
  noteOutput(ctx, s, found, cut);
  res.body = new TextEncoder().encode(JSON.stringify(body));
  ctx.reply.header('x-sluice-screening-output', [...new Set(found)].join(','));
  return undefined;
}
