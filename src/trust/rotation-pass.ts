/**
 * The rotation half of the trust pass (src/trust/service.ts): for each key under a `keys:` policy,
 * warn its owner once at `warnAt` and, with `autoRotate`, deliver a new secret at `maxAge` and store
 * it only once delivered. The claim on a key's issue time makes one instance do each rotation.
 */
import type { Logger } from 'pino';
import type { KeyService } from '../admin/key-service.js';
import type { SluiceConfig } from '../config/schema.js';
import { formatKey, newSecret } from '../core/keys/api-key.js';
import type { ApiKeyRecord, Clock } from '../core/ports.js';
import {
  type RotationPolicy,
  type RotationStatus,
  rotationPolicyFor,
  rotationStatus,
} from '../core/trust/rotation.js';
import type { SqlTrustStore } from '../stores/sql/trust-store.js';
import { deliver } from './deliver.js';

export interface KeyView {
  id: string;
  tenant: string;
  state: RotationStatus['state'];
  age: number;
  warnAt: number;
  dueAt: number;
  autoRotate: boolean;
}

export interface RotationPassDeps {
  store: SqlTrustStore;
  keys: Pick<KeyService, 'rotate'>;
  clock: Clock;
  logger: Pick<Logger, 'warn'>;
  config: () => SluiceConfig;
  invalidate: (id: string) => void;
  fetchImpl?: typeof fetch;
}

type Emit = (
  action: string,
  tenantId: string,
  keyId: string | null,
  reason: string,
  details: Record<string, unknown>,
) => void;

export function rotationPolicyOf(
  cfg: SluiceConfig,
  tenantId: string,
  tier: string,
): RotationPolicy | undefined {
  return rotationPolicyFor(cfg.tenants[tenantId]?.keys, cfg.tiers[tier]?.keys);
}

export async function rotationPass(
  o: RotationPassDeps,
  keys: ApiKeyRecord[],
  tierOf: (k: ApiKeyRecord) => string,
  emit: Emit,
): Promise<Map<string, KeyView>> {
  const cfg = o.config();
  const now = o.clock.now();
  const issued = new Map((await o.store.rotations()).map((r) => [r.keyId, r]));
  const views = new Map<string, KeyView>();
  for (const k of keys) {
    if (k.expiresAt != null && k.expiresAt <= now) continue;
    const policy = rotationPolicyOf(cfg, k.tenantId, tierOf(k));
    if (!policy) continue;
    const row = issued.get(k.id);
    const issuedAt = row?.issuedAt ?? k.createdAt;
    const st = rotationStatus(policy, issuedAt, now);
    views.set(k.id, { id: k.id, tenant: k.tenantId, ...st, autoRotate: policy.autoRotate });
    if (st.state === 'ok') continue;
    if (!row?.warnedAt && (await o.store.markWarned(k.id, issuedAt, now))) {
      const d = policy.deliver
        ? await deliver(
            policy.deliver.webhook,
            policy.deliver.secret,
            {
              type: 'key.rotation.warning',
              key: k.id,
              tenant: k.tenantId,
              dueAt: new Date(st.dueAt).toISOString(),
              autoRotate: policy.autoRotate,
            },
            { fetchImpl: o.fetchImpl },
          )
        : null;
      if (d && !d.ok) await o.store.clearWarned(k.id, now);
      emit('key.rotation.warn', k.tenantId, k.id, d && !d.ok ? 'delivery_failed' : 'ok', {
        dueAt: st.dueAt,
        delivery: d,
      });
    }
    if (st.state === 'due' && policy.autoRotate && policy.deliver) {
      const rotated = await autoRotate(o, emit, k, policy, issuedAt, now);
      if (rotated) views.set(k.id, { ...views.get(k.id)!, ...rotationStatus(policy, now, now) });
    }
  }
  return views;
}

/** Delivers a new secret first and stores it only once the webhook took it (no secret is ever lost). */
async function autoRotate(
  o: RotationPassDeps,
  emit: Emit,
  k: ApiKeyRecord,
  p: RotationPolicy,
  issuedAt: number,
  now: number,
): Promise<boolean> {
  if (!(await o.store.claim(k.id, issuedAt, now))) return false; // another instance rotates it
  const secret = newSecret();
  const graceEndsAt = now + p.grace;
  const d = await deliver(
    p.deliver!.webhook,
    p.deliver!.secret,
    {
      type: 'key.rotated',
      key: k.id,
      tenant: k.tenantId,
      apiKey: formatKey(k.id, secret),
      previousValidUntil: new Date(graceEndsAt).toISOString(),
    },
    { fetchImpl: o.fetchImpl },
  );
  if (!d.ok) {
    await o.store.undo(k.id, issuedAt, now);
    emit('key.rotate.auto', k.tenantId, k.id, 'delivery_failed', { delivery: d });
    o.logger.warn(
      { key: k.id, webhook: d.webhook, error: d.error },
      'key rotation: delivery failed; will retry',
    );
    return false;
  }
  try {
    await o.keys.rotate(k.id, p.grace, secret);
  } catch (err) {
    // The delivered secret was never stored: the next pass issues another one.
    await o.store.undo(k.id, issuedAt, now).catch(() => {});
    emit('key.rotate.auto', k.tenantId, k.id, 'store_failed', { delivery: d });
    throw err;
  }
  o.invalidate(k.id);
  emit('key.rotate.auto', k.tenantId, k.id, 'ok', { graceEndsAt, delivery: d });
  return true;
}
