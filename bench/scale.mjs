#!/usr/bin/env node
/**
 * Scale bench (issue 18): N limit-store "instances" (store objects, each with its own connection)
 * on one Redis and on a 3-master Redis Cluster, both private servers started here on free ports.
 * Keys follow a Zipf(s) distribution over `--keys` principals; each request carries a per-key rate
 * limit and a tenant limit (one slot), plus — with `--mixed` — an IP and a global limit (other slots).
 * Reports per backend: decisions/s, round trips (script calls) and Redis commands per request
 * (INFO commandstats delta, commands run inside scripts included), p50/p99
 * of one reserve+settle round, and over-admission on one hot key (admitted minus its limit).
 *
 *   node scripts/build.mjs && node bench/scale.mjs [--requests 50000] [--keys 1000000]
 *        [--instances 3] [--concurrency 64] [--zipf 1.1] [--mixed] [--json out.json]
 *
 * Standalone (the lead wires it into bench/run.mjs as `--scale`). Needs redis-server and redis-cli.
 */
import { execFile, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Cluster, Redis } from 'ioredis';
import { ClusterLimitStore } from '../dist/stores/redis/cluster-limit-store.js';
import { limitClusterOptions, limitRedisOptions, RedisLimitStore } from '../dist/stores/redis-limit-store.js';
import { SliceLimitStore } from '../dist/stores/slice-limit-store.js';

const run = promisify(execFile);
const arg = (n, d) => {
  const i = process.argv.indexOf(`--${n}`);
  return i > 0 ? process.argv[i + 1] : d;
};
const REQUESTS = Number(arg('requests', '50000'));
const KEYS = Number(arg('keys', '1000000'));
const INSTANCES = Number(arg('instances', '3'));
const CONCURRENCY = Number(arg('concurrency', '64'));
const ZIPF = Number(arg('zipf', '1.1'));
const MIXED = process.argv.includes('--mixed');
// --leases: hot-key slices on (the per-key and tenant limits get `slice`), each store wrapped in a
// SliceLimitStore; the hot-key run then reports the published over-admission bound beside the measured one.
const LEASES = process.argv.includes('--leases');
const SLICE = Number(arg('slice', '20'));
const OUT = arg('json', '');

