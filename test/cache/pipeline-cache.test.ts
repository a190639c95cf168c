/**
 * The cache stage in process (createGateway().inject(), memory cache store, mock upstream wrapped
 * to count its calls, fake clock): hits, misses, TTL on the fake clock, tenants, limits, the audit
 * and usage records of a hit, and streamed hits replayed byte for byte.
 */
import { describe, expect, it } from 'vitest';
import { refuse } from '../../src/core/errors.js';
import { principalOf } from '../../src/gateway/auth.js';
import { MemoryCacheStore } from '../../src/stores/cache/memory-cache-store.js';
import { auth, BASE_YAML, harness, KEY } from '../gateway/pipeline/support.js';

const BETA_KEY = `sk-sluice-key000000009-${'b'.repeat(32)}`;
const YAML = `${BASE_YAML}
cache:
  enabled: true
  ttl: 10s
`;

function setup(yaml = YAML, maxBytes = 1 << 20) {
  const h = harness({ yaml });
  const cache = new MemoryCacheStore({ clock: h.clock, maxBytes });
  h.deps.cache = cache;
  const outcomes: string[] = [];
  h.deps.onCache = (_t, what) => void outcomes.push(what);
  const beta = principalOf({
    id: 'key000000009',
    hash: 'x',
    tenantId: 'beta',
    tier: 'default',
    createdAt: 0,
  });
  const first = h.deps.auth.authenticate;
  h.deps.auth = {
    authenticate: async (presented, ...rest) =>
      presented === BETA_KEY
        ? beta
        : presented === KEY
          ? first(presented, ...rest)
          : refuse('SLUICE_INVALID_KEY'),
  };
  const upstream = h.deps.upstreams.get('mock')!;
  const call = upstream.call.bind(upstream);
  const counter = { calls: 0 };
  upstream.call = (r) => {
    counter.calls++;
    return call(r);
  };
  const send = async (payload: Record<string, unknown>, headers: Record<string, string> = auth) => {
    const res = await h.app.inject({ method: 'POST', url: '/v1/chat/completions', headers, payload });
    await h.settled(res.headers['x-request-id'] as string);
    return res;
  };
  return { h, cache, counter, send, outcomes };
}

const det = { model: 'mock-chat', temperature: 0, messages: [{ role: 'user', content: 'hi' }] };

describe('cache stage', () => {
  it('a second identical deterministic request is a hit: one upstream call, same body, age, audited and recorded as a hit', async () => {
    const { h, counter, send, outcomes } = setup();
    const a = await send(det);
    expect(a.statusCode).toBe(200);
    expect(a.headers['x-sluice-cache']).toBe('miss');
    h.clock.t += 3500;
    const b = await send({ messages: det.messages, temperature: 0, model: 'mock-chat' }); // key order differs
    expect(b.statusCode).toBe(200);
    expect(b.headers['x-sluice-cache']).toBe('hit');
    expect(b.headers.age).toBe('3');
    expect(b.body).toBe(a.body);
    expect(counter.calls).toBe(1);
    expect(outcomes).toEqual(['miss', 'stored', 'hit']);
    expect(h.audit.map((e) => e.reason)).toEqual(['ok', 'cache_hit']);
    const saved = h.usage[0]!.inputTokens + h.usage[0]!.outputTokens;
    expect(saved).toBeGreaterThan(0);
    expect(h.audit[1]!.details).toMatchObject({ cache: 'hit', ageMs: 3500, savedTokens: saved });
    expect(h.audit[0]!.details).toMatchObject({ cache: 'miss' });
    expect(h.usage[1]).toMatchObject({ upstream: 'cache', inputTokens: 0, outputTokens: 0, usd: 0 });
  });

  it('a hit counts one request against the limits (rpm 3: the fourth is refused)', async () => {
    const { counter, send } = setup();
    const codes: number[] = [];
    for (let i = 0; i < 4; i++) codes.push((await send(det)).statusCode);
    expect(codes).toEqual([200, 200, 200, 429]);
    expect(counter.calls).toBe(1);
  });

  it('entries expire after the TTL on the fake clock', async () => {
    const { h, counter, send } = setup();
    await send(det);
    h.clock.t += 9_999;
    expect((await send(det)).headers['x-sluice-cache']).toBe('hit');
    h.clock.t += 1;
    expect((await send(det)).headers['x-sluice-cache']).toBe('miss');
    expect(counter.calls).toBe(2);
  });

  it('two tenants never share an entry', async () => {
    const { counter, send } = setup();
    await send(det);
    const beta = { authorization: `Bearer ${BETA_KEY}` };
    expect((await send(det, beta)).headers['x-sluice-cache']).toBe('miss');
    expect((await send(det, beta)).headers['x-sluice-cache']).toBe('hit');
    expect(counter.calls).toBe(2);
  });

  it('non-deterministic, opted-out and no-store requests go upstream every time', async () => {
    const { counter, send } = setup(YAML.replace('requests: 3,', 'requests: 100,'));
    const free = { model: 'mock-chat', messages: det.messages };
    expect((await send(free)).headers['x-sluice-cache']).toBe('bypass');
    await send(free);
    await send(det, { ...auth, 'x-sluice-cache': 'off' });
    await send(det, { ...auth, 'cache-control': 'no-store' });
    expect(counter.calls).toBe(4);
    // and opt-in makes a non-deterministic request cacheable
    await send(free, { ...auth, 'x-sluice-cache': 'on' });
    expect((await send(free, { ...auth, 'x-sluice-cache': 'on' })).headers['x-sluice-cache']).toBe('hit');
    expect(counter.calls).toBe(5);
  });

  it('a streamed answer is stored as its byte sequence and replayed as the same stream', async () => {
    const { counter, send } = setup();
    const a = await send({ ...det, stream: true });
    expect(a.body).toContain('data: [DONE]');
    const b = await send({ ...det, stream: true });
    expect(b.headers['x-sluice-cache']).toBe('hit');
    expect(b.headers['content-type']).toContain('text/event-stream');
    expect(b.body).toBe(a.body);
    // stream and non-stream are different entries
    expect((await send(det)).headers['x-sluice-cache']).toBe('miss');
    expect(counter.calls).toBe(2);
  });

  it('the memory store stays under maxBytes', async () => {
    const { cache, send } = setup(YAML.replace('requests: 3,', 'requests: 100,'), 4000);
    for (let i = 0; i < 20; i++)
      await send({ ...det, messages: [{ role: 'user', content: `question ${i}` }] });
    expect(cache.size).toBeGreaterThan(0);
    expect(cache.bytes).toBeLessThanOrEqual(4000);
  });

  it('with the cache disabled in the policy, nothing is cached and no header is sent', async () => {
    const { counter, send } = setup(BASE_YAML);
    const a = await send(det);
    await send(det);
    expect(a.headers['x-sluice-cache']).toBeUndefined();
    expect(counter.calls).toBe(2);
  });
});
