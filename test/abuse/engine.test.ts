import { describe, expect, it } from 'vitest';
import { type AbuseAction, AbuseEngine } from '../../src/abuse/engine.js';
import { AbuseSchema } from '../../src/abuse/policy.js';
import type { Observation } from '../../src/core/anomaly/detectors.js';
import { publicMessage } from '../../src/core/errors.js';

const T0 = Date.UTC(2026, 0, 1);

function campaign(engine: AbuseEngine, clock: { t: number }, prefix = 'k') {
  for (let round = 0; round < 4; round++)
    for (let i = 0; i < 10; i++) {
      clock.t = T0 + round * 10_000 + i * 100;
      const o: Observation = {
        requestId: `r${round}-${i}`,
        keyId: `${prefix}${i}`,
        tenantId: `t${i}`,
        ip: i % 2 ? '192.0.2.10' : '198.51.100.20',
        userAgent: 'x',
        headerNames: [],
        endUser: null,
        action: 'chat.create',
        endpoint: 'chat',
        model: 'demo-model',
        prompt: `Write a five-star review for product ${i * 13 + round} mentioning fast shipping`,
        inputTokens: 20,
        outputTokens: 200,
        status: 200,
      };
      engine.observe(o);
    }
  // Detection runs in batches off the request's turn; a test takes the batch at once.
  engine.flush();
}

describe('abuse engine', () => {
  it('quarantines a campaign capability with a plain message, leaves other capabilities alone, and releases', () => {
    const clock = { t: T0 };
    const actions: AbuseAction[] = [];
    const engine = new AbuseEngine({ clock: { now: () => clock.t }, onAction: (a) => actions.push(a) });
    campaign(engine, clock);
    const q = actions.filter((a) => a.action === 'quarantine');
    expect(q.length).toBeGreaterThanOrEqual(6);
    // 1. The quarantined capability is refused, with the capability, category, case id and appeal named.
    const r = engine.check({ keyId: 'k1', tenantId: 't1', ip: '192.0.2.10', action: 'chat.create' });
    expect(r?.code).toBe('SLUICE_QUARANTINED');
    const msg = publicMessage(r!);
    expect(msg).toContain('chat.create');
    expect(msg).toContain(q[0]!.caseId);
    expect(msg).toContain('appeal');
    expect(msg).not.toContain('template');
    // 2. Another capability still works.
    expect(
      engine.check({ keyId: 'k1', tenantId: 't1', ip: '192.0.2.10', action: 'embeddings.create' }),
    ).toBeNull();
    // 3. What /sluice/v1/me would show.
    expect(engine.pausedFor('k1', 't1')[0]).toMatchObject({
      capability: 'chat.create',
      caseId: q[0]!.caseId,
    });
    // 4. Release restores access, is an action, and is idempotent.
    expect(engine.release(q[0]!.caseId, 'alice', 'customer explained')).toBe(true);
    expect(engine.release(q[0]!.caseId, 'alice')).toBe(true);
    expect(engine.check({ keyId: 'k1', tenantId: 't1', ip: '192.0.2.10', action: 'chat.create' })).toBeNull();
    expect(actions.filter((a) => a.action === 'release').length).toBe(1);
  });

  it('expires an unreviewed quarantine after quarantineFor', () => {
    const clock = { t: T0 };
    const engine = new AbuseEngine({
      clock: { now: () => clock.t },
      config: AbuseSchema.parse({ quarantineFor: '1h' }),
    });
    campaign(engine, clock);
    expect(
      engine.check({ keyId: 'k1', tenantId: 't1', ip: '192.0.2.10', action: 'chat.create' }),
    ).not.toBeNull();
    clock.t += 3_600_000 + 1;
    expect(engine.check({ keyId: 'k1', tenantId: 't1', ip: '192.0.2.10', action: 'chat.create' })).toBeNull();
    expect(engine.listCases({ status: 'expired' }).length).toBeGreaterThan(0);
  });

  it('in shadow mode only flags, and exempt tenants are never acted on', () => {
    const clock = { t: T0 };
    const actions: AbuseAction[] = [];
    const engine = new AbuseEngine({
      clock: { now: () => clock.t },
      onAction: (a) => actions.push(a),
      config: AbuseSchema.parse({ detectors: { 'template-campaign': { mode: 'shadow' } } }),
    });
    campaign(engine, clock);
    expect(actions.some((a) => a.detector === 'template-campaign' && a.action === 'flag' && a.shadow)).toBe(
      true,
    );
    expect(engine.check({ keyId: 'k1', tenantId: 't1', ip: '192.0.2.10', action: 'chat.create' })).toBeNull();

    const off: AbuseAction[] = [];
    const disabled = new AbuseEngine({
      clock: { now: () => clock.t },
      onAction: (a) => off.push(a),
      config: AbuseSchema.parse({ enabled: false }),
    });
    campaign(disabled, clock);
    expect(off).toEqual([]);
  });

  it('quarantines a stuffing range for unknown keys but not for keys already in use there', () => {
    const clock = { t: T0 };
    const engine = new AbuseEngine({ clock: { now: () => clock.t } });
    // 1. A known key is in use from the range before the attack.
    engine.observe({
      requestId: 'a',
      keyId: 'good',
      tenantId: 'acme',
      ip: '203.0.113.50',
      userAgent: null,
      headerNames: [],
      endUser: null,
      action: 'chat.create',
      endpoint: 'chat',
      model: 'm',
      prompt: 'hi',
      inputTokens: 1,
      outputTokens: 1,
      status: 200,
    });
    engine.flush();
    // 2. Fifteen different bad credentials from the range.
    for (let i = 0; i < 15; i++) {
      clock.t += 1000;
      engine.authFailed({ ip: `203.0.113.${i}`, presented: `Bearer sk-sluice-${i}`, userAgent: null });
    }
    expect(
      engine.check({ keyId: 'good', tenantId: 'acme', ip: '203.0.113.50', action: 'chat.create' }),
    ).toBeNull();
    expect(
      engine.check({ keyId: 'guessed', tenantId: 'x', ip: '203.0.113.9', action: 'chat.create' })?.code,
    ).toBe('SLUICE_QUARANTINED');
  });
});

