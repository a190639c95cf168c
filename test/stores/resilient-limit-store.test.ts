/**
 * Degraded mode: per-bucket onStoreFailure (open / closed / local share), settles routed to where the
 * reservation was made, automatic recovery. First with a scripted remote (no timers), then with a real
 * redis-server that the test kills and restarts.
 */
import { Redis } from 'ioredis';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { denialOf } from '../../src/core/limits/headers.js';
import type { PlannedBucket } from '../../src/core/limits/plan.js';
import type {
  BucketState,
  LimitBucket,
  LimitStore,
  Reservation,
  ReserveInput,
  ReserveResult,
} from '../../src/core/ports.js';
import { MemoryLimitStore } from '../../src/stores/memory-limit-store.js';
import { limitRedisOptions, RedisLimitStore } from '../../src/stores/redis-limit-store.js';
import { ResilientLimitStore } from '../../src/stores/resilient-limit-store.js';
import { freePort, privateRedis } from './limit-redis-server.js';

function bucket(
  id: string,
  mode: PlannedBucket['onStoreFailure'],
  p: Partial<LimitBucket> = {},
): PlannedBucket {
  return {
    id,
    key: `{t:r}:${id}:g:k:x`,
    kind: 'requests',
    algorithm: 'gcra',
    limit: 10,
    burst: 0,
    windowMs: 60_000,
    shadow: false,
    per: 'key',
    onStoreFailure: mode,
    ...p,
  };
}

/** A remote that works (a memory store) until `down` is set, then throws like a lost connection. */
class FlakyRemote implements LimitStore {
  down = false;
  calls = 0;
  readonly inner: MemoryLimitStore;
  constructor(clock: { now(): number }) {
    this.inner = new MemoryLimitStore({ clock });
  }
  private gate(): void {
    this.calls++;
    if (this.down) throw new Error('connect ECONNREFUSED');
  }
  async reserve(i: ReserveInput): Promise<ReserveResult> {
    this.gate();
    return this.inner.reserve(i);
  }
  async settle(r: Reservation, a: number[]): Promise<void> {
    this.gate();
    return this.inner.settle(r, a);
  }
  async release(r: Reservation): Promise<void> {
    this.gate();
    return this.inner.release(r);
  }
  async peek(b: LimitBucket[]): Promise<BucketState[]> {
    this.gate();
    return this.inner.peek(b);
  }
  async ping(): Promise<void> {
    this.gate();
  }
  async close(): Promise<void> {}
}

