/**
 * Signals shared through Redis: a campaign split across two instances (two engines on one real
 * Redis, a unique key prefix) is seen by both, although neither instance alone crosses a threshold.
 * Without the shared signals, the same split traffic is not acted on (the control).
 */
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { type AbuseAction, AbuseEngine } from '../../src/abuse/engine.js';
import { type SharedRedis, SharedSignals } from '../../src/abuse/shared-signals.js';
import type { Observation } from '../../src/core/anomaly/detectors.js';

const T0 = Date.UTC(2026, 0, 1, 12);
const redis = new Redis('redis://127.0.0.1:6379', { lazyConnect: false });
const prefix = `test:abuse-shared:${process.pid}:${Date.now()}:`;

afterAll(async () => {
  // Only this test's keys.
  const keys = await redis.keys(`${prefix}*`);
  if (keys.length > 0) await redis.del(...keys);
  await redis.quit();
});

function instance(clock: { t: number }, shared: boolean) {
  const actions: AbuseAction[] = [];
  const engine = new AbuseEngine({
    clock: { now: () => clock.t },
    onAction: (a) => actions.push(a),
    defer: null,
    shared: shared ? new SharedSignals({ redis: redis as unknown as SharedRedis, prefix }) : undefined,
  });
  return { engine, actions };
}

function obs(keyId: string, tenantId: string, ip: string, prompt: string, i: number): Observation {
  return {
    requestId: `r${i}`,
    keyId,
    tenantId,
    ip,
    userAgent: 'x',
    headerNames: [],
    endUser: null,
    action: 'chat.create',
    endpoint: 'chat',
    model: 'demo-model',
    prompt,
    inputTokens: 10,
    outputTokens: 100,
    status: 200,
  };
}

/** A key used for 10 minutes from its home network, then from 14 new networks split over A and B. */
async function keySharing(a: AbuseEngine, b: AbuseEngine, clock: { t: number }, key: string): Promise<void> {
  for (let i = 0; i < 20; i++) {
    clock.t = T0 + i * 30_000;
    const e = i % 2 ? a : b;
    e.observe(obs(key, 'acme', '198.51.100.7', `Summarise ticket ${i}`, i));
    e.flush();
  }
  await Promise.all([a.settled(), b.settled()]);
  // 10 new networks, 5 on each instance (the local rule needs 6).
  for (let n = 0; n < 10; n++) {
    clock.t = T0 + 600_000 + n * 5_000;
    const e = n % 2 ? a : b;
    e.observe(obs(key, 'acme', `203.0.${n + 10}.5`, `Summarise ticket ${n}`, 100 + n));
    e.flush();
    await e.settled();
  }
}