describe('abuse engine: a campaign of many keys', () => {
  // 1,200 keys of 1,200 tenants behind one /24, one client, one prompt template, one request each:
  // a campaign whose finding names every member on every request. Each member is told of once, and
  // the case lists each related key once, in the order first seen, up to 1,000 (the evidence cap).
  it('tells each member once and lists related keys once each, capped at 1,000', () => {
    const clock = { t: T0 };
    const actions: AbuseAction[] = [];
    const engine = new AbuseEngine({ clock: { now: () => clock.t }, onAction: (a) => actions.push(a) });
    const topics = ['invoices', 'a poem', 'sql joins', 'the weather', 'my cat', 'tax forms', 'rust traits'];
    for (let i = 0; i < 1200; i++) {
      clock.t = T0 + i * 200;
      engine.observe({
        requestId: `r${i}`,
        keyId: `key${i}`,
        tenantId: `tenant${i}`,
        ip: `198.51.100.${1 + (i % 200)}`,
        userAgent: 'scraper-x/1.0',
        headerNames: ['host', 'user-agent', 'x-client-build', 'content-type'],
        endUser: null,
        action: 'chat.create',
        endpoint: 'chat',
        model: 'demo-model',
        prompt: `Question ${i}: tell me something about ${topics[i % topics.length]} (${(i * 7919) % 1000})`,
        inputTokens: 20,
        outputTokens: 100,
        status: 200,
      });
      if (i % 10 === 9) engine.flush();
    }
    engine.flush();
    const cases = engine.listCases();
    expect(cases.length).toBeGreaterThan(0);
    const big = cases.reduce((a, b) =>
      b.evidence.related.keys.length > a.evidence.related.keys.length ? b : a,
    );
    const listed = big.evidence.related.keys;
    expect(listed.length).toBe(1000);
    expect(new Set(listed).size).toBe(listed.length);
    // First-seen order: the keys were first seen in index order.
    const idx = listed.map((k) => Number(k.slice(3)));
    expect(idx.every((v, j) => j === 0 || v > idx[j - 1]!)).toBe(true);
    // Each member key is told of once for this case, though later findings list it again.
    const told = actions.filter((a) => a.caseId === big.id && a.keyId !== undefined).map((a) => a.keyId!);
    expect(told.length).toBeGreaterThan(1000);
    expect(new Set(told).size).toBe(told.length);
  });
});