describe('ResilientLimitStore (scripted remote)', () => {
  const now = 1_700_000_000_000;
  const clock = { now: () => now };
  let store: ResilientLimitStore | undefined;
  afterEach(async () => {
    await store?.close();
    vi.useRealTimers();
  });

  it('uses the remote store while it works, and says it is not degraded', async () => {
    const remote = new FlakyRemote(clock);
    store = new ResilientLimitStore({ remote, clock, expectedInstances: 2 });
    const r = await store.reserve({ buckets: [bucket('rpm', 'local')], costs: [1], requestId: 'a' });
    expect(r.ok).toBe(true);
    expect(remote.calls).toBe(1);
    expect(store.degraded()).toBe(false);
    expect((await remote.inner.peek([bucket('rpm', 'local')]))[0]!.remaining).toBe(9);
  });

  it('on failure: local buckets get 1/expectedInstances, open buckets admit, closed buckets deny as store-unavailable', async () => {
    const remote = new FlakyRemote(clock);
    const changes: boolean[] = [];
    store = new ResilientLimitStore({
      remote,
      clock,
      expectedInstances: 2,
      onDegradedChange: (d) => changes.push(d),
    });
    remote.down = true;
    // 1. local: 10 per minute across 2 instances → 5 here
    const local = bucket('rpm', 'local');
    for (let i = 0; i < 5; i++)
      expect((await store.reserve({ buckets: [local], costs: [1], requestId: `l${i}` })).ok).toBe(true);
    const d = await store.reserve({ buckets: [local], costs: [1], requestId: 'l5' });
    expect(d.ok).toBe(false);
    if (!d.ok) expect(d.retryAfterMs).toBeGreaterThan(0);
    expect(store.degraded()).toBe(true);
    expect(changes).toEqual([true]);
    // 2. open: admitted without counting
    const open = bucket('opn', 'open', { limit: 1 });
    for (let i = 0; i < 3; i++)
      expect((await store.reserve({ buckets: [open], costs: [1], requestId: `o${i}` })).ok).toBe(true);
    // 3. closed: denied with the store-unavailable code and a short wait
    const closed = bucket('cls', 'closed');
    const c = await store.reserve({ buckets: [open, closed], costs: [1, 1], requestId: 'c1' });
    expect(c.ok).toBe(false);
    if (!c.ok) {
      expect(c.bucketIndex).toBe(1);
      expect(c.retryAfterMs).toBe(1000);
      const denial = denialOf(c, [open, closed], [1, 1], now);
      expect(denial.code).toBe('SLUICE_STORE_UNAVAILABLE');
      expect(denial.headers['retry-after']).toBe('1');
    }
    // 4. a shadow bucket never denies, even when closed
    const shadowClosed = bucket('shc', 'closed', { shadow: true });
    expect((await store.reserve({ buckets: [shadowClosed], costs: [1], requestId: 's1' })).ok).toBe(true);
    // While degraded, the remote is not called on the request path.
    const calls = remote.calls;
    await store.reserve({ buckets: [local], costs: [1], requestId: 'l6' });
    expect(remote.calls).toBe(calls);
  });

  it('settles and releases a local reservation in the local store, even after recovery', async () => {
    const remote = new FlakyRemote(clock);
    store = new ResilientLimitStore({ remote, clock });
    remote.down = true;
    const tpm = bucket('tpm', 'local', { kind: 'tokens', limit: 1000 });
    const lease = bucket('inf', 'local', {
      kind: 'concurrent',
      algorithm: 'lease',
      limit: 1,
      windowMs: 300_000,
    });
    const r = await store.reserve({ buckets: [tpm, lease], costs: [800, 1], requestId: 'x' });
    expect(r.ok).toBe(true);
    expect((await store.peek([tpm]))[0]!.remaining).toBe(200);
    remote.down = false;
    expect(await store.probe()).toBe(true);
    expect(store.degraded()).toBe(false);
    if (r.ok) {
      await store.settle(r.reservation, [100, 1]);
      await store.release(r.reservation);
    }
    const local = await store.local.peek([tpm, lease]);
    expect(local.map((s) => s.remaining)).toEqual([900, 1]);
    // The remote store never saw that reservation.
    expect((await remote.inner.peek([tpm]))[0]!.remaining).toBe(1000);
  });

  it('a probe that fails keeps it degraded; one that succeeds recovers and calls back', async () => {
    const remote = new FlakyRemote(clock);
    const changes: boolean[] = [];
    store = new ResilientLimitStore({ remote, clock, onDegradedChange: (d) => changes.push(d) });
    remote.down = true;
    await store.reserve({ buckets: [bucket('rpm', 'local')], costs: [1], requestId: 'p1' });
    expect(await store.probe()).toBe(false);
    expect(store.degraded()).toBe(true);
    remote.down = false;
    expect(await store.probe()).toBe(true);
    expect(changes).toEqual([true, false]);
    const r = await store.reserve({ buckets: [bucket('rpm', 'local')], costs: [1], requestId: 'p2' });
    expect(r.ok && (r.reservation.meta as { src: string }).src).toBe('r');
  });

  /** A remote whose calls wait until the test answers them. */
  function manualRemote() {
    const inner = new MemoryLimitStore({ clock });
    const pending: (() => void)[] = [];
    const later =
      <T>(f: () => Promise<T>) =>
      (): Promise<T> =>
        new Promise<T>((resolve, reject) => pending.push(() => f().then(resolve, reject)));
    const remote: LimitStore = {
      reserve: (i) => later(() => inner.reserve(i))(),
      settle: (r, a) => later(() => inner.settle(r, a))(),
      release: (r) => later(() => inner.release(r))(),
      peek: (b) => later(() => inner.peek(b))(),
      close: async () => {},
    };
    return {
      remote,
      inner,
      answerAll: () => {
        for (const f of pending.splice(0)) f();
      },
    };
  }
  const flushIo = () => new Promise((resolve) => setImmediate(resolve));

  it('a call slower than the timeout on a live connection waits for the real answer (no degraded mode)', async () => {
    // setImmediate stays real: the timeout gives the poll phase one pass before it gives up.
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
    const { remote, inner, answerAll } = manualRemote();
    store = new ResilientLimitStore({ remote, clock, timeoutMs: 50, isConnected: () => true });
    const b = bucket('rpm', 'local', { limit: 1 });
    const first = store.reserve({ buckets: [b], costs: [1], requestId: 's1' });
    await vi.advanceTimersByTimeAsync(300);
    await flushIo();
    expect(store.degraded()).toBe(false);
    answerAll();
    const r = await first;
    expect(r.ok && (r.reservation.meta as { src: string }).src).toBe('r');
    expect((await inner.peek([b]))[0]!.remaining).toBe(0);
    // The next one is denied by the remote's real state, not admitted from a local share.
    const second = store.reserve({ buckets: [b], costs: [1], requestId: 's2' });
    await vi.advanceTimersByTimeAsync(300);
    answerAll();
    const d = await second;
    expect(d.ok).toBe(false);
    expect((d as { storeUnavailable?: boolean }).storeUnavailable).toBeUndefined();
    expect(store.stats()).toMatchObject({ degraded: false, slowCalls: 2, localReserves: 0 });
  });

  it('a call with no answer within slowCallMaxMs on a live connection is refused as store-unavailable, never admitted', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
    const { remote } = manualRemote();
    store = new ResilientLimitStore({
      remote,
      clock,
      timeoutMs: 50,
      slowCallMaxMs: 1000,
      isConnected: () => true,
      onStoreFailure: 'open',
    });
    const b = bucket('rpm', 'local');
    const pending = store.reserve({ buckets: [b], costs: [1], requestId: 'h1' });
    await vi.advanceTimersByTimeAsync(999);
    await flushIo();
    let settled = false;
    void pending.then(() => {
      settled = true;
    });
    await flushIo();
    expect(settled).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    await flushIo();
    const r = await pending;
    expect(r.ok).toBe(false);
    if (r.ok) throw new Error('admitted');
    expect(r).toMatchObject({ storeUnavailable: true, retryAfterMs: 1000 });
    expect(denialOf(r, [b], [1], now)).toMatchObject({ code: 'SLUICE_STORE_UNAVAILABLE' });
    expect(store.stats()).toMatchObject({ degraded: false, slowDenials: 1, openAdmits: 0 });
  });

  it('a call that errs on a live connection refuses that request only; a timeout with the connection down degrades', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
    let up = true;
    const erring: LimitStore = {
      reserve: async () => {
        throw new Error('ERR script error');
      },
      settle: async () => {},
      release: async () => {},
      peek: async () => [],
      close: async () => {},
    };
    store = new ResilientLimitStore({ remote: erring, clock, isConnected: () => up });
    const r = await store.reserve({ buckets: [bucket('rpm', 'local')], costs: [1], requestId: 'e1' });
    expect(r.ok).toBe(false);
    expect(store.degraded()).toBe(false);
    await store.close();

    const { remote } = manualRemote();
    store = new ResilientLimitStore({ remote, clock, timeoutMs: 50, isConnected: () => up });
    const pending = store.reserve({ buckets: [bucket('rpm', 'local')], costs: [1], requestId: 'e2' });
    up = false; // the connection drops while the call is out
    await vi.advanceTimersByTimeAsync(50);
    await flushIo();
    const local = await pending;
    expect(local.ok && (local.reservation.meta as { src: string }).src).toBe('l');
    expect(store.degraded()).toBe(true);
  });

  it('an error that says the connection is gone degrades even while the client reports ready (a cluster that lost one master)', async () => {
    const lost: LimitStore = {
      reserve: async () => {
        throw new Error('Too many Cluster redirections. Last error: Error: Connection is closed.');
      },
      settle: async () => {},
      release: async () => {},
      peek: async () => [],
      close: async () => {},
      ping: async () => {
        throw new Error('cluster master 127.0.0.1:7001 is not connected');
      },
    } as LimitStore & { ping(): Promise<void> };
    store = new ResilientLimitStore({ remote: lost, clock, isConnected: () => true });
    const r = await store.reserve({ buckets: [bucket('rpm', 'local')], costs: [1], requestId: 'c1' });
    expect(r.ok && (r.reservation.meta as { src: string }).src).toBe('l');
    expect(store.degraded()).toBe(true);
    expect(await store.probe()).toBe(false); // the lost master still does not answer: stays degraded
    expect(store.degraded()).toBe(true);
  });

  it('a connection known down degrades at once, without waiting for a timeout', async () => {
    const { remote } = manualRemote();
    store = new ResilientLimitStore({ remote, clock, isConnected: () => false });
    const r = await store.reserve({ buckets: [bucket('rpm', 'local')], costs: [1], requestId: 'd1' });
    expect(r.ok && (r.reservation.meta as { src: string }).src).toBe('l');
    expect(store.degraded()).toBe(true);
    expect(await store.probe()).toBe(false); // still not connected: no recovery
  });
});

