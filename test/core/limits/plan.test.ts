import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../../src/config/load.js';
import { estimateRequest } from '../../../src/core/limits/estimate.js';
import {
  compileLimitPlan,
  costsForBuckets,
  keyPart,
  type LimitContext,
} from '../../../src/core/limits/plan.js';
import { MemoryLimitStore } from '../../../src/stores/memory-limit-store.js';

const yaml = `
upstreams:
  - { name: local, kind: mock }
models:
  - { match: "*", upstream: local }
prices:
  "gpt-4*": { input: 30, output: 60 }
  "gpt-4o-mini": { input: 0.15, output: 0.6 }
  "*": { input: 1, output: 2, image: 0.04 }
tiers:
  free:
    limits:
      - { id: rpm,      per: key,    requests: 20,  window: 1m, burst: 5 }
      - { id: tpm,      per: key,    tokens: 40000, window: 1m }
      - { id: inflight, per: key,    concurrent: 2 }
      - { id: daily,    per: tenant, usd: 5,        window: 1d }
      - { id: img,      per: key,    images: 10,    window: 1h, actions: [images.generate] }
      - { id: gpt4,     per: key,    tokens: 10000, window: 1m, models: ["gpt-4*"] }
  pro:
    limits:
      - { id: users,  per: end-user, requests: 5, window: 1m }
      - { id: byip,   per: ip,       requests: 100, window: 1m, mode: shadow }
      - { id: shared, per: tier,     tokens: 1000000, window: 1m }
      - { id: all,    per: global,   requests: 10000, window: 1m, onStoreFailure: closed }
      - { id: proj,   per: project,  requests: 50, window: 2h, burst: 10 }
tenants:
  acme:
    limits:
      - { id: tpm, per: key, tokens: 80000, window: 1m }
projects:
  p_big:
    limits:
      - { id: extra, per: project, requests: 7, window: 1s }
keys:
  k_vip:
    limits:
      - { id: rpm, per: key, requests: 200, window: 1m }
`;

const cfg = parseConfig(yaml);
const ctx = (over: Partial<LimitContext> = {}): LimitContext => ({
  keyId: 'k_1',
  tenantId: 't_1',
  projectId: null,
  tier: 'free',
  endUser: null,
  ip: '203.0.113.9',
  action: 'chat.create',
  model: 'gpt-4o-mini',
  ...over,
});

