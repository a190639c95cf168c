/**
 * Limiter throughput: decisions per second for a request that checks 4 limits (rpm, tpm, a daily
 * money window, concurrency), Sluice's stores side by side with rate-limiter-flexible doing the same
 * 4 limits on the same store, in the same run, with ~50 operations in flight.
 *
 * One operation = one request's whole limit lifecycle, as the gateway runs it: the decision, then
 * replacing the estimate by the actual usage (500 tokens reserved, 120 used; $0.0012 reserved,
 * $0.0003 used), then freeing the concurrency slot:
 *   sluice:  reserve(4 buckets, all or none) + settle() + release()         (Redis: 3 script calls)
 *   rlf:     consume() on the 4 limiters in parallel, then reward() the token and money refunds and
 *            the concurrency slot in parallel                                (Redis: 7 calls; not atomic,
 *            and a refusal by one limiter still charges the others)
 * Limits are high enough that every request is admitted (the common, most expensive path), spread over
 * 1,000 keys.
 *
 *   npx tsx bench/limiter.ts            # ~3 s per case
 *   npx tsx bench/limiter.ts --quick    # ~0.6 s per case
 *   REDIS_URL=redis://127.0.0.1:6379 npx tsx bench/limiter.ts
 * `runLimiterBench()` returns the figures as JSON for a bench runner.
 */
import { randomBytes } from 'node:crypto';
import { pathToFileURL } from 'node:url';
import { Redis } from 'ioredis';
import { RateLimiterMemory, RateLimiterRedis } from 'rate-limiter-flexible';
import type { LimitBucket, LimitStore } from '../src/core/ports.js';
import { MemoryLimitStore } from '../src/stores/memory-limit-store.js';
import { RedisLimitStore } from '../src/stores/redis-limit-store.js';

export interface LimiterBenchOptions {
  quick?: boolean;
  /** Per case; default 3000 ms (quick: 600 ms). */
  durationMs?: number;
  /** Operations in flight; default 50. */
  concurrency?: number;
  /** Default redis://127.0.0.1:6379 (env REDIS_URL); null skips the Redis cases. */
  redisUrl?: string | null;
}

export interface LimiterBenchCase {
  store: 'memory' | 'redis';
  impl: 'sluice' | 'rate-limiter-flexible';
  ops: number;
  ms: number;
  /** Requests per second, each decided, settled and released (see the module comment). */
  decisionsPerSec: number;
  /** Mean latency of one operation under this concurrency. */
  meanUs: number;
}

export interface LimiterBenchResult {
  name: 'limiter';
  limitsPerRequest: 4;
  concurrency: number;
  durationMs: number;
  cases: LimiterBenchCase[];
  /** sluice ÷ rate-limiter-flexible, per store (> 1: Sluice is faster). */
  ratios: { memory: number | null; redis: number | null };
}

const KEYS = 1000;
const HUGE = 1_000_000_000;

/** Plain literals, the shape the plan builds (spread-built objects are several times slower to read in V8). */
function sluiceBuckets(k: number): LimitBucket[] {
  const bucket = (
    id: string,
    alg: string,
    kind: LimitBucket['kind'],
    algorithm: LimitBucket['algorithm'],
    limit: number,
    windowMs: number,
  ) =>
    Object.freeze({
      id,
      key: `{t:bench}:${id}:${alg}:k:${k}`,
      kind,
      algorithm,
      limit,
      burst: 0,
      windowMs,
      shadow: false,
      per: 'key',
    });
  return [
    bucket('rpm', 'g', 'requests', 'gcra', HUGE, 60_000),
    bucket('tpm', 'g', 'tokens', 'gcra', HUGE, 60_000),
    bucket('daily', 'w', 'usd', 'window', 1_000_000, 86_400_000),
    bucket('inflight', 'l', 'concurrent', 'lease', 100, 360_000),
  ];
}

/** Runs `op` with `concurrency` workers until `ms` elapse; returns completed operations. */
async function drive(
  op: (i: number) => Promise<void>,
  concurrency: number,
  ms: number,
): Promise<{ ops: number; ms: number }> {
  const start = performance.now();
  const deadline = start + ms;
  let ops = 0;
  const worker = async (w: number) => {
    let i = w;
    while (performance.now() < deadline) {
      await op(i);
      i += concurrency;
      ops++;
    }
  };
  await Promise.all(Array.from({ length: concurrency }, (_, w) => worker(w)));
  return { ops, ms: performance.now() - start };
}

function sluiceOp(store: LimitStore, buckets: LimitBucket[][]): (i: number) => Promise<void> {
  const costs = [1, 500, 0.0012, 1];
  const actual = [1, 120, 0.0003, 1];
  let seq = 0;
  return async (i) => {
    const r = await store.reserve({ buckets: buckets[i % KEYS]!, costs, requestId: `q${++seq}` });
    if (!r.ok) throw new Error(`unexpected deny on ${r.bucketIndex}`);
    await store.settle(r.reservation, actual);
    await store.release(r.reservation);
  };
}

interface RlfLike {
  consume(key: string, points?: number): Promise<unknown>;
  reward(key: string, points?: number): Promise<unknown>;
}

