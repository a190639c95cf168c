// Redis for the benchmark. By default a private `redis-server` (when installed) on a free loopback
// port, pinned with the load generator, so that INFO commandstats counts only Sluice's commands;
// otherwise (or with --redis-url) the given server, whose other clients then inflate the counts.
import { spawnSync } from 'node:child_process';
import Redis from 'ioredis';
import { freePort, startProcess } from './procs.mjs';

export const HAS_REDIS_SERVER = spawnSync('redis-server', ['--version'], { stdio: 'ignore' }).status === 0;

/** Start a throwaway redis-server (no persistence). Resolves to a process handle with `url`. */
export async function startPrivateRedis({ core }) {
  const port = await freePort();
  const proc = await startProcess({
    name: 'redis',
    cmd: 'redis-server',
    args: [
      '--port',
      String(port),
      '--bind',
      '127.0.0.1',
      '--save',
      '',
      '--appendonly',
      'no',
      '--protected-mode',
      'yes',
    ],
    core,
    ready: /Ready to accept connections/,
    timeoutMs: 10_000,
  });
  proc.url = `redis://127.0.0.1:${port}`;
  proc.private = true;
  return proc;
}

/** Total commands Redis has executed, excluding INFO itself (our own probe). */
export async function redisCommandCount(url) {
  const r = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1, enableOfflineQueue: false });
  try {
    await r.connect();
    const text = await r.info('commandstats');
    let calls = 0;
    const byCommand = {};
    for (const line of text.split('\n')) {
      const m = /^cmdstat_([^:]+):calls=(\d+)/.exec(line.trim());
      if (!m || m[1] === 'info') continue;
      calls += Number(m[2]);
      byCommand[m[1]] = Number(m[2]);
    }
    return { calls, byCommand };
  } finally {
    r.disconnect();
  }
}

/** Difference of two `redisCommandCount` results. */
export function commandDelta(before, after) {
  const byCommand = {};
  for (const [k, v] of Object.entries(after.byCommand)) {
    const d = v - (before.byCommand[k] ?? 0);
    if (d > 0) byCommand[k] = d;
  }
  return { calls: after.calls - before.calls, byCommand };
}

export async function redisPing(url) {
  const r = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1, enableOfflineQueue: false });
  try {
    await r.connect();
    return (await r.ping()) === 'PONG';
  } catch {
    return false;
  } finally {
    r.disconnect();
  }
}
