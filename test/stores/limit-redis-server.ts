/**
 * A private redis-server for tests that restart or kill it (never the shared one at 6379): started
 * on a free port, no persistence, killed at the end.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { Redis } from 'ioredis';

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

export interface PrivateRedis {
  port: number;
  /** Starts (or restarts) the server and waits until it answers PING. */
  start(): Promise<void>;
  /** SIGKILL, and waits for the process to exit. */
  kill(): Promise<void>;
}

export function privateRedis(port: number): PrivateRedis {
  let proc: ChildProcess | null = null;
  return {
    port,
    async start() {
      proc = spawn(
        'redis-server',
        ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
        {
          stdio: 'ignore',
        },
      );
      const probe = new Redis({
        port,
        host: '127.0.0.1',
        lazyConnect: true,
        maxRetriesPerRequest: 0,
        retryStrategy: () => null,
      });
      probe.on('error', () => {}); // refused until the server listens
      try {
        for (let i = 0; i < 200; i++) {
          try {
            if (probe.status !== 'ready') await probe.connect();
            await probe.ping();
            return;
          } catch {
            probe.disconnect();
            await new Promise((r) => setTimeout(r, 25));
          }
        }
        throw new Error(`redis-server on ${port} did not start`);
      } finally {
        probe.disconnect();
      }
    },
    async kill() {
      const p = proc;
      proc = null;
      if (!p || p.exitCode !== null) return;
      const exited = new Promise((r) => p.once('exit', r));
      p.kill('SIGKILL');
      await exited;
    },
  };
}