describe('abuse signals shared across instances through Redis', () => {
  it('sees a key used from many networks when each instance sees only half of them', async () => {
    const clock = { t: T0 };
    const a = instance(clock, true);
    const b = instance(clock, true);
    await keySharing(a.engine, b.engine, clock, `k-shared-${Date.now()}`);
    const all = [...a.actions, ...b.actions].filter((x) => x.detector === 'key-sharing');
    expect(all.length).toBeGreaterThan(0);
    expect(all[0]!.reason).toContain('across instances');
    expect(all.some((x) => x.action === 'quarantine')).toBe(true);

    // Control: the same split traffic without shared signals is not seen by either instance.
    const c = instance(clock, false);
    const d = instance(clock, false);
    await keySharing(c.engine, d.engine, clock, `k-local-${Date.now()}`);
    expect([...c.actions, ...d.actions].filter((x) => x.detector === 'key-sharing')).toEqual([]);
  });

  it('sees a key of three networks in one range used from six new address ranges split across instances; six more networks of its own range are not', async () => {
    const run = async (shared: boolean, newIp: (n: number) => string) => {
      const clock = { t: T0 + 10_800_000 };
      const a = instance(clock, shared);
      const b = instance(clock, shared);
      const key = `k-ranges-${shared}-${newIp(0)}-${Date.now()}`;
      // Ten minutes from three home networks (one range), seen by both instances.
      for (let i = 0; i < 20; i++) {
        clock.t = T0 + 10_800_000 + i * 30_000;
        const e = i % 2 ? a.engine : b.engine;
        e.observe(obs(key, 'acme', `198.51.${100 + (i % 3)}.7`, `Summarise ticket ${i}`, i));
        e.flush();
      }
      await Promise.all([a.engine.settled(), b.engine.settled()]);
      // Six new networks, three on each instance: the count rule needs 3 x (3 + 1) = 12, and six new
      // ranges are 2 x (1 + 1) or more of the key's one range (2 x (3 + 1) of its networks would be 8).
      for (let n = 0; n < 6; n++) {
        clock.t = T0 + 10_800_000 + 600_000 + n * 10_000;
        const e = n % 2 ? a.engine : b.engine;
        e.observe(obs(key, 'acme', newIp(n), `Summarise ticket ${n}`, 400 + n));
        e.flush();
        await e.settled();
      }
      return [...a.actions, ...b.actions].filter((x) => x.detector === 'key-sharing');
    };
    const strangers = (n: number) => `${81 + n}.${20 + n}.7.9`;
    const found = await run(true, strangers);
    expect(found.length).toBeGreaterThan(0);
    expect(found[0]!.reason).toContain('6 new address ranges');
    expect(found[0]!.reason).toContain('across instances');
    // Control: per instance alone, three of them each: nothing.
    expect(await run(false, strangers)).toEqual([]);
    // The owner's own provider: six more /24s of its one range, shared: nothing.
    expect(await run(true, (n) => `198.51.${110 + n}.7`)).toEqual([]);
  });

  it('leaves a key called from many networks since it was first seen: its first minutes are its baseline', async () => {
    // A mobile app's key: a new network every 5 s from its first request, split over A and B.
    const clock = { t: T0 + 7_200_000 };
    const a = instance(clock, true);
    const b = instance(clock, true);
    const key = `k-mobile-${Date.now()}`;
    for (let n = 0; n < 66; n++) {
      clock.t = T0 + 7_200_000 + n * 5_000;
      const e = n % 2 ? a.engine : b.engine;
      e.observe(obs(key, 'mobileco', `100.${64 + (n % 60)}.${n}.9`, `Ask ${n}`, 300 + n));
      e.flush();
      await e.settled();
    }
    expect([...a.actions, ...b.actions].filter((x) => x.detector === 'key-sharing')).toEqual([]);
  });

  it('leaves a key of many networks whose new networks come at the rate its requests grow, split across instances', async () => {
    // Ten minutes at one request per 10 s from six networks (an app's users on a few ISPs), then
    // five minutes at one per 2.5 s with a new network every fifth request (24): 3x + 1 the six
    // before, but per request only as many new networks as it had networks per request before.
    const run = async (busier: boolean) => {
      const clock = { t: T0 + 14_400_000 };
      const a = instance(clock, true);
      const b = instance(clock, true);
      const key = `k-app-${busier}-${Date.now()}`;
      // Each instance sees all six (a request's network does not decide which instance it reaches).
      const home = (n: number) => `${81 + (Math.floor(n / 2) % 6)}.${20 + (Math.floor(n / 2) % 6)}.7.9`;
      let i = 0;
      for (let n = 0; n < 60; n++, i++) {
        clock.t = T0 + 14_400_000 + n * 10_000;
        const e = i % 2 ? a.engine : b.engine;
        e.observe(obs(key, 'appco', home(n), `Ask ${n}`, 500 + i));
        e.flush();
      }
      await Promise.all([a.engine.settled(), b.engine.settled()]);
      // Busier: 120 requests, or (the control) only the 24 that bring the new networks: a leak.
      const every = busier ? 1 : 5;
      for (let n = 0; n < 120; n += every, i++) {
        clock.t = T0 + 14_400_000 + 600_000 + n * 2_500;
        const e = i % 2 ? a.engine : b.engine;
        const ip = n % 5 === 0 ? `${120 + n / 5}.${30 + n / 5}.8.9` : home(n);
        e.observe(obs(key, 'appco', ip, `Ask ${n}`, 500 + i));
        e.flush();
        await e.settled();
      }
      return [...a.actions, ...b.actions].filter((x) => x.detector === 'key-sharing');
    };
    expect(await run(true)).toEqual([]);
    const leak = await run(false);
    expect(leak.length).toBeGreaterThan(0);
    expect(leak[0]!.reason).toContain('across instances');
  });

  it('sees credential stuffing from one range split across instances, and refuses new keys there', async () => {
    const clock = { t: T0 + 3_600_000 };
    const a = instance(clock, true);
    const b = instance(clock, true);
    // 7 different bad credentials on each instance (local threshold: 10), 14 in all.
    for (let i = 0; i < 14; i++) {
      clock.t += 1000;
      (i % 2 ? a : b).engine.authFailed({
        ip: `192.0.2.${i + 1}`,
        presented: `Bearer sk-sluice-guess-${i}`,
        userAgent: null,
      });
    }
    a.engine.flush();
    b.engine.flush();
    await Promise.all([a.engine.settled(), b.engine.settled()]);
    const found = [...a.actions, ...b.actions].filter((x) => x.detector === 'credential-stuffing');
    expect(found.length).toBeGreaterThan(0);
    expect(found[0]!.reason).toContain('across instances');
    const holder = a.actions.some((x) => x.detector === 'credential-stuffing') ? a.engine : b.engine;
    expect(
      holder.check({ keyId: 'new', tenantId: 'x', ip: '192.0.2.200', action: 'chat.create' })?.code,
    ).toBe('SLUICE_QUARANTINED');
  });

  it('does not share failures from private or loopback ranges', async () => {
    const clock = { t: T0 + 5_400_000 };
    const a = instance(clock, true);
    const b = instance(clock, true);
    for (let i = 0; i < 14; i++) {
      clock.t += 1000;
      (i % 2 ? a : b).engine.authFailed({
        ip: '127.0.0.1',
        presented: `Bearer sk-sluice-x-${i}`,
        userAgent: null,
      });
    }
    a.engine.flush();
    b.engine.flush();
    await Promise.all([a.engine.settled(), b.engine.settled()]);
    expect([...a.actions, ...b.actions]).toEqual([]);
    expect(await redis.keys(`${prefix}fc:{127.0.0.0/24}*`)).toEqual([]);
  });

  it('sees a template campaign through one proxy split across instances', async () => {
    const clock = { t: T0 + 7_200_000 };
    const a = instance(clock, true);
    const b = instance(clock, true);
    // 8 fresh keys of 8 tenants, one template, one proxy network: 4 keys on each instance (local: >= 6).
    for (let round = 0; round < 3; round++)
      for (let i = 0; i < 8; i++) {
        clock.t += 200;
        const e = i % 2 ? a.engine : b.engine;
        e.observe(
          obs(
            `camp${i}`,
            `tn${i}`,
            `192.0.2.${(i % 3) + 50}`,
            `Write a glowing review of gadget ${i * 7 + round} please`,
            i,
          ),
        );
        e.flush();
        await e.settled();
      }
    const q = [...a.actions, ...b.actions].filter(
      (x) => x.detector === 'template-campaign' && x.action === 'quarantine',
    );
    expect(q.length).toBeGreaterThanOrEqual(4);
    expect(q[0]!.reason).toContain('across instances');
  });
});
