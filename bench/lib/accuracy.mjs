// Accuracy: N Sluice processes share one Redis; concurrent clients spread over the instances hit a
// few keys that each have a low limit. Admitted requests must never exceed what the limits allow.
// The instances are configured as an N-instance deployment would be (`expectedInstances: N`) and
// warmed up first (JIT, Redis connection, Lua script loaded) on a separate key, as a serving
// instance would be. Round trips are counted with MONITOR: commands sent by clients, not those a
// Lua script runs inside Redis (INFO commandstats counts both).
import { join } from 'node:path';
import Redis from 'ioredis';
import { Pool, request } from 'undici';
import { parseDuration } from './duration.mjs';
import { CHAT_BODY } from './load.mjs';
import { kill, sleep } from './procs.mjs';
import { commandDelta, redisCommandCount } from './redis.mjs';
import { copyDataDir, createKey, GENEROUS_LIMITS, startSluice, tempDir, writeConfig } from './sluice.mjs';

/** Send `total` chat completions, `concurrency` at a time, over `pools` round-robin. */
async function drive({ pools, keys, total, concurrency, onResult }) {
  let next = 0;
  async function worker() {
    while (next < total) {
      const i = next++;
      const inst = i % pools.length;
      const k = Math.floor(i / pools.length) % keys.length;
      try {
        const res = await pools[inst].request({
          path: '/v1/chat/completions',
          method: 'POST',
          headers: { 'content-type': 'application/json', authorization: `Bearer ${keys[k]}` },
          body: CHAT_BODY,
          headersTimeout: 10_000,
          bodyTimeout: 10_000,
        });
        await res.body.dump();
        onResult(k, res.statusCode);
      } catch (err) {
        onResult(k, err.code ?? 'error');
      }
    }
  }
  await Promise.all(Array.from({ length: concurrency }, worker));
}

/** Poll /readyz until every instance says `ready` (not `degraded`); returns the time it took. */
async function waitAllReady(procs, timeoutMs) {
  const t0 = performance.now();
  while (performance.now() - t0 < timeoutMs) {
    const states = await Promise.all(
      procs.map(async (p) => {
        try {
          const res = await request(`${p.url}/readyz`, { headersTimeout: 2000, bodyTimeout: 2000 });
          const body = await res.body.json().catch(() => ({}));
          return res.statusCode === 200 && body.status !== 'degraded';
        } catch {
          return false;
        }
      }),
    );
    if (states.every(Boolean)) return performance.now() - t0;
    await sleep(200);
  }
  return performance.now() - t0;
}

/** Count client-sent commands (not those run inside Lua scripts) until `stop()` is called. */
async function monitorRoundTrips(redisUrl) {
  const r = new Redis(redisUrl, { lazyConnect: true, maxRetriesPerRequest: 1 });
  await r.connect();
  const monitor = await r.monitor();
  const counts = { total: 0, byCommand: {} };
  monitor.on('monitor', (_time, args, source) => {
    if (source === 'lua' || String(source).includes('lua')) return;
    const cmd = String(args[0]).toLowerCase();
    counts.total++;
    counts.byCommand[cmd] = (counts.byCommand[cmd] ?? 0) + 1;
  });
  return {
    async stop() {
      // MONITOR lines arrive asynchronously: give the last ones a moment.
      await new Promise((res) => setTimeout(res, 300));
      monitor.disconnect();
      r.disconnect();
      return counts;
    },
  };
}