describe('ResilientLimitStore over a real Redis that dies mid-test', () => {
  it('degrades to the local share when redis-server is killed and recovers by itself when it returns', async () => {
    const server = privateRedis(await freePort());
    await server.start();
    const client = new Redis({ host: '127.0.0.1', port: server.port, ...limitRedisOptions() });
    client.on('error', () => {}); // refused connections while the server is down are expected
    const changes: boolean[] = [];
    const remote = new RedisLimitStore({ redis: client, prefix: 'deg:' });
    const store = new ResilientLimitStore({
      remote,
      timeoutMs: 500, // generous: a loaded 2-core CI machine, not a latency claim
      probeIntervalMs: 50,
      expectedInstances: 2,
      onDegradedChange: (d) => changes.push(d),
    });
    try {
      await new Promise((r) => client.once('ready', r));
      const rpm = bucket('rpm', 'local', { limit: 6 });
      // 1. Healthy: decisions come from Redis.
      for (let i = 0; i < 2; i++)
        expect((await store.reserve({ buckets: [rpm], costs: [1], requestId: `h${i}` })).ok).toBe(true);
      expect(store.degraded()).toBe(false);
      // 2. Kill Redis: the next reserve is answered locally, with 6 / 2 = 3 for this instance.
      await server.kill();
      const local: boolean[] = [];
      for (let i = 0; i < 4; i++)
        local.push((await store.reserve({ buckets: [rpm], costs: [1], requestId: `d${i}` })).ok);
      expect(local).toEqual([true, true, true, false]);
      expect(store.degraded()).toBe(true);
      expect(changes).toEqual([true]);
      // 3. Bring Redis back (empty, like a restart without persistence): probes find it, no restart needed.
      await server.start();
      await vi.waitFor(() => expect(store.degraded()).toBe(false), { timeout: 15_000, interval: 50 });
      expect(changes).toEqual([true, false]);
      const back = await store.reserve({ buckets: [rpm], costs: [1], requestId: 'b1' });
      expect(back.ok).toBe(true);
      if (back.ok) {
        expect((back.reservation.meta as { src: string }).src).toBe('r');
        expect(back.states[0]!.remaining).toBe(5); // Redis state: full after the restart, minus this one
      }
      expect(remote.stats().scriptLoads).toBeGreaterThanOrEqual(2); // reloaded after the restart
    } finally {
      await store.close();
      client.disconnect();
      await server.kill();
    }
  });
});
