/**
 * A private Redis Cluster for tests: `redis-server --cluster-enabled yes` on free ports in a temp
 * dir (3 masters, optionally one replica each), joined with `redis-cli --cluster create`, killed and
 * removed at the end. Never touches the shared Redis.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import { freePort } from './limit-redis-server.js';

const run = promisify(execFile);

export interface PrivateCluster {
  ports: number[];
  nodes: { host: string; port: number }[];
  /** Promotes the replica of the master serving `key` (CLUSTER FAILOVER) and waits until it is master. */
  failover(key: string): Promise<void>;
  /** The port of the master serving `key`'s slot. */
  masterOf(key: string): Promise<number>;
  /** SIGKILLs the node on `port` and resolves once it has exited. */
  kill(port: number): Promise<void>;
  /** Starts the node on `port` again (same dir and nodes.conf: it rejoins as itself) and waits for cluster_state:ok. */
  restart(port: number): Promise<void>;
  stop(): Promise<void>;
}

async function waitFor(cond: () => Promise<boolean>, what: string, tries = 400): Promise<void> {
  for (let i = 0; i < tries; i++) {
    if (await cond().catch(() => false)) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out waiting for ${what}`);
}

export async function startCluster(replicas: 0 | 1 = 0): Promise<PrivateCluster> {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-cluster-'));
  const count = 3 * (1 + replicas);
  const ports: number[] = [];
  for (let i = 0; i < count; i++) ports.push(await freePort());
  const spawnNode = (port: number): ChildProcess =>
    spawn(
      'redis-server',
      [
        '--port',
        String(port),
        '--bind',
        '127.0.0.1',
        '--cluster-enabled',
        'yes',
        '--cluster-config-file',
        `nodes-${port}.conf`,
        '--cluster-node-timeout',
        '2000',
        '--save',
        '',
        '--appendonly',
        'no',
        '--dir',
        dir,
      ],
      { stdio: 'ignore', cwd: dir },
    );
  const procs: ChildProcess[] = ports.map(spawnNode);
  const ping = async (port: number) => {
    const c = new Redis({
      port,
      host: '127.0.0.1',
      lazyConnect: true,
      maxRetriesPerRequest: 0,
      retryStrategy: () => null,
    });
    c.on('error', () => {});
    try {
      await c.connect();
      return (await c.ping()) === 'PONG';
    } finally {
      c.disconnect();
    }
  };
  for (const p of ports) await waitFor(() => ping(p), `redis-server on ${p}`);
  await run('redis-cli', [
    '--cluster',
    'create',
    ...ports.map((p) => `127.0.0.1:${p}`),
    '--cluster-replicas',
    String(replicas),
    '--cluster-yes',
  ]);
  const info = async (port: number, cmd: string[]) => {
    const c = new Redis({
      port,
      host: '127.0.0.1',
      lazyConnect: true,
      maxRetriesPerRequest: 0,
      retryStrategy: () => null,
    });
    c.on('error', () => {});
    try {
      await c.connect();
      return String(await c.call(cmd[0]!, ...cmd.slice(1)));
    } finally {
      c.disconnect();
    }
  };
  for (const p of ports)
    await waitFor(
      async () => (await info(p, ['CLUSTER', 'INFO'])).includes('cluster_state:ok'),
      `cluster ok on ${p}`,
    );
  if (replicas > 0) {
    // Every replica has synced with its master.
    for (const p of ports)
      await waitFor(async () => {
        const r = await info(p, ['INFO', 'replication']);
        return r.includes('role:master') || r.includes('master_link_status:up');
      }, `replica sync on ${p}`);
  }
  return {
    ports,
    nodes: ports.map((port) => ({ host: '127.0.0.1', port })),
    async failover(key: string) {
      const slot = Number(await info(ports[0]!, ['CLUSTER', 'KEYSLOT', key]));
      // The master owning the slot, then one of its replicas.
      // The replica shows in CLUSTER SLOTS only once gossip has spread it: wait for that, bounded.
      let range: [number, number, ...[string, number, string][]] | undefined;
      await waitFor(async () => {
        const c = new Redis({ port: ports[0]!, host: '127.0.0.1' });
        try {
          const slots = JSON.parse(JSON.stringify(await c.call('CLUSTER', 'SLOTS'))) as [
            number,
            number,
            ...[string, number, string][],
          ][];
          range = slots.find(([lo, hi]) => slot >= lo && slot <= hi);
          return (range?.length ?? 0) >= 4;
        } finally {
          c.disconnect();
        }
      }, 'a replica listed for the slot');
      if (!range) throw new Error('no replica for the slot');
      const replicaPort = range[3]![1];
      await info(replicaPort, ['CLUSTER', 'FAILOVER']);
      await waitFor(
        async () => (await info(replicaPort, ['INFO', 'replication'])).includes('role:master'),
        'failover',
      );
      for (const p of ports)
        await waitFor(
          async () => (await info(p, ['CLUSTER', 'INFO'])).includes('cluster_state:ok'),
          `cluster ok on ${p}`,
        );
    },
    async masterOf(key: string) {
      const slot = Number(await info(ports[0]!, ['CLUSTER', 'KEYSLOT', key]));
      const c = new Redis({ port: ports[0]!, host: '127.0.0.1' });
      try {
        const slots = JSON.parse(JSON.stringify(await c.call('CLUSTER', 'SLOTS'))) as [
          number,
          number,
          [string, number, string],
        ][];
        const range = slots.find(([lo, hi]) => slot >= lo && slot <= hi);
        if (!range) throw new Error(`no master for slot ${slot}`);
        return range[2][1];
      } finally {
        c.disconnect();
      }
    },
    async kill(port: number) {
      const i = ports.indexOf(port);
      const p = procs[i]!;
      if (p.exitCode !== null || p.signalCode !== null) return;
      const exited = new Promise((r) => p.once('exit', r));
      p.kill('SIGKILL');
      await exited;
    },
    async restart(port: number) {
      const i = ports.indexOf(port);
      procs[i] = spawnNode(port);
      await waitFor(() => ping(port), `redis-server on ${port} again`);
      for (const p of ports)
        await waitFor(
          async () => (await info(p, ['CLUSTER', 'INFO'])).includes('cluster_state:ok'),
          `cluster ok on ${p} after restart`,
        );
    },
    async stop() {
      await Promise.all(
        procs.map((p) => {
          if (p.exitCode !== null) return Promise.resolve();
          const exited = new Promise((r) => p.once('exit', r));
          p.kill('SIGKILL');
          return exited;
        }),
      );
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