function rlfOp(rpm: RlfLike, tpm: RlfLike, daily: RlfLike, inflight: RlfLike): (i: number) => Promise<void> {
  return async (i) => {
    const key = `k${i % KEYS}`;
    // rlf counts whole points: the daily money limit counts micro-dollars.
    await Promise.all([
      rpm.consume(key, 1),
      tpm.consume(key, 500),
      daily.consume(key, 1200),
      inflight.consume(key, 1),
    ]);
    await Promise.all([tpm.reward(key, 380), daily.reward(key, 900), inflight.reward(key, 1)]);
  };
}

function toCase(
  store: LimiterBenchCase['store'],
  impl: LimiterBenchCase['impl'],
  r: { ops: number; ms: number },
  concurrency: number,
): LimiterBenchCase {
  const perSec = (r.ops / r.ms) * 1000;
  return {
    store,
    impl,
    ops: r.ops,
    ms: Math.round(r.ms),
    decisionsPerSec: Math.round(perSec),
    meanUs: Math.round((concurrency / perSec) * 1e6),
  };
}

export async function runLimiterBench(opts: LimiterBenchOptions = {}): Promise<LimiterBenchResult> {
  const durationMs = opts.durationMs ?? (opts.quick ? 600 : 3000);
  const concurrency = opts.concurrency ?? 50;
  const warm = Math.min(300, durationMs / 3);
  const buckets = Array.from({ length: KEYS }, (_, k) => sluiceBuckets(k));
  const cases: LimiterBenchCase[] = [];

  // Memory: both in this process.
  {
    const store = new MemoryLimitStore();
    const op = sluiceOp(store, buckets);
    await drive(op, concurrency, warm);
    cases.push(toCase('memory', 'sluice', await drive(op, concurrency, durationMs), concurrency));
    const mk = (points: number, duration: number) => new RateLimiterMemory({ points, duration });
    const rop = rlfOp(mk(HUGE, 60), mk(HUGE, 60), mk(HUGE, 86_400), mk(100, 0));
    await drive(rop, concurrency, warm);
    cases.push(
      toCase('memory', 'rate-limiter-flexible', await drive(rop, concurrency, durationMs), concurrency),
    );
  }

  // Redis: same server, unique prefixes, our keys deleted afterwards.
  const url =
    opts.redisUrl === undefined ? (process.env.REDIS_URL ?? 'redis://127.0.0.1:6379') : opts.redisUrl;
  if (url) {
    const redis = new Redis(url, { lazyConnect: true });
    await redis.connect();
    const run = randomBytes(4).toString('hex');
    const prefix = `sluice-bench:${run}:`;
    try {
      const store = new RedisLimitStore({ redis, prefix });
      const op = sluiceOp(store, buckets);
      await drive(op, concurrency, warm);
      cases.push(toCase('redis', 'sluice', await drive(op, concurrency, durationMs), concurrency));
      const mk = (name: string, points: number, duration: number) =>
        new RateLimiterRedis({ storeClient: redis, keyPrefix: `${prefix}rlf:${name}`, points, duration });
      const rop = rlfOp(
        mk('rpm', HUGE, 60),
        mk('tpm', HUGE, 60),
        mk('daily', HUGE, 86_400),
        mk('inflight', 100, 0),
      );
      await drive(rop, concurrency, warm);
      cases.push(
        toCase('redis', 'rate-limiter-flexible', await drive(rop, concurrency, durationMs), concurrency),
      );
    } finally {
      let cursor = '0';
      do {
        const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
        if (keys.length > 0) await redis.del(...keys);
        cursor = next;
      } while (cursor !== '0');
      redis.disconnect();
    }
  }

  const ratio = (store: 'memory' | 'redis') => {
    const a = cases.find((c) => c.store === store && c.impl === 'sluice');
    const b = cases.find((c) => c.store === store && c.impl === 'rate-limiter-flexible');
    return a && b ? Math.round((a.decisionsPerSec / b.decisionsPerSec) * 100) / 100 : null;
  };
  return {
    name: 'limiter',
    limitsPerRequest: 4,
    concurrency,
    durationMs,
    cases,
    ratios: { memory: ratio('memory'), redis: ratio('redis') },
  };
}

function printTable(r: LimiterBenchResult): void {
  const rows = r.cases.map((c) => [
    c.store,
    c.impl,
    c.decisionsPerSec.toLocaleString('en-US'),
    `${c.meanUs}`,
    `${c.ops}`,
  ]);
  const head = ['store', 'implementation', 'decisions/s', 'mean µs', 'ops'];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)));
  const line = (cells: string[]) =>
    cells.map((c, i) => (i >= 2 ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join('  ');
  console.log(
    `limiter: 4 limits per request (rpm, tpm, daily usd, concurrency); one op = decide + settle + release; ${r.concurrency} in flight, ${r.durationMs} ms per case`,
  );
  console.log(line(head));
  for (const row of rows) console.log(line(row));
  console.log(
    `sluice / rate-limiter-flexible: memory ${r.ratios.memory ?? '-'}x, redis ${r.ratios.redis ?? '-'}x`,
  );
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const quick = process.argv.includes('--quick');
  const result = await runLimiterBench({ quick });
  printTable(result);
  if (process.argv.includes('--json')) console.log(JSON.stringify(result));
}
