import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { UpstreamError } from '../../src/core/ports.js';
import { createPool, requestWhole } from '../../src/providers/http-upstream.js';
import { type Stub, startStub } from './stub-server.js';

const timeouts = { connect: 1_000, headers: 2_000, body: 2_000 };
const opts = {
  path: '/v1/x',
  method: 'POST' as const,
  headers: { 'content-type': 'application/json' },
  body: '{}',
};

describe('requestWhole', () => {
  let stub: Stub;
  beforeEach(async () => {
    stub = await startStub();
  });
  afterEach(async () => {
    await stub.close();
  });

  it('collects a body sent in several chunks, with status and lowercased headers', async () => {
    stub.handler = (_r, res) => {
      res.writeHead(201, { 'X-Thing': 'a', 'content-type': 'application/json' });
      res.write('{"a":');
      setImmediate(() => res.end('1}'));
    };
    const pool = createPool(stub.origin, timeouts);
    const res = await requestWhole(pool, opts, new AbortController().signal, 'up');
    expect(res.statusCode).toBe(201);
    expect(res.headers['x-thing']).toBe('a');
    expect(res.body.toString()).toBe('{"a":1}');
    await pool.close();
  });

  it('refuses an answer larger than the cap with a protocol error and closes the connection', async () => {
    stub.handler = (_r, res) => {
      res.writeHead(200);
      res.write('x'.repeat(600));
      // never ends: only the cap can finish this call
    };
    const pool = createPool(stub.origin, timeouts);
    const err = await requestWhole(pool, opts, new AbortController().signal, 'up', 512).catch((e) => e);
    expect(err).toBeInstanceOf(UpstreamError);
    expect(err).toMatchObject({ kind: 'protocol' });
    await stub.requests[0]!.closed;
    await pool.close();
  });

  it('an abort while the body is arriving rejects with the abort, not a transport error', async () => {
    let wrote!: () => void;
    const written = new Promise<void>((r) => {
      wrote = r;
    });
    stub.handler = (_r, res) => {
      res.writeHead(200);
      res.write('{"partial":', () => wrote());
    };
    const pool = createPool(stub.origin, timeouts);
    const ac = new AbortController();
    const p = requestWhole(pool, opts, ac.signal, 'up').catch((e) => e);
    await written;
    ac.abort();
    const err = await p;
    expect(err).not.toBeInstanceOf(UpstreamError);
    await stub.requests[0]!.closed;
    await pool.close();
  });

  it('a body cut short is an UpstreamError', async () => {
    stub.handler = (_r, res) => {
      res.writeHead(200, { 'content-length': '100' });
      res.write('{"partial":');
      setImmediate(() => res.socket?.destroy());
    };
    const pool = createPool(stub.origin, timeouts);
    const err = await requestWhole(pool, opts, new AbortController().signal, 'up').catch((e) => e);
    expect(err).toBeInstanceOf(UpstreamError);
    await pool.close();
  });
});
