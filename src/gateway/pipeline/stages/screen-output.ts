/**
 * Stage `screenOutput`: output screening of whole (non-streamed) answers with the principal's
 * `screening.output` settings: secrets and PII are redacted (`[REDACTED:<kind>]`) or, for
 * `block`, the answer is cut at the match and ends as a content-filter stop in its own format
 * (OpenAI chat/completions `finish_reason: "content_filter"`, Responses `status: "incomplete"`
 * with `incomplete_details.reason: "content_filter"`, Anthropic `stop_reason: "refusal"`); the
 * deny list cuts too. Streams pass through untouched here: they get the same screener
 * (`createOutputScreener`) through the provider's event transform.
 */

import type { SluiceConfig } from '../../../config/schema.js';
import type { Refusal } from '../../../core/errors.js';
import { screenOutputText } from '../../../core/screening/output.js';
import {
  compileScreeningPolicy,
  type ScreeningPolicy,
  type ScreeningSettings,
} from '../../../core/screening/policy.js';
import type { RequestContext } from '../context.js';

const policies = new WeakMap<SluiceConfig, ScreeningPolicy>();

type Obj = Record<string, unknown>;
const isObj = (x: unknown): x is Obj => typeof x === 'object' && x !== null && !Array.isArray(x);

/** Screens `o[key]` in place; returns the cut reason, if any. */
function screenField(o: Obj, key: string, s: ScreeningSettings, found: string[]): string | null {
  const v = o[key];
  if (typeof v !== 'string' || v.length === 0) return null;
  const r = screenOutputText(v, s);
  for (const f of r.found) found.push(`${f.detector}:${f.kind}`);
  o[key] = r.text;
  return r.cut ? r.cut.reason : null;
}

/** Rewrites a parsed answer; returns true when anything changed. */
function screenAnswer(endpoint: string, body: Obj, s: ScreeningSettings, found: string[]): void {
  if (endpoint === 'chat' || endpoint === 'completions') {
    for (const c of Array.isArray(body.choices) ? body.choices : []) {
      if (!isObj(c)) continue;
      const cut =
        endpoint === 'chat' && isObj(c.message)
          ? screenField(c.message, 'content', s, found)
          : screenField(c, 'text', s, found);
      if (cut) c.finish_reason = 'content_filter';
    }
  } else if (endpoint === 'responses') {
    for (const item of Array.isArray(body.output) ? body.output : []) {
      if (!isObj(item) || !Array.isArray(item.content)) continue;
      for (const part of item.content)
        if (isObj(part) && screenField(part, 'text', s, found)) {
          body.status = 'incomplete';
          body.incomplete_details = { reason: 'content_filter' };
        }
    }
  } else if (endpoint === 'messages') {
    for (const part of Array.isArray(body.content) ? body.content : [])
      if (isObj(part) && part.type === 'text' && screenField(part, 'text', s, found))
        body.stop_reason = 'refusal';
  }
}

export function screenOutput(ctx: RequestContext): Refusal | undefined {
  const res = ctx.response;
  if (!res || !ctx.principal || !ctx.endpoint || res.status !== 200 || !(res.body instanceof Uint8Array))
    return undefined;
  let policy = policies.get(ctx.rt.cfg);
  if (!policy) {
    policy = compileScreeningPolicy(ctx.rt.cfg);
    policies.set(ctx.rt.cfg, policy);
  }
  const s = policy.settingsFor(ctx.principal);
  if (s.output.secrets === 'off' && s.output.pii === 'off' && s.output.deny.length === 0) return undefined;
  let body: unknown;
  try {
    body = JSON.parse(Buffer.from(res.body).toString('utf8'));
  } catch {
    return undefined; // not JSON (never for these endpoints): passed through as it came
  }
  if (!isObj(body)) return undefined;
  const found: string[] = [];
  screenAnswer(ctx.endpoint, body, s, found);
  if (found.length === 0) return undefined;
  res.body = new TextEncoder().encode(JSON.stringify(body));
  ctx.reply.header('x-sluice-screening-output', [...new Set(found)].join(','));
  return undefined;
}
