/**
 * Stage `screenInput`: content screening of what the caller sends (issue 12). Every text a model
 * will read (user turns, system and developer prompts, tool results, documents, Responses input
 * items) goes through the injection classifier, the secret detector and the PII detector, with the
 * principal's `screening:` settings (top level, then tier, tenant, project, key overrides).
 *
 *   - block  → 400 SLUICE_CONTENT_BLOCKED naming the detector (the scores and kinds go to the
 *              audit event only, never the matched text);
 *   - redact → `ctx.body` is replaced by the redacted copy before anything else sees it;
 *   - flag   → forwarded unchanged.
 * Whenever something was found, the answer carries `x-sluice-screening` (kinds and scores only),
 * and `deps.onScreening` hears of it (metrics, abuse detection).
 */
import { createHmac, randomBytes } from 'node:crypto';
import type { SluiceConfig } from '../../../config/schema.js';
import { type Refusal, refuse } from '../../../core/errors.js';
import { ScreeningMemo } from '../../../core/screening/memo.js';
import { makeCanary, withCanary } from '../../../core/screening/output.js';
import { compileScreeningPolicy, type ScreeningPolicy } from '../../../core/screening/policy.js';
import { type ScreenResult, screenRequest } from '../../../core/screening/request.js';
import { inputSignals } from '../../../core/screening/signals.js';
import type { RequestContext } from '../context.js';

/**
 * Findings of texts that come back (a chat's history every turn, system prompts, tool results and
 * documents), per process: exact (keyed by the whole text) and bounded (memo.ts), so a repeated
 * text is not scanned again and the answer is the same as without it.
 */
const inputMemo = new ScreeningMemo();

/** One compiled policy per config snapshot (a reload compiles anew). */
const policies = new WeakMap<SluiceConfig, ScreeningPolicy>();

export function policyFor(cfg: SluiceConfig): ScreeningPolicy {
  let p = policies.get(cfg);
  if (!p) {
    p = compileScreeningPolicy(cfg);
    policies.set(cfg, p);
  }
  return p;
}

/**
 * The audit's view of the verdicts: the decision, the injection score (and the role it came from)
 * and the kinds each span detector found, with `shadow` where it did not act. Never matched text.
 */
export function auditOf(r: ScreenResult): Record<string, unknown> {
  const out: Record<string, unknown> = { decision: r.decision };
  for (const v of r.verdicts) {
    if (v.detector === 'injection') {
      if (v.action === 'allow' && !v.shadow) continue;
      out.injection = {
        score: Math.round(v.score * 1000) / 1000,
        action: v.action,
        role: v.role,
        ...(v.shadow ? { shadow: true } : {}),
      };
    } else if (v.findings.length > 0) {
      out[v.detector] = {
        kinds: [...new Set(v.findings.map((f) => f.kind))],
        count: v.findings.length,
        action: v.action,
        ...(v.shadow ? { shadow: true } : {}),
      };
    }
  }
  return out;
}

/** The canary planted in a task's server-side prompt, per request; `screenOutput` cuts an answer that repeats it. */
export const taskCanaries = new WeakMap<RequestContext, string>();
/** Per process: canaries cannot be guessed, and the same task prompt gets the same one (the response cache still hits). */
const CANARY_KEY = randomBytes(32);

/** Plants a canary at the top of a task's system prompt (built by `parseTask`, never seen by the caller). */
function plantCanary(ctx: RequestContext): void {
  const body = ctx.body;
  const msgs = body?.messages;
  if (!body || !ctx.action.startsWith('tasks.') || !Array.isArray(msgs)) return;
  const sys = msgs[0] as { role?: unknown; content?: unknown } | undefined;
  if (sys?.role !== 'system' || typeof sys.content !== 'string') return;
  const canary = makeCanary(createHmac('sha256', CANARY_KEY).update(sys.content).digest());
  ctx.body = { ...body, messages: [{ ...sys, content: withCanary(sys.content, canary) }, ...msgs.slice(1)] };
  taskCanaries.set(ctx, canary);
}

export function screenInput(ctx: RequestContext): Refusal | undefined {
  if (!ctx.body || !ctx.endpoint || !ctx.principal) return undefined;
  const settings = policyFor(ctx.rt.cfg).settingsFor(ctx.principal);
  const r = screenRequest(ctx.endpoint, ctx.body, settings, { memo: inputMemo });
  if (r.header) {
    ctx.reply.header('x-sluice-screening', r.header);
    ctx.screening = { ...ctx.screening, input: auditOf(r) };
    const signals = inputSignals(r);
    if (signals.length > 0 && ctx.deps.onScreening) {
      const p = ctx.principal;
      ctx.deps.onScreening({
        requestId: ctx.id,
        tenantId: p.tenantId,
        keyId: p.keyId,
        ip: ctx.ip,
        endpoint: ctx.endpoint,
        signals,
      });
    }
  }
  if (r.decision === 'block' && r.refusal)
    return refuse('SLUICE_CONTENT_BLOCKED', r.refusal.detail, {
      internal: `screening: ${r.header ?? 'block'}`,
      audit: { screening: { input: auditOf(r) } },
    });
  if (r.decision === 'redact' && r.redactedBody) ctx.body = r.redactedBody as Record<string, unknown>;
  plantCanary(ctx);
  return undefined;
}
