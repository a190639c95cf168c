import { describe, expect, it } from 'vitest';
import { AnomalyDetectors, type Observation } from '../../../src/core/anomaly/detectors.js';

const T0 = Date.UTC(2026, 0, 1);

function obs(i: number, endUser: string): Observation {
  return {
    requestId: `r${i}`,
    keyId: 'k1',
    tenantId: 't1',
    ip: '203.0.113.4',
    userAgent: 'openai-node/4.77.0',
    headerNames: ['user-agent', 'content-type'],
    endUser,
    action: 'chat.create',
    endpoint: 'chat',
    model: 'demo-model',
    prompt: `question ${i}`,
    inputTokens: 10,
    outputTokens: 20,
    status: 200,
  };
}

/** Runs `perSecond` requests a second for `seconds` from `t0`, end users from `who(i)`; returns the rotation findings. */
function run(
  d: AnomalyDetectors,
  t0: number,
  seconds: number,
  perSecond: number,
  who: (i: number) => string,
) {
  const found: string[] = [];
  for (let i = 0; i < seconds * perSecond; i++) {
    for (const f of d.observe(obs(i, who(i)), t0 + (i * 1000) / perSecond))
      if (f.detector === 'end-user-rotation') found.push(f.reason);
  }
  return found;
}

describe('end-user rotation', () => {
  it('flags a key whose few returning end users turn into a stream of ids never seen again', () => {
    const d = new AnomalyDetectors();
    // Ten minutes of ten regular users, then two minutes of throwaway ids at 3/s.
    expect(run(d, T0, 600, 0.5, (i) => `user-${i % 10}`)).toEqual([]);
    expect(run(d, T0 + 600_000, 120, 3, (i) => `anon-${i}`).length).toBeGreaterThan(0);
  });

  it('flags a rotation mixed into the ordinary traffic of the key (the old users keep coming)', () => {
    const d = new AnomalyDetectors();
    expect(run(d, T0, 600, 0.5, (i) => `user-${i % 10}`)).toEqual([]);
    // 2 requests a second: one in five from a regular user, the rest from throwaway ids.
    expect(
      run(d, T0 + 600_000, 120, 2, (i) => (i % 5 === 0 ? `user-${i % 10}` : `anon-${i}`)).length,
    ).toBeGreaterThan(0);
  });

  it('flags ids spent on bursts of two or three requests within a second, not on a launch whose users keep talking', () => {
    // A client that re-uses each throwaway id for a quick burst (seen in traffic written without
    // sight of this detector): every id is "seen again", a second later.
    const d = new AnomalyDetectors();
    expect(run(d, T0, 600, 0.5, (i) => `user-${i % 10}`)).toEqual([]);
    expect(run(d, T0 + 600_000, 120, 3, (i) => `anon-${Math.floor(i / 3)}`).length).toBeGreaterThan(0);
    // The same growth from people who come back to their conversation a minute later: nothing.
    const p = new AnomalyDetectors();
    expect(run(p, T0, 600, 0.5, (i) => `user-${i % 10}`)).toEqual([]);
    // At 3 requests/s, every other request from someone new, the rest from someone first seen 30 s
    // before (or, in the first 30 s, from the regular users).
    const person = (i: number) => (i % 2 === 0 ? `p-${i}` : i >= 91 ? `p-${i - 91}` : `user-${i % 10}`);
    expect(run(p, T0 + 600_000, 180, 3, person)).toEqual([]);
  });

  it('flags a slower rotation (25 new ids a minute) when each id is spent on a burst within 10 s, not a launch whose new users ask once', () => {
    // Ten minutes of ten regular users at 0.5/s; then 75 requests a minute: 25 new ids, 3 requests
    // each within 1.5 s (some ids come back later, as in the blind generators' traffic).
    const burst = (i: number) => {
      const id = Math.floor(i / 3);
      return id % 8 === 0 && i % 3 === 2 ? `user-${id % 10}` : `anon-${id}`;
    };
    const d = new AnomalyDetectors();
    expect(run(d, T0, 600, 0.5, (i) => `user-${i % 10}`)).toEqual([]);
    const found = run(d, T0 + 600_000, 150, 1.25, burst);
    expect(found.length).toBeGreaterThan(0);
    expect(found[0]).toContain('sent all their requests within 10 s');
    // A launch at the same rates: 25 new people a minute who each ask once, the rest regulars.
    const p = new AnomalyDetectors();
    expect(run(p, T0, 600, 0.5, (i) => `user-${i % 10}`)).toEqual([]);
    expect(run(p, T0 + 600_000, 150, 1.25, (i) => (i % 3 === 0 ? `new-${i}` : `user-${i % 10}`))).toEqual([]);
  });

  it('flags 17 new ids a minute when two in five are spent on a burst and none come back, not a launch whose users do', () => {
    // Ten minutes of ten regular users at 0.25/s, who go on; then 17 new ids a minute, ids 0 and 1
    // of every five sent twice within a second, the rest once, never seen again (as the third blind
    // generator rotates: examples/scenarios/independent-c). `back`: the share of new ids that come
    // back 40 s later (a launch's users return; a rotation's do not).
    const scenario = (back: number) => {
      const d = new AnomalyDetectors();
      expect(run(d, T0, 600, 0.25, (i) => `user-${i % 10}`)).toEqual([]);
      const ev: { at: number; id: string }[] = [];
      for (let s = 0; s < 180; s += 4) ev.push({ at: T0 + 600_000 + s * 1000, id: `user-${s % 10}` });
      for (let j = 0; j < 3 * 17; j++) {
        const at = T0 + 600_000 + Math.floor((j * 60_000) / 17) + 500;
        ev.push({ at, id: `anon-${j}` });
        if (j % 5 < 2) ev.push({ at: at + 700, id: `anon-${j}` });
        if (j % 100 < back * 100) ev.push({ at: at + 40_000, id: `anon-${j}` });
      }
      ev.sort((a, b) => a.at - b.at);
      const found: string[] = [];
      ev.forEach((e, i) => {
        for (const f of d.observe(obs(i, e.id), e.at))
          if (f.detector === 'end-user-rotation') found.push(f.reason);
      });
      return found;
    };
    const found = scenario(0);
    expect(found.length).toBeGreaterThan(0);
    expect(found[0]).toContain('sent all their requests within 10 s');
    // The same new ids, a fifth of them back 40 s later: people, not a script.
    expect(scenario(0.2)).toEqual([]);
  });

  it('flags a slow rotation (12 new ids a minute, half spent on a burst), not a launch whose users ask once', () => {
    // Ten minutes of ten regular users at 0.25/s, who go on; then 12 new ids a minute, every other
    // one sent twice within a second, never seen again (the blind generators' slowest rotations).
    // `burst`: whether those second requests are sent; without them, ids used once, 12 a minute, a
    // fifth back 40 s later: a small launch.
    const scenario = (burst: boolean) => {
      const d = new AnomalyDetectors();
      expect(run(d, T0, 600, 0.25, (i) => `user-${i % 10}`)).toEqual([]);
      const ev: { at: number; id: string }[] = [];
      for (let s = 0; s < 240; s += 4) ev.push({ at: T0 + 600_000 + s * 1000, id: `user-${s % 10}` });
      for (let j = 0; j < 48; j++) {
        const at = T0 + 600_000 + j * 5000 + 500;
        ev.push({ at, id: `anon-${j}` });
        if (burst && j % 2 === 0) ev.push({ at: at + 800, id: `anon-${j}` });
        if (!burst && j % 5 === 0) ev.push({ at: at + 40_000, id: `anon-${j}` });
      }
      ev.sort((a, b) => a.at - b.at);
      const found: number[] = [];
      ev.forEach((e, i) => {
        for (const f of d.observe(obs(i, e.id), e.at))
          if (f.detector === 'end-user-rotation') found.push(e.at - T0 - 600_000);
      });
      return found;
    };
    const found = scenario(true);
    expect(found.length).toBeGreaterThan(0);
    // Judged once 20 new ids of the last 3 minutes (20 s ago at the latest) can be: 20 x 5 s + 20 s
    // (115.5 s).
    expect(found[0]).toBeLessThanOrEqual(120_000);
    expect(scenario(false)).toEqual([]);
  });

  it('dates end users by when the request was sent, not when its answer ended', () => {
    // 75 requests a minute: 25 new ids, 3 requests each sent within 1.6 s, answered 1-14 s later
    // (observations come in answer order). By answer time, most ids are "seen again" 10 s later.
    const rotate = (withSentAt: boolean) => {
      const d = new AnomalyDetectors();
      expect(run(d, T0, 600, 0.5, (i) => `user-${i % 10}`)).toEqual([]);
      const answers: { at: number; sent: number; id: string; i: number }[] = [];
      for (let i = 0; i < 190; i++) {
        const sent = T0 + 600_000 + i * 800;
        answers.push({
          at: sent + 1000 + ((i * 7919) % 13) * 1000,
          sent,
          id: `anon-${Math.floor(i / 3)}`,
          i,
        });
      }
      answers.sort((x, y) => x.at - y.at);
      const found: string[] = [];
      for (const a of answers)
        for (const f of d.observe({ ...obs(a.i, a.id), ...(withSentAt ? { sentAt: a.sent } : {}) }, a.at))
          if (f.detector === 'end-user-rotation') found.push(f.reason);
      return found;
    };
    expect(rotate(true).length).toBeGreaterThan(0);
    expect(rotate(false)).toEqual([]);
  });

  it('does not flag a launch or a product whose customers are mostly new: that has always been its pattern', () => {
    // A support bot with 3,000 customers at 1.5 requests/s: nearly every end user is new for minutes.
    const d = new AnomalyDetectors();
    let x = 7;
    const customer = () => {
      x = (x * 1103515245 + 12345) % 2147483648;
      return `cust-${x % 3000}`;
    };
    expect(run(d, T0, 900, 1.5, customer)).toEqual([]);
    // A brand-new key that starts with thousands of distinct end users (a launch).
    expect(run(new AnomalyDetectors(), T0, 300, 3, (i) => `new-${i}`)).toEqual([]);
  });
});
