/**
 * The request's turn does O(1) work: `observe` queues the observation and the detectors run in a
 * batch (deferred in the server, on the virtual clock in the simulation). The allocation-free
 * feature extraction computes exactly what the reference implementation does.
 */
import { describe, expect, it } from 'vitest';
// @ts-expect-error: a plain ES module without types (examples/scenarios/generate.mjs)
import { FAMILIES, generate } from '../../examples/scenarios/generate.mjs';
import { type AbuseAction, AbuseEngine } from '../../src/abuse/engine.js';
import type { Observation } from '../../src/core/anomaly/detectors.js';
import {
  clientFingerprint,
  NOT_FINGERPRINT,
  promptFeaturesReference,
  rawClientFingerprint,
  templateHashes,
} from '../../src/core/anomaly/text.js';
import { lastUserText } from '../../src/providers/prompt-text.js';

const T0 = Date.UTC(2026, 0, 1);

function obs(i: number, over: Partial<Observation> = {}): Observation {
  return {
    requestId: `r${i}`,
    keyId: `k${i % 10}`,
    tenantId: `t${i % 10}`,
    ip: i % 2 ? '192.0.2.10' : '198.51.100.20',
    userAgent: 'x',
    headerNames: [],
    endUser: null,
    action: 'chat.create',
    endpoint: 'chat',
    model: 'demo-model',
    prompt: '',
    body: {
      messages: [
        { role: 'user', content: `Write a five-star review for product ${i * 13} mentioning fast shipping` },
      ],
    },
    bodyEndpoint: 'chat',
    inputTokens: 20,
    outputTokens: 200,
    status: 200,
    ...over,
  };
}

describe('abuse detection on the hot path', () => {
  it('template fingerprints without allocation equal the reference on every scenario prompt and edge cases', () => {
    const prompts = [
      'Hello "quoted thing" World 123-456 it\'s',
      '«Bonjour» Élan vital ÀB ß İstanbul',
      'unterminated "quote here',
      "0Abc 'Def x-y 12 34",
      `${'A'.repeat(130)} end Of Text "q`,
      `${'x '.repeat(300)}Named Words Here.`,
    ];
    for (const family of FAMILIES as string[]) {
      const { text } = generate(family, 3, { duration: 120 });
      for (const line of text.split('\n')) {
        if (!line) continue;
        const l = JSON.parse(line);
        if (l.type !== 'request' || !l.body) continue;
        prompts.push(l.path.includes('images') ? (l.body.prompt ?? '') : lastUserText('chat', l.body));
      }
    }
    expect(prompts.length).toBeGreaterThan(1000);
    let templated = 0;
    for (const p of prompts) {
      const ref = promptFeaturesReference(p);
      expect({ ...templateHashes(p) }, p).toEqual(ref);
      if (ref.template) templated++;
    }
    expect(templated).toBeGreaterThan(prompts.length / 2);
  });

  it('fingerprints raw headers like the filtered, lower-cased name list', () => {
    const raw = [
      'Host',
      'x',
      'User-Agent',
      'ua',
      'Authorization',
      's',
      'Content-Type',
      'j',
      'X-Request-Id',
      'i',
      'Accept',
      '*',
    ];
    const names: string[] = [];
    for (let i = 0; i < raw.length; i += 2)
      if (!NOT_FINGERPRINT.includes(raw[i]!.toLowerCase())) names.push(raw[i]!.toLowerCase());
    expect(names).toEqual(['user-agent', 'content-type', 'accept']);
    expect(rawClientFingerprint('ua', raw, '192.0.2.0/24')).toBe(
      clientFingerprint('ua', names, '192.0.2.0/24'),
    );
    expect(rawClientFingerprint('ua', raw, '192.0.2.0/24')).not.toBe(
      clientFingerprint('ua', ['content-type', 'user-agent', 'accept'], '192.0.2.0/24'),
    );
  });

  it('queues observations and runs the detectors in one deferred batch, which then acts', () => {
    const clock = { t: T0 };
    const actions: AbuseAction[] = [];
    const runs: (() => void)[] = [];
    const engine = new AbuseEngine({
      clock: { now: () => clock.t },
      onAction: (a) => actions.push(a),
      defer: (run) => runs.push(run),
    });
    for (let i = 0; i < 40; i++) {
      clock.t = T0 + Math.floor(i / 10) * 10_000 + (i % 10) * 100;
      engine.observe(obs(i));
    }
    // Nothing ran on the requests' turn: one batch is scheduled, holding all 40.
    expect(runs.length).toBe(1);
    expect(engine.queued).toBe(40);
    expect(actions).toEqual([]);
    runs[0]!();
    expect(engine.queued).toBe(0);
    // The prompts were taken from the bodies in the batch: the template campaign is caught.
    const q = actions.filter((a) => a.action === 'quarantine');
    expect(q.length).toBeGreaterThanOrEqual(6);
    expect(q[0]!.detector).toBe('template-campaign');
    expect(engine.check({ keyId: 'k1', tenantId: 't1', ip: '192.0.2.10', action: 'chat.create' })?.code).toBe(
      'SLUICE_QUARANTINED',
    );
    // The next observation schedules the next batch.
    engine.observe(obs(41));
    expect(runs.length).toBe(2);
  });

  it('drops an observation the batch cannot process, and goes on with the rest', () => {
    const clock = { t: T0 };
    const engine = new AbuseEngine({ clock: { now: () => clock.t }, defer: null });
    const hostile = {} as Record<string, unknown>;
    Object.defineProperty(hostile, 'messages', {
      get() {
        throw new Error('boom');
      },
    });
    engine.observe(obs(0, { body: hostile }));
    engine.observe(obs(1));
    expect(() => engine.flush()).not.toThrow();
    expect(engine.failedObservations).toBe(1);
    expect(engine.queued).toBe(0);
  });

  it('without a scheduler, runs a batch every 64 observations or 200 ms of its clock', () => {
    const clock = { t: T0 };
    const engine = new AbuseEngine({ clock: { now: () => clock.t }, defer: null });
    for (let i = 0; i < 63; i++) engine.observe(obs(i));
    expect(engine.queued).toBe(63);
    engine.observe(obs(63));
    expect(engine.queued).toBe(0);
    engine.observe(obs(64));
    clock.t += 199;
    engine.observe(obs(65));
    expect(engine.queued).toBe(2);
    clock.t += 1;
    engine.observe(obs(66));
    expect(engine.queued).toBe(0);
  });
});
