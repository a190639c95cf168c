/**
 * Least-privilege review: keys without expiry, keys unused for N days, and scopes or models granted
 * but unused in the last N days, each with the narrower grant it would suggest.
 * Shared by `sluice review` and `GET /admin/v1/review`.
 */
import type { SluiceConfig } from '../config/schema.js';
import { compileGlobs } from '../core/authz/glob.js';
import type { ApiKeyRecord, ControlStore } from '../core/ports.js';
import { rotationPolicyFor, rotationStatus } from '../core/trust/rotation.js';
import type { SqlDatabase } from '../stores/sql/db.js';
import { SqlTrustStore } from '../stores/sql/trust-store.js';

export interface ReviewFinding {
  key: string;
  tenant: string;
  tier: string;
  kind: 'no-expiry' | 'unused' | 'unused-scopes' | 'unused-models' | 'rotation-warn' | 'rotation-due';
  message: string;
  /** The narrower grant suggested, when there is one. */
  suggest?: { scopes?: string[]; models?: string[]; expires?: string };
}

export async function review(
  control: ControlStore,
  sql: SqlDatabase,
  cfg: SluiceConfig,
  days: number,
  now: number,
): Promise<ReviewFinding[]> {
  const since = now - days * 86_400_000;
  const keys = (await control.listKeys()).filter((k) => !k.revokedAt && !(k.expiresAt && k.expiresAt <= now));
  const rows = await sql.db
    .selectFrom('usage')
    .select(['key_id', 'action', 'model'])
    .distinct()
    .where('at', '>=', since)
    .execute();
  const used = new Map<string, { actions: Set<string>; models: Set<string> }>();
  for (const r of rows) {
    let u = used.get(r.key_id);
    if (!u) {
      u = { actions: new Set(), models: new Set() };
      used.set(r.key_id, u);
    }
    u.actions.add(r.action);
    u.models.add(r.model);
  }
  const out: ReviewFinding[] = [];
  const trust = new SqlTrustStore(sql);
  const issued = new Map((await trust.rotations()).map((r) => [r.keyId, r.issuedAt]));
  const tiers = new Map((await trust.tiers()).map((r) => [r.tenantId, r]));
  for (const k of keys) {
    const base = { key: k.id, tenant: k.tenantId, tier: k.tier };
    // Scheduled rotation: the key's secret near or past its maxAge (policy `keys:` of its tenant or tier).
    const earned = tiers.get(k.tenantId);
    const tier = earned && (earned.pinned || cfg.promotion?.ladder.includes(k.tier)) ? earned.tier : k.tier;
    const rp = rotationPolicyFor(cfg.tenants[k.tenantId]?.keys, cfg.tiers[tier]?.keys);
    if (rp) {
      const st = rotationStatus(rp, issued.get(k.id) ?? k.createdAt, now);
      if (st.state !== 'ok')
        out.push({
          ...base,
          kind: st.state === 'due' ? 'rotation-due' : 'rotation-warn',
          message: `secret is ${Math.floor(st.age / 86_400_000)} days old; rotation ${st.state === 'due' ? 'was due' : 'is due'} ${new Date(st.dueAt).toISOString()}${rp.autoRotate ? ' (rotated automatically)' : ` (sluice keys rotate ${k.id})`}`,
        });
    }
    if (!k.expiresAt)
      out.push({
        ...base,
        kind: 'no-expiry',
        message: 'the key never expires',
        suggest: { expires: `${Math.max(days, 30)}d` },
      });
    const u = used.get(k.id);
    const lastUsed = k.lastUsedAt ?? null;
    if (!u && k.createdAt < since && (lastUsed === null || lastUsed < since)) {
      out.push({
        ...base,
        kind: 'unused',
        message: `not used in the last ${days} days${lastUsed ? ` (last used ${new Date(lastUsed).toISOString()})` : ' (never used)'}; consider revoking it`,
      });
      continue;
    }
    if (!u) continue;
    const granted = grantedScopes(k, cfg);
    const unusedScopes = granted.filter((s) => !s.includes('*') && !u.actions.has(s));
    if (granted.some((s) => s.includes('*')) || unusedScopes.length > 0) {
      const wide = granted.filter((s) => s.includes('*'));
      out.push({
        ...base,
        kind: 'unused-scopes',
        message: `granted ${[...wide, ...unusedScopes].join(', ')} but used only ${[...u.actions].sort().join(', ')} in ${days} days`,
        suggest: { scopes: [...u.actions].sort() },
      });
    }
    const models = k.models ?? cfg.tiers[k.tier]?.models ?? ['*'];
    const m = compileGlobs(models);
    if (models.some((x) => x.includes('*')) || models.some((x) => !u.models.has(x))) {
      const usedModels = [...u.models].filter((x) => m(x)).sort();
      if (usedModels.length > 0 && JSON.stringify(usedModels) !== JSON.stringify([...models].sort())) {
        out.push({
          ...base,
          kind: 'unused-models',
          message: `allowed models ${models.join(', ')} but used only ${usedModels.join(', ')} in ${days} days`,
          suggest: { models: usedModels },
        });
      }
    }
  }
  return out;
}

function grantedScopes(k: ApiKeyRecord, cfg: SluiceConfig): string[] {
  return k.scopes ?? cfg.tiers[k.tier]?.scopes ?? ['*'];
}

export function formatReview(findings: ReviewFinding[]): string {
  if (findings.length === 0) return 'nothing to review\n';
  return `${findings
    .map((f) => {
      const s = f.suggest
        ? ` -> suggest ${[f.suggest.scopes ? `--scopes ${f.suggest.scopes.join(',')}` : '', f.suggest.models ? `--models "${f.suggest.models.join(',')}"` : '', f.suggest.expires ? `--expires ${f.suggest.expires}` : ''].filter(Boolean).join(' ')}`
        : '';
      return `${f.key} (${f.tenant}, ${f.tier}) ${f.kind}: ${f.message}${s}`;
    })
    .join('\n')}\n`;
}