const freePort = () =>
  new Promise((res, rej) => {
    const s = createServer();
    s.once('error', rej);
    s.listen(0, '127.0.0.1', () => {
      const p = s.address().port;
      s.close(() => res(p));
    });
  });
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function startServers(n, cluster) {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-scale-'));
  const ports = [];
  for (let i = 0; i < n; i++) ports.push(await freePort());
  const procs = ports.map((p) =>
    spawn(
      'redis-server',
      [
        '--port',
        String(p),
        '--bind',
        '127.0.0.1',
        '--save',
        '',
        '--appendonly',
        'no',
        '--dir',
        dir,
        ...(cluster ? ['--cluster-enabled', 'yes', '--cluster-config-file', `nodes-${p}.conf`] : []),
      ],
      { stdio: 'ignore', cwd: dir },
    ),
  );
  for (const p of ports)
    for (let i = 0; ; i++) {
      const c = new Redis({ port: p, lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
      c.on('error', () => {});
      try {
        await c.connect();
        await c.ping();
        c.disconnect();
        break;
      } catch {
        c.disconnect();
        if (i > 200) throw new Error(`redis-server ${p} did not start`);
        await sleep(25);
      }
    }
  if (cluster) {
    await run('redis-cli', ['--cluster', 'create', ...ports.map((p) => `127.0.0.1:${p}`), '--cluster-yes']);
    for (const p of ports)
      for (;;) {
        const c = new Redis({ port: p });
        const info = await c.call('CLUSTER', 'INFO');
        c.disconnect();
        if (String(info).includes('cluster_state:ok')) break;
        await sleep(50);
      }
  }
  return {
    ports,
    stop: async () => {
      for (const p of procs) p.kill('SIGKILL');
      await sleep(50);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Seconds of CPU the Redis servers have used (user + sys, main thread and all). */
async function redisCpu(ports) {
  let total = 0;
  for (const p of ports) {
    const c = new Redis({ port: p });
    const s = String(await c.info('cpu'));
    c.disconnect();
    for (const m of s.matchAll(/^used_cpu_(?:sys|user):([\d.]+)/gm)) total += Number(m[1]);
  }
  return total;
}

async function commandCount(ports) {
  let total = 0;
  for (const p of ports) {
    const c = new Redis({ port: p });
    const s = String(await c.info('commandstats'));
    c.disconnect();
    for (const m of s.matchAll(/^cmdstat_([a-z|]+):calls=(\d+)/gm))
      if (
        ![
          'info',
          'cluster|slots',
          'cluster|nodes',
          'ping',
          'cluster',
          'command',
          'client|setinfo',
          'client',
        ].includes(m[1])
      )
        total += Number(m[2]);
  }
  return total;
}

/** Zipf sampler over 1..n by inverse CDF on a precomputed table of 4096 quantiles plus a tail. */
function zipf(n, s) {
  // Rejection-inversion (Hörmann & Derflinger) for unbounded n.
  const h = (x) => Math.exp((1 - s) * Math.log(x)) / (1 - s);
  const hInv = (x) => Math.exp(Math.log((1 - s) * x) / (1 - s));
  const hx0 = h(0.5) - 1;
  const hn = h(n + 0.5);
  return () => {
    for (;;) {
      const u = hn + Math.random() * (hx0 - hn);
      const x = hInv(u);
      const k = Math.max(1, Math.min(n, Math.round(x)));
      if (k - x <= 0.5 || u >= h(k + 0.5) - Math.exp(-s * Math.log(k))) return k;
    }
  };
}

const HOUR = 3_600_000;
const bucket = (key, limit, per) => ({
  id: per,
  key,
  kind: 'requests',
  algorithm: 'gcra',
  limit,
  burst: 0,
  windowMs: 60_000,
  shadow: false,
  per,
  ...(LEASES ? { slice: SLICE } : {}),
});
function bucketsFor(k) {
  const t = `tn${k % 10_000}`;
  const b = [
    bucket(`{t:${t}}:rpm:gcra:k:key${k}`, 600, 'key'),
    bucket(`{t:${t}}:rpt:gcra:t`, 100_000, 'tenant'),
  ];
  if (MIXED)
    b.push(bucket(`{i:10.0.${k % 250}.1}:rpi:gcra`, 100_000, 'ip'), bucket('{g}:rpg:gcra', 1e9, 'global'));
  return b;
}

async function measure(name, ports, makeStore) {
  const stores = [];
  const clients = [];
  const raw = [];
  for (let i = 0; i < INSTANCES; i++) {
    const { store, client } = await makeStore();
    raw.push(store);
    stores.push(LEASES ? new SliceLimitStore({ inner: store, instanceId: `b${i}`, timer: true }) : store);
    clients.push(client);
  }
  const next = zipf(KEYS, ZIPF);
  const before = await commandCount(ports);
  const cpuBefore = await redisCpu(ports);
  const lat = new Float64Array(REQUESTS);
  let done = 0;
  let admitted = 0;
  const t0 = performance.now();
  const worker = async (w) => {
    while (done < REQUESTS) {
      const i = done++;
      const k = next();
      const buckets = bucketsFor(k);
      const s = stores[(w + i) % INSTANCES];
      const a = performance.now();
      const r = await s.reserve({ buckets, costs: buckets.map(() => 1), requestId: `r${i}` });
      if (r.ok) {
        admitted++;
        await s.settle(
          r.reservation,
          buckets.map(() => 1),
        );
      }
      lat[i] = performance.now() - a;
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, (_, w) => worker(w)));
  const secs = (performance.now() - t0) / 1000;
  const cmds = (await commandCount(ports)) - before;
  const trips = raw.reduce((n, x) => n + x.stats().calls, 0);
  const cpu = (await redisCpu(ports)) - cpuBefore;
  // Over-admission on one hot key: 3 x 300 concurrent requests against a limit of 50 per hour.
  const hot = [bucket(`{t:hot-${name}}:rph:gcra:k:hot`, 50, 'key')];
  hot[0].windowMs = HOUR;
  if (MIXED) hot.push(bucket(`{i:hot-${name}}:rpi:gcra`, 1e6, 'ip'));
  let hotAdmitted = 0;
  await Promise.all(
    Array.from({ length: 900 }, async (_, i) => {
      const r = await stores[i % INSTANCES].reserve({
        buckets: hot,
        costs: hot.map(() => 1),
        requestId: `h${i}`,
      });
      if (r.ok) hotAdmitted++;
    }),
  );
  for (const s of stores) if (s !== raw[stores.indexOf(s)]) await s.close().catch(() => {});
  for (const c of clients) c.disconnect();
  const sorted = [...lat].sort((x, y) => x - y);
  const pct = (p) => Number(sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))].toFixed(3));
  return {
    backend: name,
    instances: INSTANCES,
    requests: REQUESTS,
    keys: KEYS,
    zipf: ZIPF,
    mixed: MIXED,
    decisionsPerSec: Math.round(REQUESTS / secs),
    // Script calls sent (network round trips) and commands Redis ran (those inside scripts included).
    roundTripsPerRequest: Number((trips / REQUESTS).toFixed(2)),
    redisCommandsPerRequest: Number((cmds / REQUESTS).toFixed(2)),
    // Redis CPU per request, all servers together: the basis for sizing shards (docs/scaling.md).
    redisCpuUsPerRequest: Number(((cpu * 1e6) / REQUESTS).toFixed(1)),
    admittedShare: Number((admitted / REQUESTS).toFixed(3)),
    p50Ms: pct(0.5),
    p99Ms: pct(0.99),
    hotKeyOverAdmission: hotAdmitted - 50,
    leases: LEASES ? { slice: SLICE } : false,
    // Worst case in any window with slices: instances × slice (docs/scaling.md); 0 with them off.
    overAdmissionBound: LEASES ? INSTANCES * SLICE : 0,
  };
}

const results = [];
{
  const srv = await startServers(1, false);
  try {
    results.push(
      await measure('redis', srv.ports, async () => {
        const client = new Redis({ port: srv.ports[0], ...limitRedisOptions() });
        await new Promise((r) => client.once('ready', r));
        return { client, store: new RedisLimitStore({ redis: client, denyCacheMaxMs: 0 }) };
      }),
    );
  } finally {
    await srv.stop();
  }
}
{
  const srv = await startServers(3, true);
  try {
    results.push(
      await measure('cluster-3', srv.ports, async () => {
        const client = new Cluster(
          srv.ports.map((port) => ({ host: '127.0.0.1', port })),
          limitClusterOptions(),
        );
        client.on('error', () => {});
        await new Promise((r) => client.once('ready', r));
        return { client, store: new ClusterLimitStore({ redis: client, denyCacheMaxMs: 0 }) };
      }),
    );
  } finally {
    await srv.stop();
  }
}
for (const r of results) console.log(JSON.stringify(r));
if (OUT) writeFileSync(OUT, `${JSON.stringify(results, null, 2)}\n`);
