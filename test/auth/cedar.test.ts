import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  CedarAuthorizer,
  type CedarInput,
  CedarPolicyError,
  checkCedarPolicies,
} from '../../src/auth/cedar.js';
import { ConfigSchema } from '../../src/config/schema.js';

const POLICIES = `
permit(principal, action, resource);
// Free-tier keys may not use the big model for large prompts.
forbid(principal in Tier::"free", action == Action::"chat.create", resource == Model::"gpt-4o")
  when { context.tokenEstimate > 1000 };
// One project may only summarize, from the office network, on weekdays.
forbid(principal in Project::"interns", action, resource)
  unless { action == Action::"tasks.summarize" && context has ip && context.ip.isInRange(ip("10.0.0.0/8")) };
forbid(principal in Tenant::"acme", action == Action::"images.generate", resource)
  when { context has country && context.country == "XX" };
`;

const input = (over: Partial<CedarInput> = {}, ctx: Partial<CedarInput['context']> = {}): CedarInput => ({
  keyId: 'k1',
  tenantId: 'acme',
  projectId: null,
  tier: 'free',
  action: 'chat.create',
  resource: { type: 'Model', id: 'gpt-4o' },
  ...over,
  context: {
    ip: '10.1.2.3',
    country: 'FR',
    now: Date.UTC(2024, 0, 1, 10),
    endpoint: 'chat',
    tokenEstimate: 10,
    ...ctx,
  },
});

describe('CedarAuthorizer', () => {
  it('decides with principal groups, actions, resources and context', async () => {
    const c = await CedarAuthorizer.fromText(POLICIES, { tasks: ['summarize'] });
    expect(c.decide(input()).allow).toBe(true);
    expect(c.decide(input({}, { tokenEstimate: 5000 }))).toMatchObject({
      allow: false,
      reasons: ['policy1'],
    });
    expect(c.decide(input({ tier: 'pro' }, { tokenEstimate: 5000 })).allow).toBe(true);
    const intern = { projectId: 'interns', tier: 'pro' };
    expect(
      c.decide(input({ ...intern, action: 'tasks.summarize', resource: { type: 'Task', id: 'summarize' } }))
        .allow,
    ).toBe(true);
    expect(
      c.decide(
        input(
          { ...intern, action: 'tasks.summarize', resource: { type: 'Task', id: 'summarize' } },
          { ip: '8.8.8.8' },
        ),
      ).allow,
    ).toBe(false);
    expect(c.decide(input(intern)).allow).toBe(false);
    expect(c.decide(input({ action: 'images.generate' }, { country: 'XX' })).allow).toBe(false);
    expect(c.decide(input({ action: 'images.generate' }, { country: null })).allow).toBe(true);
    expect(c.refusal(input({}, { tokenEstimate: 5000 }))).toMatchObject({
      code: 'SLUICE_POLICY_DENIED',
      internal: 'cedar: policy1',
    });
  });

  it('a cache hit never calls Cedar', async () => {
    const c = await CedarAuthorizer.fromText(POLICIES, { tasks: ['summarize'] });
    const first = c.decide(input());
    expect(c.calls).toBe(1);
    const second = c.decide(input());
    expect(second).toBe(first);
    expect(c.stats()).toEqual({ calls: 1, hits: 1, cached: 1 });
    // A different input is a different decision ...
    c.decide(input({ keyId: 'k2' }));
    expect(c.calls).toBe(2);
    // ... but time within the same minute is the same input.
    c.decide(input({}, { now: Date.UTC(2024, 0, 1, 10) + 30_000 }));
    expect(c.calls).toBe(2);
  });

  it('keys the cache only on context the policies read', async () => {
    const noTokens = await CedarAuthorizer.fromText(
      'permit(principal, action, resource) unless { context has country && context.country == "XX" };',
    );
    noTokens.decide(input({}, { tokenEstimate: 1 }));
    noTokens.decide(input({}, { tokenEstimate: 2, ip: '10.9.9.9', endpoint: 'x' }));
    expect(noTokens.calls).toBe(1);
    noTokens.decide(input({}, { country: 'DE' }));
    expect(noTokens.calls).toBe(2);
    const withTokens = await CedarAuthorizer.fromText(POLICIES, { tasks: ['summarize'] });
    withTokens.decide(input({}, { tokenEstimate: 1 }));
    withTokens.decide(input({}, { tokenEstimate: 2 }));
    expect(withTokens.calls).toBe(2);
  });

  it('bounds the cache (least recently used goes first)', async () => {
    const c = await CedarAuthorizer.fromText('permit(principal, action, resource);', { cacheSize: 2 });
    c.decide(input({ keyId: 'a' }));
    c.decide(input({ keyId: 'b' }));
    c.decide(input({ keyId: 'a' })); // a is now the most recent
    c.decide(input({ keyId: 'c' })); // evicts b
    expect(c.calls).toBe(3);
    c.decide(input({ keyId: 'a' }));
    expect(c.calls).toBe(3);
    c.decide(input({ keyId: 'b' }));
    expect(c.calls).toBe(4);
  });

  it('fails closed on an action the schema does not know', async () => {
    const c = await CedarAuthorizer.fromText('permit(principal, action, resource);');
    const d = c.decide(input({ action: 'tasks.unknown', resource: { type: 'Task', id: 'unknown' } }));
    expect(d.allow).toBe(false);
    expect(d.errors.length).toBeGreaterThan(0);
  });

  it('refuses policies that do not validate against the schema', async () => {
    await expect(
      CedarAuthorizer.fromText('permit(principal, action == Action::"chat.delete", resource);'),
    ).rejects.toThrow(CedarPolicyError);
    expect(await checkCedarPolicies('permit(principal in Team::"x", action, resource);')).not.toEqual([]);
    expect(
      await checkCedarPolicies('permit(principal, action == Action::"tasks.summarize", resource);'),
    ).not.toEqual([]);
    expect(
      await checkCedarPolicies('permit(principal, action == Action::"tasks.summarize", resource);', [
        'summarize',
      ]),
    ).toEqual([]);
    expect(
      await checkCedarPolicies('permit(principal, action, resource) when { context.tokenEstimate > "x" };'),
    ).not.toEqual([]);
    expect(await checkCedarPolicies('this is not cedar')).not.toEqual([]);
  });

  it('loads from the file a config names', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'sluice-cedar-'));
    try {
      await writeFile(join(dir, 'p.cedar'), POLICIES);
      const base = {
        upstreams: [{ name: 'l', kind: 'mock' }],
        models: [{ match: '*', upstream: 'l' }],
        tiers: { free: {} },
      };
      const cfg = ConfigSchema.parse({
        ...base,
        policies: { cedar: 'p.cedar' },
        tasks: { summarize: { model: 'm', system: 's' } },
      });
      const c = await CedarAuthorizer.fromConfig(cfg, dir);
      expect(c?.decide(input()).allow).toBe(true);
      expect(await CedarAuthorizer.fromConfig(ConfigSchema.parse(base), dir)).toBeNull();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
