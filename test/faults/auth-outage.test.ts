/**
 * The key authenticator while the control store cannot answer (issue 21, item 1): keys verified
 * within the grace are served from the record seen then, revocations seen before still apply, keys
 * never seen (or seen too long ago) surface the store error (the gateway answers 503, not 401).
 * Revoked and expired refusals name their key, so their audit event is not anonymous.
 */
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { formatKey, hashSecret, newKeyId, newSecret } from '../../src/core/keys/api-key.js';
import type { ApiKeyRecord, ControlStore } from '../../src/core/ports.js';
import { isRefusal, KeyAuthenticator, type KeyRefusal } from '../../src/gateway/auth.js';

const pepper = randomBytes(32);

function fixture(graceMs = 15 * 60_000) {
  const clock = {
    t: 1_000_000,
    now() {
      return this.t;
    },
  };
  const records = new Map<string, ApiKeyRecord>();
  const state = { down: false, reads: 0 };
  const control = {
    getKey: async (id: string) => {
      state.reads++;
      if (state.down)
        throw Object.assign(new Error('terminating connection due to administrator command'), {
          code: '57P01',
        });
      return records.get(id);
    },
  } as unknown as ControlStore;
  const stale: unknown[] = [];
  const auth = new KeyAuthenticator({ control, pepper, clock, graceMs, onStale: (e) => stale.push(e) });
  const make = (patch: Partial<ApiKeyRecord> = {}) => {
    const id = newKeyId();
    const secret = newSecret();
    records.set(id, {
      id,
      hash: hashSecret(pepper, secret),
      tenantId: 'acme',
      tier: 'default',
      createdAt: 0,
      ...patch,
    });
    return { id, key: formatKey(id, secret) };
  };
  return { clock, records, state, auth, make, stale };
}

describe('KeyAuthenticator during a control-store outage', () => {
  it('serves a key verified within the grace, from the record seen then', async () => {
    const f = fixture();
    const a = f.make();
    expect(isRefusal(await f.auth.authenticate(a.key))).toBe(false);
    f.state.down = true;
    f.clock.t += 14 * 60_000; // past the 1 s cache TTL, within the 15 min grace
    const p = await f.auth.authenticate(a.key);
    expect(isRefusal(p)).toBe(false);
    expect(f.stale.length).toBe(1);
    // Past the grace: the store error surfaces (503 at the edge).
    f.clock.t += 2 * 60_000;
    await expect(f.auth.authenticate(a.key)).rejects.toMatchObject({ code: '57P01' });
  });

  it('a key never seen gets the store error, not a 401', async () => {
    const f = fixture();
    const b = f.make();
    f.state.down = true;
    await expect(f.auth.authenticate(b.key)).rejects.toMatchObject({ code: '57P01' });
  });

  it('revocations seen before the outage still apply; an invalidated key is not served stale', async () => {
    const f = fixture();
    const a = f.make();
    const c = f.make();
    await f.auth.authenticate(a.key);
    await f.auth.authenticate(c.key);
    // 1. a is revoked and the instance re-reads it before the outage.
    f.records.get(a.id)!.revokedAt = f.clock.t;
    f.clock.t += 2000;
    const r = (await f.auth.authenticate(a.key)) as KeyRefusal;
    expect(r.code).toBe('SLUICE_KEY_REVOKED');
    // 2. c is invalidated (revoked elsewhere, published) and then the store goes down.
    f.auth.invalidate(c.id);
    f.state.down = true;
    f.clock.t += 2000;
    expect(((await f.auth.authenticate(a.key)) as KeyRefusal).code).toBe('SLUICE_KEY_REVOKED');
    await expect(f.auth.authenticate(c.key)).rejects.toMatchObject({ code: '57P01' });
  });

  it('regression: SLUICE_KEY_REVOKED and SLUICE_KEY_EXPIRED refusals carry the key id (for the audit event)', async () => {
    const f = fixture();
    const revoked = f.make({ revokedAt: 1 });
    const expired = f.make({ expiresAt: 1, tenantId: 'beta' });
    expect(await f.auth.authenticate(revoked.key)).toMatchObject({
      code: 'SLUICE_KEY_REVOKED',
      keyId: revoked.id,
    });
    expect(await f.auth.authenticate(expired.key)).toMatchObject({
      code: 'SLUICE_KEY_EXPIRED',
      keyId: expired.id,
    });
    expect(isRefusal(await f.auth.authenticate(revoked.key))).toBe(true);
  });
});