describe('compileLimitPlan', () => {
  const plan = compileLimitPlan(cfg);

  it('gives the tier limits that apply to the action and model, with algorithms by window', () => {
    const buckets = plan.bucketsFor(ctx());
    expect(buckets.map((b) => b.id)).toEqual(['rpm', 'tpm', 'inflight', 'daily', 'gpt4']);
    const [rpm, tpm, inflight, daily] = buckets;
    expect(rpm).toMatchObject({
      kind: 'requests',
      algorithm: 'gcra',
      limit: 20,
      burst: 5,
      windowMs: 60_000,
      per: 'key',
      shadow: false,
    });
    expect(tpm).toMatchObject({ kind: 'tokens', algorithm: 'gcra', limit: 40000 });
    expect(inflight).toMatchObject({
      kind: 'concurrent',
      algorithm: 'lease',
      limit: 2,
      windowMs: cfg.hardening.requestTimeout + 60_000,
    });
    expect(daily).toMatchObject({
      kind: 'usd',
      algorithm: 'window',
      limit: 5,
      windowMs: 86_400_000,
      per: 'tenant',
    });
    expect(plan.bucketsFor(ctx({ model: 'claude-3' })).map((b) => b.id)).not.toContain('gpt4');
    expect(plan.bucketsFor(ctx({ model: null })).map((b) => b.id)).not.toContain('gpt4');
    expect(plan.bucketsFor(ctx({ action: 'images.generate', model: 'dall-e-3' })).map((b) => b.id)).toContain(
      'img',
    );
  });

  it('keys name the scope and carry the tenant hash tag', () => {
    const [rpm, , , daily] = plan.bucketsFor(ctx());
    expect(rpm!.key).toBe('{t:t_1}:rpm:g:k:k_1');
    expect(daily!.key).toBe('{t:t_1}:daily:w:t');
    const pro = plan.bucketsFor(ctx({ tier: 'pro', endUser: 'alice', projectId: 'p_1' }));
    expect(Object.fromEntries(pro.map((b) => [b.id, b.key]))).toEqual({
      users: '{t:t_1}:users:g:u:alice',
      byip: '{i:203.0.113.9}:byip:g',
      shared: '{r:pro}:shared:g',
      all: '{g}:all:g',
      proj: '{t:t_1}:proj:w:p:p_1',
    });
  });

  it('per end-user without an end user, and per project without a project, fall back to the key', () => {
    const pro = plan.bucketsFor(ctx({ tier: 'pro' }));
    expect(pro.find((b) => b.id === 'users')!.key).toBe('{t:t_1}:users:g:k:k_1');
    expect(pro.find((b) => b.id === 'proj')!.key).toBe('{t:t_1}:proj:w:k:k_1');
  });

  it('overrides for tenant, project and key replace a same-id limit or add one', () => {
    expect(plan.bucketsFor(ctx({ tenantId: 'acme' })).find((b) => b.id === 'tpm')!.limit).toBe(80000);
    const vip = plan.bucketsFor(ctx({ keyId: 'k_vip', tenantId: 'acme', projectId: 'p_big' }));
    expect(vip.map((b) => [b.id, b.limit])).toEqual([
      ['rpm', 200],
      ['tpm', 80000],
      ['inflight', 2],
      ['daily', 5],
      ['gpt4', 10000],
      ['extra', 7],
    ]);
    expect(vip.find((b) => b.id === 'rpm')!.burst).toBe(0);
  });

  it('a window limit folds its burst into the limit; shadow mode and onStoreFailure carry through', () => {
    const pro = plan.bucketsFor(ctx({ tier: 'pro', projectId: 'p_1' }));
    expect(pro.find((b) => b.id === 'proj')).toMatchObject({ algorithm: 'window', limit: 60, burst: 0 });
    expect(pro.find((b) => b.id === 'byip')!.shadow).toBe(true);
    expect(pro.find((b) => b.id === 'all')!.onStoreFailure).toBe('closed');
    expect(pro.find((b) => b.id === 'shared')!.onStoreFailure).toBe('local');
  });

  it('caches per combination: the same frozen array when nothing depends on the end user or IP', () => {
    const a = plan.bucketsFor(ctx());
    expect(plan.bucketsFor(ctx())).toBe(a);
    expect(Object.isFrozen(a)).toBe(true);
    const u1 = plan.bucketsFor(ctx({ tier: 'pro', endUser: 'u1' }));
    const u2 = plan.bucketsFor(ctx({ tier: 'pro', endUser: 'u2' }));
    expect(u1.find((b) => b.id === 'users')!.key).not.toBe(u2.find((b) => b.id === 'users')!.key);
    expect(u1.find((b) => b.id === 'shared')).toBe(u2.find((b) => b.id === 'shared'));
  });

  it('an unknown tier has no limits', () => {
    expect(plan.bucketsFor(ctx({ tier: 'nope' }))).toEqual([]);
  });

  it('costs per kind, and prices by the most specific model glob', () => {
    const buckets = plan.bucketsFor(ctx());
    const usd = plan.usdFor('gpt-4o-mini', { inputTokens: 1000, outputTokens: 2000, images: 0 });
    expect(usd).toBeCloseTo((1000 * 0.15 + 2000 * 0.6) / 1e6, 12);
    expect(costsForBuckets(buckets, { inputTokens: 100, outputTokens: 50, images: 0, usd })).toEqual([
      1,
      150,
      1,
      usd,
      150,
    ]);
    expect(plan.usdFor('gpt-4-turbo', { inputTokens: 1e6, outputTokens: 0, images: 0 })).toBe(30);
    expect(plan.usdFor('dall-e-3', { inputTokens: 0, outputTokens: 0, images: 2 })).toBeCloseTo(0.08, 12);
    expect(
      compileLimitPlan(parseConfig(yaml.replace(/prices:[\s\S]*?tiers:/, 'tiers:'))).usdFor('x', {
        inputTokens: 5,
        outputTokens: 5,
        images: 1,
      }),
    ).toBe(0);
  });

  it('encodes key parts that could break the key or its hash tag', () => {
    expect(keyPart('plain-id_1.x@y')).toBe('plain-id_1.x@y');
    expect(keyPart('a}b{c:d')).toBe('a%7db%7bc%3ad');
    expect(keyPart('2001:db8::1')).toBe('2001%3adb8%3a%3a1');
    expect(keyPart('x'.repeat(200))).toMatch(/^h\.[0-9a-f]{32}$/);
    const b = plan.bucketsFor(ctx({ tier: 'pro', endUser: 'evil}{t:other}' })).find((x) => x.id === 'users')!;
    expect(b.key.match(/\{[^}]*\}/)![0]).toBe('{t:t_1}');
  });
});

describe('reserve with an estimate, settle with the actual usage', () => {
  it('a reservation of max_tokens is refunded down to the actual output', async () => {
    const plan = compileLimitPlan(cfg);
    const store = new MemoryLimitStore({ clock: { now: () => 1_700_000_000_000 } });
    const buckets = plan.bucketsFor(ctx({ model: 'claude-3' })).filter((b) => b.id === 'tpm');
    const body = {
      model: 'claude-3',
      max_tokens: 30000,
      messages: [{ role: 'user', content: 'Say hello in five words.' }],
    };
    const est = estimateRequest('chat', body, { defaultOutputTokens: cfg.limits.defaultOutputTokens });
    expect(est.outputTokens).toBe(30000);
    const costs = costsForBuckets(buckets, { ...est, usd: 0 });
    const r = await store.reserve({ buckets: [...buckets], costs, requestId: 'q1' });
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.states[0]!.remaining).toBe(40000 - est.inputTokens - 30000);
    // The upstream reports 12 input and 9 output tokens.
    await store.settle(
      r.reservation,
      costsForBuckets(buckets, { inputTokens: 12, outputTokens: 9, images: 0, usd: 0 }),
    );
    const [after] = await store.peek([...buckets]);
    expect(after!.remaining).toBe(40000 - 21);
  });
});
