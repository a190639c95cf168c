/**
 * The detectors were made cheaper per observation (branch abu: state objects with one hidden class,
 * a one-entry cache in RecentSet, evaluations that skip sums no finding can use). None of that may
 * change a finding: every generated scenario family is replayed through the current detectors and
 * through a copy of them from before those changes (reference/), observation by observation, and
 * both must return the same findings in the same order, and answer the engine's queries alike.
 */
import { describe, expect, it } from 'vitest';
// @ts-expect-error: a plain ES module without types (examples/scenarios/generate.mjs)
import { FAMILIES, generate } from '../../../examples/scenarios/generate.mjs';
import { AnomalyDetectors, type Observation } from '../../../src/core/anomaly/detectors.js';
import { fnv, lengthClassOf } from '../../../src/core/anomaly/text.js';
import { lastUserText } from '../../../src/providers/prompt-text.js';
import { AnomalyDetectors as ReferenceDetectors } from './reference/detectors.js';

const T0 = Date.UTC(2026, 0, 1);

type Event =
  | { t: number; kind: 'observe'; o: Observation }
  | { t: number; kind: 'auth'; ip: string; credential: number; userAgent: string | null };

/** A generated trace as the detectors see it (as the gateway and the engine would hand it over). */
function events(family: string, seed: number, duration: number): Event[] {
  const { text } = generate(family, seed, { duration });
  const tenantOf = new Map<string, string>();
  const out: Event[] = [];
  let i = 0;
  for (const line of (text as string).split('\n')) {
    if (!line) continue;
    const l = JSON.parse(line);
    if (l.type === 'key') tenantOf.set(l.name, l.tenant);
    if (l.type !== 'request') continue;
    const t = T0 + l.t * 1000;
    const headers: Record<string, string> = l.headers ?? {};
    if (!l.key || !tenantOf.has(l.key)) {
      out.push({ t, kind: 'auth', ip: l.ip, credential: fnv(l.authorization ?? '') || 1, userAgent: null });
      continue;
    }
    const path: string = l.path;
    const endpoint = path.includes('images')
      ? 'images'
      : path.includes('embeddings')
        ? 'embeddings'
        : path.includes('messages')
          ? 'messages'
          : 'chat';
    const body = l.body ?? {};
    const prompt = endpoint === 'images' ? (body.prompt ?? '') : lastUserText(endpoint, body);
    const raw = ['host', 'localhost', 'authorization', 'Bearer x', 'content-type', 'application/json'];
    for (const [k, v] of Object.entries(headers)) raw.push(k, v);
    raw.push('x-request-id', `r${i}`);
    out.push({
      t,
      kind: 'observe',
      o: {
        requestId: `r${i++}`,
        keyId: l.key,
        tenantId: tenantOf.get(l.key)!,
        ip: l.ip,
        userAgent: headers['user-agent'] ?? null,
        headerNames: [],
        rawHeaders: raw,
        endUser: headers['x-sluice-end-user'] ?? body.user ?? null,
        action:
          endpoint === 'images'
            ? 'images.generate'
            : endpoint === 'embeddings'
              ? 'embeddings.create'
              : 'chat.create',
        endpoint,
        model: body.model ?? null,
        prompt: prompt.length > 2000 ? prompt.slice(0, 2000) : prompt,
        maxTokens: typeof body.max_tokens === 'number' ? body.max_tokens : -1,
        inputTokens: 50,
        outputTokens: l.upstream?.outputTokens ?? 100,
        status: 200,
      },
    });
  }
  return out;
}

function replay(family: string, seed: number, sensitivity: number): number {
  const cur = new AnomalyDetectors({ sensitivity });
  const ref = new ReferenceDetectors({ sensitivity });
  let findings = 0;
  const evs = events(family, seed, 900);
  for (const e of evs) {
    const a = e.kind === 'observe' ? cur.observe(e.o, e.t) : cur.authFailed(e, e.t);
    const b = e.kind === 'observe' ? ref.observe(e.o, e.t) : ref.authFailed(e, e.t);
    const sa = JSON.stringify(a);
    const sb = JSON.stringify(b);
    // (expect only on a difference: a million calls of it would take most of the test's time)
    if (sa !== sb) expect(sa, `${family}/${seed} x${sensitivity} at ${e.t - T0} ms`).toBe(sb);
    findings += a.length;
    if (e.kind === 'observe') {
      const last = [cur.lastTemplate, cur.lastTail, cur.lastNet, cur.lastPublic];
      const lastRef = [ref.lastTemplate, ref.lastTail, ref.lastNet, ref.lastPublic];
      if (JSON.stringify(last) !== JSON.stringify(lastRef)) expect(last).toEqual(lastRef);
    }
  }
  // What the engine and the shared signals ask of the detectors afterwards.
  const end = evs.at(-1)!.t;
  expect(cur.sizes()).toEqual(ref.sizes());
  for (const e of evs.slice(-200)) {
    if (e.kind !== 'observe') continue;
    const { keyId, ip } = e.o;
    expect(cur.localNewNets(keyId, end - 300_000)).toBe(ref.localNewNets(keyId, end - 300_000));
    expect(cur.keyKnownBefore(keyId, end - 600_000)).toBe(ref.keyKnownBefore(keyId, end - 600_000));
    cur.observe(e.o, end);
    ref.observe(e.o, end);
    const net = cur.lastNet;
    for (const t of [cur.lastTemplate, cur.lastTail])
      if (t)
        expect(cur.templateKeysOn(t, net, end - 600_000)).toEqual(ref.templateKeysOn(t, net, end - 600_000));
    expect(ip).toBe(e.o.ip);
  }
  return findings;
}

describe('the detectors decide as their reference copy (before the speed changes)', () => {
  it('class prompt lengths as the chained comparison did', () => {
    const chained = (n: number) => (n < 64 ? 0 : n < 512 ? 1 : n < 4096 ? 2 : 3);
    for (let n = 0; n <= 10_000; n++)
      if (lengthClassOf(n) !== chained(n)) expect(lengthClassOf(n)).toBe(chained(n));
    expect([0, 63, 64, 511, 512, 4095, 4096].map(lengthClassOf)).toEqual([0, 0, 1, 1, 2, 2, 3]);
    for (const n of [Number.NaN, -1, 63.5, 1e9, Number.POSITIVE_INFINITY])
      expect(lengthClassOf(n)).toBe(chained(n));
  });

  it('on every scenario family, finding by finding', () => {
    let findings = 0;
    for (const family of FAMILIES as string[]) findings += replay(family, 61, 1);
    // The comparison means something only if the traces make the detectors find things.
    expect(findings).toBeGreaterThan(20);
  });

  it('at other sensitivities (the thresholds scale with it)', () => {
    let findings = 0;
    for (const family of ['key-sharing', 'distillation', 'end-user-rotation', 'volume-spike'])
      for (const k of [0.25, 3]) findings += replay(family, 62, k);
    expect(findings).toBeGreaterThan(20);
  });
});