export async function runAccuracy({
  upstreamUrl,
  redisUrl,
  instances = 3,
  keys: nKeys = 4,
  limit = 50,
  window = '1h',
  attemptsPerKey = 300,
  concurrency = 48,
  warmupRequests = 300,
  /** Extra `limits:` settings, e.g. `{ timeout: '2s' }`. */
  limitsConfig = {},
  core,
}) {
  const root = tempDir('accuracy');
  const configFile = writeConfig(root, {
    upstreamUrl,
    store: { store: 'redis', url: redisUrl, expectedInstances: instances, ...limitsConfig },
    limits: [{ id: 'acc', requests: limit, window }],
    extraTiers: { warm: { limits: GENEROUS_LIMITS } },
  });
  const firstDir = join(root, 'data-1');
  const keys = [];
  for (let i = 0; i < nKeys; i++) {
    keys.push(createKey({ dataDir: firstDir, configFile, tenant: `acc-${i}` }).key);
  }
  const warmKey = createKey({ dataDir: firstDir, configFile, tenant: 'acc-warm', tier: 'warm' }).key;
  const dirs = [firstDir];
  for (let i = 2; i <= instances; i++) {
    const d = join(root, `data-${i}`);
    copyDataDir(firstDir, d);
    dirs.push(d);
  }
  const procs = [];
  const pools = [];
  try {
    for (let i = 0; i < instances; i++) {
      procs.push(await startSluice({ name: `sluice-acc-${i + 1}`, configFile, dataDir: dirs[i], core }));
    }
    for (const p of procs) pools.push(new Pool(p.url, { connections: Math.ceil(concurrency / instances) }));

    // 1. Warm every instance on a key with generous limits.
    const warmStatus = {};
    await drive({
      pools,
      keys: [warmKey],
      total: warmupRequests * instances,
      concurrency: Math.min(concurrency, 16),
      onResult: (_k, st) => {
        warmStatus[st] = (warmStatus[st] ?? 0) + 1;
      },
    });
    // A cold, busy instance may have timed out on Redis and gone degraded: wait until every
    // instance reports itself ready and not degraded (bounded), so the run starts clean.
    const readyWaitMs = await waitAllReady(procs, 15_000);
    const logOffsets = procs.map((p) => p.log.join('').length);

    // 2. The measured run: every key well over its limit, from all instances at once.
    const admitted = new Array(nKeys).fill(0);
    const denied = new Array(nKeys).fill(0);
    const unexpected = {};
    const sent = nKeys * attemptsPerKey;
    const before = await redisCommandCount(redisUrl);
    const mon = await monitorRoundTrips(redisUrl);
    const t0 = performance.now();
    await drive({
      pools,
      keys,
      total: sent,
      concurrency,
      onResult: (k, st) => {
        if (st === 200) admitted[k]++;
        else if (st === 429) denied[k]++;
        else unexpected[st] = (unexpected[st] ?? 0) + 1;
      },
    });
    const elapsedMs = performance.now() - t0;
    const trips = await mon.stop();
    const after = await redisCommandCount(redisUrl);

    // 3. Degraded-mode episodes (the store timing out) explain any over-admission.
    const runLogs = procs.map((p, i) => p.log.join('').slice(logOffsets[i]));
    const degradedEpisodes = runLogs.reduce((a, l) => a + (l.match(/degraded mode/g) ?? []).length, 0);

    // Upper bound for any of GCRA / sliding window / fixed window: the full allowance once, plus
    // whatever the rate refills while the run lasts (zero for a short run against a 1h window).
    const windowMs = parseDuration(window);
    const perKeyAllowed = limit + Math.floor((elapsedMs * limit) / windowMs);
    const overAdmitted = admitted.reduce((a, n) => a + Math.max(0, n - perKeyAllowed), 0);
    const delta = commandDelta(before, after);
    return {
      limitsConfig: { expectedInstances: instances, ...limitsConfig },
      instances,
      keys: nKeys,
      limit,
      window,
      concurrency,
      sent,
      admitted: admitted.reduce((a, b) => a + b, 0),
      admittedPerKey: admitted,
      deniedPerKey: denied,
      allowed: perKeyAllowed * nKeys,
      overAdmitted,
      underAdmitted: admitted.reduce((a, n) => a + Math.max(0, perKeyAllowed - n), 0),
      elapsedMs,
      warmup: warmStatus,
      readyWaitMs,
      degradedEpisodes,
      // MONITOR also sees our own INFO probe: not counted (it is not a Sluice command).
      roundTripsPerRequest: (trips.total - (trips.byCommand.info ?? 0)) / sent,
      roundTripsPerAdmitted:
        (trips.total - (trips.byCommand.info ?? 0)) /
        Math.max(
          1,
          admitted.reduce((a, b) => a + b, 0),
        ),
      roundTripsByCommand: trips.byCommand,
      redisCommandsInclScripts: delta.calls,
      redisCommandsByName: delta.byCommand,
      unexpected: Object.keys(unexpected).length ? unexpected : undefined,
      logTail:
        overAdmitted > 0 || degradedEpisodes > 0 || Object.keys(unexpected).length
          ? runLogs.map((l) => l.slice(-1500))
          : undefined,
    };
  } finally {
    await Promise.all(pools.map((p) => p.close().catch(() => {})));
    await Promise.all(procs.map((p) => kill(p)));
  }
}
