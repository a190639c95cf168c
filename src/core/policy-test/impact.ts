/**
 * Impact replay (`sluice policy impact`, issue 19): the recorded data-plane decisions of a period,
 * replayed in order against a candidate policy on a virtual clock. Pure: the caller reads the
 * audit trail and the key store and passes an evaluator built from the candidate.
 */
import type { CasePrincipal, CaseRequest, Evaluator } from './runner.js';

/** The request facts an audit event holds (and the key's current record). */
export interface RecordedCall {
  at: number;
  keyId: string;
  tenantId: string;
  action: string;
  model: string;
  ip: string | null;
  country: string | null;
  /** `allowed`, `refused`, `throttled`, `error` as recorded. */
  decision: string;
  reason: string;
  inputTokens?: number;
}

export interface ChangedCall {
  at: number;
  keyId: string;
  tenantId: string;
  action: string;
  model: string;
  before: string;
  after: string;
}

export interface ImpactReport {
  replayed: number;
  /** Events skipped: not a model call, or the key no longer exists (named by key id). */
  skipped: { reason: string; count: number }[];
  newlyRefused: ChangedCall[];
  newlyAllowed: ChangedCall[];
  /** Grouped counts of newly refused calls: `tenant`, `action`, `model`, `code` (the rule that refused). */
  byTenant: Record<string, number>;
  byAction: Record<string, number>;
  byModel: Record<string, number>;
  byCode: Record<string, number>;
  /** Limits of the candidate that refused calls the running policy let through, and how often. */
  limitsBinding: Record<string, number>;
  /** Keys that had an allowed call in the period and would have none under the candidate. */
  keysLosingAccess: string[];
  /** Facts the audit trail does not hold, so the replay does not use them. */
  missing: string[];
}

const ROUTES: Record<string, string> = {
  'chat.create': '/v1/chat/completions',
  'completions.create': '/v1/completions',
  'embeddings.create': '/v1/embeddings',
  'images.generate': '/v1/images/generations',
  'responses.create': '/v1/responses',
  'messages.create': '/v1/messages',
};

export function routeOfAction(action: string): string | null {
  if (ROUTES[action]) return ROUTES[action];
  if (action.startsWith('tasks.')) return `/v1/tasks/${action.slice('tasks.'.length)}`;
  return null;
}

export const MISSING_FACTS = [
  'prompt text and body (the input estimate uses recorded input tokens when usage was recorded)',
  'max_tokens (the output estimate uses the policy default)',
  'end user',
  "the key's restrictions at the time (the key's current record is used)",
];

const bump = (m: Record<string, number>, k: string) => {
  m[k] = (m[k] ?? 0) + 1;
};

/**
 * Replays calls (sorted by time) against the candidate. `principalOf` gives the key's current
 * principal fields, or undefined when the key no longer exists.
 */
export async function replayImpact(
  calls: readonly RecordedCall[],
  principalOf: (keyId: string) => Omit<CasePrincipal, 'ip' | 'time' | 'country'> | undefined,
  candidate: Evaluator,
): Promise<ImpactReport> {
  const r: ImpactReport = {
    replayed: 0,
    skipped: [],
    newlyRefused: [],
    newlyAllowed: [],
    byTenant: {},
    byAction: {},
    byModel: {},
    byCode: {},
    limitsBinding: {},
    keysLosingAccess: [],
    missing: MISSING_FACTS,
  };
  const skipped: Record<string, number> = {};
  const allowedBefore = new Set<string>();
  const allowedAfter = new Set<string>();
  const sorted = [...calls].sort((a, b) => a.at - b.at);
  for (const c of sorted) {
    const path = routeOfAction(c.action);
    if (!path) {
      bump(skipped, `not a model call (${c.action})`);
      continue;
    }
    // Errors (upstream, store) say nothing about policy.
    if (c.decision === 'error') {
      bump(skipped, 'recorded as an error');
      continue;
    }
    const p = principalOf(c.keyId);
    if (!p) {
      bump(skipped, 'key no longer exists');
      continue;
    }
    r.replayed++;
    const request: CaseRequest = { path, model: c.model, tokens: c.inputTokens, stream: false };
    const d = await candidate.decide(
      { ...p, ip: c.ip ?? '192.0.2.10', country: c.country ?? undefined, time: c.at },
      request,
      c.at,
    );
    const before = c.decision === 'allowed' ? 'allow' : `deny ${c.reason}`;
    const after = d.outcome === 'allow' ? 'allow' : `deny ${d.code}`;
    if (c.decision === 'allowed') allowedBefore.add(c.keyId);
    if (d.outcome === 'allow') allowedAfter.add(c.keyId);
    const changed = {
      at: c.at,
      keyId: c.keyId,
      tenantId: c.tenantId,
      action: c.action,
      model: c.model,
      before,
      after,
    };
    if (c.decision === 'allowed' && d.outcome === 'deny') {
      r.newlyRefused.push(changed);
      bump(r.byTenant, c.tenantId);
      bump(r.byAction, c.action);
      bump(r.byModel, c.model);
      bump(r.byCode, d.code ?? '?');
      if (d.status === 429) bump(r.limitsBinding, d.message?.match(/for (\S+)/)?.[1] ?? d.code ?? '?');
    } else if (c.decision !== 'allowed' && d.outcome === 'allow') r.newlyAllowed.push(changed);
  }
  r.skipped = Object.entries(skipped).map(([reason, count]) => ({ reason, count }));
  r.keysLosingAccess = [...allowedBefore].filter((k) => !allowedAfter.has(k)).sort();
  return r;
}

const table = (title: string, m: Record<string, number>) => {
  const rows = Object.entries(m).sort((a, b) => b[1] - a[1]);
  if (rows.length === 0) return '';
  return `${title}\n${rows.map(([k, n]) => `  ${String(n).padStart(6)}  ${k}`).join('\n')}\n`;
};

export function formatImpact(r: ImpactReport): string {
  let s = `replayed ${r.replayed} recorded call(s)\n`;
  for (const k of r.skipped) s += `skipped ${k.count}: ${k.reason}\n`;
  s += `newly refused: ${r.newlyRefused.length}   newly allowed: ${r.newlyAllowed.length}\n`;
  s += table('newly refused by tenant', r.byTenant);
  s += table('newly refused by action', r.byAction);
  s += table('newly refused by model', r.byModel);
  s += table('newly refused by rule (code)', r.byCode);
  s += table('limits that would have bound', r.limitsBinding);
  s += `keys losing access: ${r.keysLosingAccess.length ? r.keysLosingAccess.join(', ') : 'none'}\n`;
  s += `not recorded, so not replayed: ${r.missing.join('; ')}\n`;
  return s;
}
