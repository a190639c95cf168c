import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UpstreamSchema } from '../../src/config/schema.js';
import type { Upstream, UpstreamRequest, UpstreamResponse } from '../../src/core/ports.js';
import { UpstreamError } from '../../src/core/ports.js';
import { CircuitBreaker } from '../../src/providers/circuit-breaker.js';
import { createUpstream, GuardedUpstream, MockUpstream } from '../../src/providers/index.js';
import { closedPort, readAll, type Stub, startStub } from './stub-server.js';

function fakeClock() {
  let t = 5_000_000;
  return { now: () => t, advance: (ms: number) => (t += ms) };
}

function req(signal = new AbortController().signal): UpstreamRequest {
  return {
    endpoint: 'chat',
    body: { model: 'm', messages: [] },
    stream: false,
    signal,
    requestId: 'r',
    headers: {},
  };
}

const okResponse = (status = 200): UpstreamResponse => ({
  status,
  headers: {},
  rateHeaders: {},
  body: new Uint8Array(),
  usage: Promise.resolve({ inputTokens: 0, outputTokens: 0, images: 0 }),
});

/** An inner upstream that plays a script of outcomes, one per call. */
function scripted(outcomes: (UpstreamError | Error | number)[]): Upstream & { calls: number } {
  const u = {
    name: 'scripted',
    kind: 'openai' as const,
    calls: 0,
    supports: () => true,
    advertisedModels: () => [],
    close: async () => {},
    async call(): Promise<UpstreamResponse> {
      const o = outcomes[u.calls++];
      if (o instanceof Error) throw o;
      return okResponse(o);
    },
  };
  return u;
}

const connectErr = () => new UpstreamError('connect', 'refused', true);

describe('GuardedUpstream', () => {
  it('retries once a connect error that happened before sending', async () => {
    const inner = scripted([connectErr(), 200]);
    const g = new GuardedUpstream(inner, new CircuitBreaker(fakeClock()));
    expect((await g.call(req())).status).toBe(200);
    expect(inner.calls).toBe(2);
  });

  it('a call whose connect retry also fails counts as one failure', async () => {
    const inner = scripted([connectErr(), connectErr(), connectErr(), connectErr()]);
    const g = new GuardedUpstream(inner, new CircuitBreaker(fakeClock(), { failureThreshold: 2 }));
    await expect(g.call(req())).rejects.toMatchObject({ kind: 'connect' });
    expect(g.breakerState()).toBe('closed');
    await expect(g.call(req())).rejects.toMatchObject({ kind: 'connect' });
    expect(g.breakerState()).toBe('open');
    expect(inner.calls).toBe(4);
  });

  it('retries only once', async () => {
    const inner = scripted([connectErr(), connectErr(), 200]);
    const g = new GuardedUpstream(inner, new CircuitBreaker(fakeClock()));
    await expect(g.call(req())).rejects.toMatchObject({ kind: 'connect' });
    expect(inner.calls).toBe(2);
  });

  it('never retries a reset or a timeout (the upstream may have started the work)', async () => {
    for (const err of [
      new UpstreamError('reset', 'r'),
      new UpstreamError('timeout', 't'),
      new UpstreamError('connect', 'c'),
    ]) {
      const inner = scripted([err, 200]);
      const g = new GuardedUpstream(inner, new CircuitBreaker(fakeClock()));
      await expect(g.call(req())).rejects.toBe(err);
      expect(inner.calls).toBe(1);
    }
  });

  it('opens after failures (5xx count) and refuses with circuit-open until the cooldown', async () => {
    const clock = fakeClock();
    const inner = scripted([503, 502, 500, 200]);
    const g = new GuardedUpstream(
      inner,
      new CircuitBreaker(clock, { failureThreshold: 3, cooldownMs: 1_000 }),
    );
    for (let i = 0; i < 3; i++) expect((await g.call(req())).status).toBeGreaterThanOrEqual(500);
    expect(g.breakerState()).toBe('open');
    await expect(g.call(req())).rejects.toMatchObject({ kind: 'circuit-open', beforeSend: true });
    expect(inner.calls).toBe(3);
    clock.advance(1_000);
    expect((await g.call(req())).status).toBe(200); // the probe
    expect(g.breakerState()).toBe('closed');
  });

  it('a client abort is not a failure', async () => {
    const ac = new AbortController();
    ac.abort();
    const inner = scripted([new Error('aborted'), new Error('aborted'), new Error('aborted')]);
    const g = new GuardedUpstream(inner, new CircuitBreaker(fakeClock(), { failureThreshold: 1 }));
    for (let i = 0; i < 3; i++) await expect(g.call(req(ac.signal))).rejects.toThrow('aborted');
    expect(g.breakerState()).toBe('closed');
  });
});

describe('createUpstream', () => {
  let stub: Stub;
  beforeAll(async () => {
    stub = await startStub();
  });
  afterAll(async () => {
    await stub.close();
  });

  it('returns the mock bare and HTTP upstreams behind a breaker', async () => {
    const m = createUpstream(UpstreamSchema.parse({ name: 'local', kind: 'mock' }));
    expect(m).toBeInstanceOf(MockUpstream);
    const a = createUpstream(UpstreamSchema.parse({ name: 'c', kind: 'anthropic', apiKey: 'k' }));
    expect(a).toBeInstanceOf(GuardedUpstream);
    expect(a.kind).toBe('anthropic');
    await a.close();
  });

  it('an unreachable upstream opens the circuit after the documented 5 failed calls, not 3 (the connect retry counts once)', async () => {
    const clock = fakeClock();
    const cfg = UpstreamSchema.parse({
      name: 'dead',
      kind: 'openai',
      baseUrl: `http://127.0.0.1:${await closedPort()}/v1`,
    });
    // Default breaker: docs/configuration.md says 5 consecutive failures open it.
    const u = createUpstream(cfg, { clock }) as GuardedUpstream;
    for (let i = 1; i <= 4; i++) {
      await expect(u.call(req())).rejects.toMatchObject({ kind: 'connect' });
      expect({ call: i, state: u.breakerState() }).toEqual({ call: i, state: 'closed' });
    }
    await expect(u.call(req())).rejects.toMatchObject({ kind: 'connect' });
    expect(u.breakerState()).toBe('open');
    await expect(u.call(req())).rejects.toMatchObject({ kind: 'circuit-open' });
    await u.close();
  });

  it('a stream that breaks after its headers counts as a failure', async () => {
    stub.handler = (_r, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write('data: {"choices":[]}\n\n', () => setImmediate(() => res.socket?.destroy()));
    };
    const cfg = UpstreamSchema.parse({ name: 'flaky', kind: 'openai', baseUrl: `${stub.origin}/v1` });
    const u = createUpstream(cfg, {
      clock: fakeClock(),
      breaker: { failureThreshold: 1 },
    }) as GuardedUpstream;
    const res = await u.call({ ...req(), stream: true, body: { model: 'm', messages: [], stream: true } });
    expect(u.breakerState()).toBe('closed');
    expect(await readAll(res.body)).toContain('"error"');
    expect(u.breakerState()).toBe('open');
    await u.close();
  });
});
