// Accuracy: N Sluice processes share one Redis; concurrent clients spread over the instances hit a
// few keys that each have a low limit. Admitted requests must never exceed what the limits allow.
import { join } from 'node:path';
import { Pool } from 'undici';
import { parseDuration } from './duration.mjs';
import { CHAT_BODY } from './load.mjs';
import { kill } from './procs.mjs';
import { commandDelta, redisCommandCount } from './redis.mjs';
import { copyDataDir, createKey, startSluice, tempDir, writeConfig } from './sluice.mjs';

export async function runAccuracy({
  upstreamUrl,
  redisUrl,
  instances = 3,
  keys: nKeys = 4,
  limit = 50,
  window = '1h',
  attemptsPerKey = 200,
  concurrency = 48,
  core,
}) {
  const root = tempDir('accuracy');
  const configFile = writeConfig(root, {
    upstreamUrl,
    store: { store: 'redis', url: redisUrl },
    limits: [{ id: 'acc', requests: limit, window }],
  });
  const firstDir = join(root, 'data-1');
  const keys = [];
  for (let i = 0; i < nKeys; i++)
    keys.push(createKey({ dataDir: firstDir, configFile, tenant: `acc-${i}` }).key);
  const dirs = [firstDir];
  for (let i = 2; i <= instances; i++) {
    const d = join(root, `data-${i}`);
    copyDataDir(firstDir, d);
    dirs.push(d);
  }
  const procs = [];
  try {
    for (let i = 0; i < instances; i++) {
      procs.push(await startSluice({ name: `sluice-acc-${i + 1}`, configFile, dataDir: dirs[i], core }));
    }
    const pools = procs.map((p) => new Pool(p.url, { connections: Math.ceil(concurrency / instances) }));
    const admitted = new Array(nKeys).fill(0);
    const denied = new Array(nKeys).fill(0);
    const unexpected = {};
    const sent = nKeys * attemptsPerKey;
    let next = 0;
    const before = await redisCommandCount(redisUrl);
    const t0 = performance.now();
    async function worker() {
      while (next < sent) {
        const i = next++;
        const inst = i % instances;
        const k = Math.floor(i / instances) % nKeys;
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
          if (res.statusCode === 200) admitted[k]++;
          else if (res.statusCode === 429) denied[k]++;
          else unexpected[res.statusCode] = (unexpected[res.statusCode] ?? 0) + 1;
        } catch (err) {
          unexpected[err.code ?? 'error'] = (unexpected[err.code ?? 'error'] ?? 0) + 1;
        }
      }
    }
    await Promise.all(Array.from({ length: concurrency }, worker));
    const elapsedMs = performance.now() - t0;
    const after = await redisCommandCount(redisUrl);
    await Promise.all(pools.map((p) => p.close()));
    // Upper bound for any of GCRA / sliding window / fixed window: the full allowance once, plus
    // whatever the rate refills while the run lasts (zero for a short run against a 1h window).
    const windowMs = parseDuration(window);
    const perKeyAllowed = limit + Math.floor((elapsedMs * limit) / windowMs);
    const totalAdmitted = admitted.reduce((a, b) => a + b, 0);
    const overAdmitted = admitted.reduce((a, n) => a + Math.max(0, n - perKeyAllowed), 0);
    const delta = commandDelta(before, after);
    return {
      instances,
      keys: nKeys,
      limit,
      window,
      sent,
      admitted: totalAdmitted,
      admittedPerKey: admitted,
      deniedPerKey: denied,
      allowed: perKeyAllowed * nKeys,
      overAdmitted,
      underAdmitted: admitted.reduce((a, n) => a + Math.max(0, perKeyAllowed - n), 0),
      elapsedMs,
      redisCalls: delta.calls,
      redisCallsByCommand: delta.byCommand,
      redisCallsPerRequest: delta.calls / sent,
      unexpected: Object.keys(unexpected).length ? unexpected : undefined,
    };
  } finally {
    await Promise.all(procs.map((p) => kill(p)));
  }
}
