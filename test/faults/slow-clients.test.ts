/**
 * Slow clients cannot hold the door (issue 21: ten addresses trickling 1 byte/s held every slot of
 * `maxConnections: 100` and locked everyone else out for 5 minutes).
 *
 * Ten trickling addresses, each holding 10 connections with a POST whose body never arrives:
 *   A. all in one /24 (127.0.0.1-10): the per-subnet cap (a quarter of maxConnections) leaves room,
 *      so a caller from another /24 is served while they trickle;
 *   B. in ten different /24s (127.1.N.1): together they hold every slot, and the minimum body rate
 *      (here 1000 B/s after 500 ms) answers them 408 SLUICE_REQUEST_TIMEOUT and closes them; the
 *      caller is then served.
 */
import { connect, type Socket } from 'node:net';
import { fetch as undiciFetch } from 'undici';
import { afterAll, describe, expect, it } from 'vitest';
import { createKey, type SluiceProcess, startSluice, tempDir, writeConfig } from '../e2e/harness.js';
import { agentFrom } from './support.js';

const procs: SluiceProcess[] = [];
const sockets: Socket[] = [];
afterAll(async () => {
  for (const s of sockets) s.destroy();
  for (const p of procs) await p.stop();
});

interface Trickler {
  socket: Socket;
  /** Resolves with what the server wrote before closing the connection. */
  closed: Promise<string>;
}

/** Opens a connection from `localAddress`, sends a POST's headers and then one body byte every 100 ms. */
function trickle(port: number, localAddress: string, key: string): Trickler {
  const socket = connect({ host: '127.0.0.1', port, localAddress });
  sockets.push(socket);
  let got = '';
  socket.on('data', (d) => (got += d));
  socket.on('error', () => {});
  const closed = new Promise<string>((resolve) => socket.on('close', () => resolve(got)));
  socket.on('connect', () => {
    socket.write(
      'POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n' +
        `Authorization: Bearer ${key}\r\nContent-Length: 100000\r\n\r\n`,
    );
    const t = setInterval(() => {
      if (socket.destroyed) clearInterval(t);
      else socket.write(' ');
    }, 100);
    socket.on('close', () => clearInterval(t));
  });
  return { socket, closed };
}

async function start(extra: string): Promise<{ s: SluiceProcess; key: string; port: number }> {
  const dir = tempDir('sluice-slow-');
  const config = writeConfig(
    dir,
    `upstreams: [{ name: local, kind: mock }]
models: [{ match: "*", upstream: local }]
tiers: { default: {} }
hardening: { maxConnections: 100, ${extra} }
`,
  );
  const s = await startSluice({ config, dataDir: dir });
  procs.push(s);
  const { key } = await createKey(s);
  return { s, key, port: Number(new URL(s.url).port) };
}

/** One chat call from `localAddress`; the status, or 'refused' when the connection was dropped. */
async function callFrom(url: string, key: string, localAddress: string): Promise<number | 'refused'> {
  const agent = agentFrom(localAddress, 1);
  try {
    const r = await undiciFetch(`${url}/v1/chat/completions`, {
      method: 'POST',
      dispatcher: agent,
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'demo-model', messages: [{ role: 'user', content: 'hi' }] }),
      signal: AbortSignal.timeout(5000),
    });
    await r.text();
    return r.status;
  } catch {
    return 'refused';
  } finally {
    await agent.close().catch(() => {});
  }
}

/** Resolves once `n` sockets got their TCP connection (whether the server keeps them or not). */
const connected = (ts: Trickler[]) =>
  Promise.all(
    ts.map(
      (t) => new Promise<void>((r) => (t.socket.connecting ? t.socket.once('connect', () => r()) : r())),
    ),
  );

describe('slow clients', () => {
  it('A: ten trickling addresses in one /24 share its cap; a caller from another /24 is served', async () => {
    const { s, key, port } = await start('minBodyRate: 0');
    const ts: Trickler[] = [];
    for (let a = 1; a <= 10; a++) for (let i = 0; i < 10; i++) ts.push(trickle(port, `127.0.0.${a}`, key));
    await connected(ts);
    // 1. The server keeps at most 25 of the 100 (the /24's share); the rest are closed at once, unanswered.
    const dropped = await Promise.all(
      ts.map((t) =>
        Promise.race([t.closed.then(() => 1), new Promise<number>((r) => setTimeout(() => r(0), 1500))]),
      ),
    );
    const kept = ts.length - dropped.reduce((a, b) => a + b, 0);
    expect(kept).toBe(25);
    // 2. Someone else is served while the 25 still trickle.
    expect(await callFrom(s.url, key, '127.0.1.1')).toBe(200);
    expect(ts.filter((t) => !t.socket.destroyed).length).toBe(25);
    for (const t of ts) t.socket.destroy();
  }, 60_000);

  it('B: ten trickling /24s hold every slot until the minimum body rate closes them; then a caller is served', async () => {
    const { s, key, port } = await start('minBodyRate: 1000, minBodyRateAfter: 500ms');
    const ts: Trickler[] = [];
    for (let a = 1; a <= 10; a++) for (let i = 0; i < 10; i++) ts.push(trickle(port, `127.1.${a}.1`, key));
    await connected(ts);
    // 1. Every trickler is closed; those the server had accepted (all but the few over maxConnections
    //    at accept time, when another connection such as the harness's keep-alive held a slot) were
    //    answered 408 SLUICE_REQUEST_TIMEOUT first. None waits for requestTimeout.
    const answers = await Promise.all(ts.map((t) => t.closed));
    const timedOut = answers.filter(
      (a) => /^HTTP\/1\.1 408 /.test(a) && a.includes('SLUICE_REQUEST_TIMEOUT'),
    );
    expect(timedOut.length).toBeGreaterThanOrEqual(95);
    expect(answers.filter((a) => a !== '' && !timedOut.includes(a))).toEqual([]);
    // 2. The door is open again.
    expect(await callFrom(s.url, key, '127.2.0.1')).toBe(200);
  }, 60_000);
});
