/**
 * requestStreamed (src/providers/request-streamed.ts): a streamed body over `pool.dispatch`, pulled
 * by the consumer. Chunks arrive in order and whole, also for a body many times the pause/resume
 * threshold; destroying the body aborts the upstream call; a reset after the headers is thrown by
 * the iterator; an abort before the headers rejects with its reason.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createPool } from '../../src/providers/http-upstream.js';
import { readAll, requestStreamed } from '../../src/providers/request-streamed.js';
import { type Stub, startStub } from './stub-server.js';

const timeouts = { connect: 1_000, headers: 5_000, body: 5_000 };
const opts = {
  path: '/v1/x',
  method: 'POST' as const,
  headers: { 'content-type': 'application/json' },
  body: '{}',
};

describe('requestStreamed', () => {
  let stub: Stub;
  beforeEach(async () => {
    stub = await startStub();
  });
  afterEach(async () => {
    await stub.close();
  });

  it('resolves at the headers and yields the chunks in order as the upstream writes them', async () => {
    let next!: () => void;
    stub.handler = (_r, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream', 'X-A': 'b' });
      res.write('one|');
      next = () => res.end('two');
    };
    const pool = createPool(stub.origin, timeouts);
    const res = await requestStreamed(pool, opts, new AbortController().signal);
    expect(res.statusCode).toBe(200);
    expect(res.headers['x-a']).toBe('b');
    const it = res.body[Symbol.asyncIterator]();
    // 1. The first write arrives while the upstream still holds the rest.
    expect(Buffer.from((await it.next()).value as Uint8Array).toString()).toBe('one|');
    // 2. Then the rest, then the end.
    next();
    let rest = '';
    for (let r = await it.next(); !r.done; r = await it.next()) rest += Buffer.from(r.value).toString();
    expect(rest).toBe('two');
    await pool.close();
  });

  it('a body many times the pause threshold arrives whole and in order', async () => {
    const part = 'x'.repeat(16 * 1024);
    stub.handler = (_r, res) => {
      res.writeHead(200);
      for (let i = 0; i < 40; i++) res.write(`${i}:${part}`);
      res.end('end');
    };
    const pool = createPool(stub.origin, timeouts);
    const res = await requestStreamed(pool, opts, new AbortController().signal);
    const body = await readAll(res.body, 64 * 1024 * 1024, () => new Error('too large'));
    let want = '';
    for (let i = 0; i < 40; i++) want += `${i}:${part}`;
    expect(body.toString()).toBe(`${want}end`);
    await pool.close();
  });

  it('destroying the body aborts the upstream call', async () => {
    let closed!: () => void;
    const upstreamClosed = new Promise<void>((r) => {
      closed = r;
    });
    stub.handler = (_r, res) => {
      res.writeHead(200);
      res.write('first');
      res.on('close', () => closed());
    };
    const pool = createPool(stub.origin, timeouts);
    const res = await requestStreamed(pool, opts, new AbortController().signal);
    const it = res.body[Symbol.asyncIterator]();
    await it.next();
    res.body.destroy();
    expect(res.body.destroyed).toBe(true);
    await upstreamClosed;
    expect((await it.next()).done).toBe(true);
    await pool.close();
  });

  it('a reset after the headers is thrown by the iterator', async () => {
    stub.handler = (_r, res) => {
      res.writeHead(200);
      res.write('part', () => res.destroy());
    };
    const pool = createPool(stub.origin, timeouts);
    const res = await requestStreamed(pool, opts, new AbortController().signal);
    await expect(readAll(res.body, 1024, () => new Error('too large'))).rejects.toThrow();
    await pool.close();
  });

  it('an abort before the headers rejects with the signal reason; a body over the cap with tooLarge', async () => {
    stub.handler = () => {};
    const pool = createPool(stub.origin, timeouts);
    const ac = new AbortController();
    const p = requestStreamed(pool, opts, ac.signal);
    ac.abort(new Error('client left'));
    await expect(p).rejects.toThrow('client left');
    stub.handler = (_r, res) => {
      res.writeHead(200);
      res.end('y'.repeat(2048));
    };
    const res = await requestStreamed(pool, opts, new AbortController().signal);
    await expect(readAll(res.body, 1024, () => new Error('too large'))).rejects.toThrow('too large');
    await pool.close();
  });
});
