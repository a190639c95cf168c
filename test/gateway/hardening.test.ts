import { connect, type Socket } from 'node:net';
import Fastify, { type FastifyInstance } from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import { ConfigSchema, type SluiceConfig } from '../../src/config/schema.js';
import { AuthFailureLimiter } from '../../src/gateway/auth-failures.js';
import {
  capConnections,
  clientErrorHandler,
  isDraining,
  isStoreUnavailable,
  keyOutcome,
  listenerOptions,
  MAX_HEADER_COUNT,
  rawErrorResponse,
  requestGate,
  startDrain,
} from '../../src/gateway/hardening.js';
import { waitFor } from '../helpers/wait.js';

function hardening(over: Record<string, unknown> = {}): SluiceConfig['hardening'] {
  return ConfigSchema.parse({
    upstreams: [{ name: 'm', kind: 'mock' }],
    models: [{ match: '*', upstream: 'm' }],
    tiers: { default: {} },
    hardening: over,
  }).hardening;
}

/** A socket stand-in that records what the handler wrote. */
function fakeSocket(extra: Record<string, unknown> = {}) {
  const written: string[] = [];
  let destroyed = false;
  const s = {
    writable: true,
    get destroyed() {
      return destroyed;
    },
    write: (d: string) => {
      written.push(d);
      return true;
    },
    destroy: () => {
      destroyed = true;
    },
    ...extra,
  };
  return { socket: s as unknown as Socket, written, isDestroyed: () => destroyed };
}

function parseRaw(raw: string): { status: number; headers: string; body: unknown } {
  const [head, body] = raw.split('\r\n\r\n');
  const status = Number(/^HTTP\/1\.1 (\d{3}) /.exec(head!)![1]);
  expect(head).toMatch(new RegExp(`content-length: ${Buffer.byteLength(body!)}\\r\\n`));
  return { status, headers: head!, body: JSON.parse(body!) };
}

describe('listenerOptions', () => {
  it('passes the configured caps to Node, headersTimeout never above requestTimeout', () => {
    const o = listenerOptions(
      hardening({
        maxHeaderBytes: 8192,
        headersTimeout: '20s',
        requestTimeout: '5s',
        keepAliveTimeout: '3s',
      }),
    );
    expect(o.http).toMatchObject({ maxHeaderSize: 8192, headersTimeout: 5000, requestTimeout: 5000 });
    expect(o.requestTimeout).toBe(5000);
    expect(o.keepAliveTimeout).toBe(3000);
    expect(o.http.connectionsCheckingInterval).toBe(1250);
  });

  it('schema compilers load on first use: a route with body and response schemas still validates and serializes', async () => {
    const app = Fastify({ logger: false, ...listenerOptions(hardening()) });
    app.post(
      '/s',
      {
        schema: {
          body: { type: 'object', required: ['n'], properties: { n: { type: 'integer' } } },
          response: { 200: { type: 'object', properties: { twice: { type: 'integer' } } } },
        },
      },
      async (req) => ({ twice: (req.body as { n: number }).n * 2, dropped: 'not in the schema' }),
    );
    const bad = await app.inject({ method: 'POST', url: '/s', payload: { n: 'x' } });
    expect(bad.statusCode).toBe(400);
    const ok = await app.inject({ method: 'POST', url: '/s', payload: { n: 21 } });
    expect(ok.statusCode).toBe(200);
    expect(ok.json()).toEqual({ twice: 42 });
    await app.close();
  });
});

describe('clientErrorHandler', () => {
  it('431 in the Anthropic shape when the request line names /v1/messages', () => {
    const { socket, written, isDestroyed } = fakeSocket();
    const err = Object.assign(new Error('overflow'), {
      code: 'HPE_HEADER_OVERFLOW',
      rawPacket: Buffer.from('POST /v1/messages HTTP/1.1\r\nx-big: aaaa'),
    });
    clientErrorHandler(err, socket);
    const r = parseRaw(written.join(''));
    expect(r.status).toBe(431);
    expect(r.body).toEqual({
      type: 'error',
      error: { type: 'invalid_request_error', message: expect.stringContaining('SLUICE_HEADERS_TOO_LARGE') },
    });
    expect(isDestroyed()).toBe(true);
  });

  it('408 in the OpenAI shape for a request that timed out with its body half sent', () => {
    const { socket, written } = fakeSocket({
      _httpMessage: { headersSent: false, req: { url: '/v1/chat/completions' } },
    });
    clientErrorHandler(Object.assign(new Error('t'), { code: 'ERR_HTTP_REQUEST_TIMEOUT' }), socket);
    const r = parseRaw(written.join(''));
    expect(r.status).toBe(408);
    expect(r.body).toMatchObject({
      error: { code: 'SLUICE_REQUEST_TIMEOUT', type: 'invalid_request_error' },
    });
  });

  it('writes nothing over a response already started (it would corrupt it), and nothing on a reset', () => {
    const started = fakeSocket({ _httpMessage: { headersSent: true, req: { url: '/v1/messages' } } });
    clientErrorHandler(Object.assign(new Error('t'), { code: 'ERR_HTTP_REQUEST_TIMEOUT' }), started.socket);
    expect(started.written).toEqual([]);
    expect(started.isDestroyed()).toBe(true);
    const reset = fakeSocket();
    clientErrorHandler(Object.assign(new Error('r'), { code: 'ECONNRESET' }), reset.socket);
    expect(reset.written).toEqual([]);
  });

  it('400 SLUICE_BAD_REQUEST for HTTP the parser refuses', () => {
    const { socket, written } = fakeSocket();
    clientErrorHandler(Object.assign(new Error('bad'), { code: 'HPE_INVALID_METHOD' }), socket);
    expect(parseRaw(written.join('')).body).toMatchObject({ error: { code: 'SLUICE_BAD_REQUEST' } });
  });

  it('rawErrorResponse is a complete response with a correct content-length', () => {
    const r = parseRaw(rawErrorResponse('SLUICE_REQUEST_TIMEOUT', 'openai'));
    expect(r.headers).toContain('connection: close');
  });
});

describe('the request gate', () => {
  let app: FastifyInstance | undefined;
  afterEach(async () => {
    await app?.close();
    app = undefined;
  });

  function build(limiter?: AuthFailureLimiter) {
    const h = hardening();
    const deps = {
      authFailures: limiter,
      runtime: () => ({ access: { clientIp: (remote: string) => remote } }) as never,
    };
    const a = Fastify({ ...listenerOptions(h), return503OnClosing: false });
    a.addHook('onReady', capConnections(h, []));
    a.addHook('preClose', startDrain);
    a.addHook('onRequest', requestGate(deps));
    a.addHook('onResponse', keyOutcome(deps));
    a.get('/healthz', async () => ({ ok: true }));
    a.post('/v1/messages', async (req, reply) => {
      const ok =
        req.headers.authorization === 'Bearer sk-sluice-AAAAAAAAAAAA-goodgoodgoodgoodgoodgoodgoodgood';
      return reply.code(ok ? 200 : 401).send({ ok });
    });
    app = a;
    return a;
  }

  it(`refuses more than ${MAX_HEADER_COUNT} headers with 431 in the caller's format`, async () => {
    const a = build();
    const headers: Record<string, string> = {};
    for (let i = 0; i < MAX_HEADER_COUNT + 5; i++) headers[`x-h${i}`] = '1';
    const r = await a.inject({ method: 'POST', url: '/v1/messages', headers, payload: {} });
    expect(r.statusCode).toBe(431);
    expect(r.json()).toMatchObject({
      type: 'error',
      error: { message: expect.stringContaining('HEADERS_TOO_LARGE') },
    });
    const few = await a.inject({ method: 'GET', url: '/healthz', headers: { 'x-a': '1' } });
    expect(few.statusCode).toBe(200);
  });

  it('refuses an IP over its failure budget before the handler, 429 with Retry-After', async () => {
    const limiter = new AuthFailureLimiter({
      budget: () => ({ perIp: 2, window: 60_000 }),
      clock: { now: () => 0 },
      sweepEveryMs: 0,
    });
    const a = build(limiter);
    limiter.fail('127.0.0.1');
    limiter.fail('127.0.0.1');
    const r = await a.inject({ method: 'POST', url: '/v1/messages', payload: {} });
    expect(r.statusCode).toBe(429);
    expect(r.headers['retry-after']).toBe('60');
    expect(r.json().error.message).toContain('SLUICE_TOO_MANY_AUTH_FAILURES');
    // Health checks are not authenticated and stay open.
    expect((await a.inject({ method: 'GET', url: '/healthz' })).statusCode).toBe(200);
  });

  it('counts 401s per key id and keeps letting the owner in', async () => {
    // Each attempt comes from a new address: only the key-id budget (3) can bind.
    const keyBudget = new AuthFailureLimiter({
      budget: () => ({ perIp: 3, window: 60_000 }),
      clock: { now: () => 0 },
      sweepEveryMs: 0,
    });
    const a = build(keyBudget);
    const call = (secret: string, ip = '127.0.0.1') =>
      a.inject({
        method: 'POST',
        url: '/v1/messages',
        remoteAddress: ip,
        headers: { authorization: `Bearer sk-sluice-AAAAAAAAAAAA-${secret}` },
        payload: {},
      });
    const bad = 'b'.repeat(32);
    const good = 'goodgoodgoodgoodgoodgoodgoodgood';
    expect((await call(bad, '10.0.0.1')).statusCode).toBe(401);
    expect((await call(good)).statusCode).toBe(200); // the owner, during the attack
    expect((await call(bad, '10.0.0.2')).statusCode).toBe(401);
    expect((await call(bad, '10.0.0.3')).statusCode).toBe(401);
    const refused = await call(bad, '10.0.0.4');
    expect(refused.statusCode).toBe(429);
    expect((await call(good, '10.0.0.5')).statusCode).toBe(200);
  });

  it('while closing, new requests get 503 SLUICE_SHUTTING_DOWN and connection: close', async () => {
    const a = build();
    await a.listen({ port: 0, host: '127.0.0.1' });
    const port = (a.server.address() as { port: number }).port;
    // A keep-alive connection opened before the close keeps sending requests.
    const sock = connect(port, '127.0.0.1');
    await new Promise((r) => sock.once('connect', r));
    let got = '';
    sock.on('data', (d) => (got += d));
    const closing = a.close();
    // The preClose hook has run: from now on the gate refuses new requests.
    await waitFor(() => isDraining(a.server), { intervalMs: 1, what: 'the app to start draining' });
    sock.write(
      'POST /v1/messages HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}',
    );
    await new Promise((r) => sock.once('close', r));
    await closing;
    app = undefined;
    expect(got).toMatch(/^HTTP\/1\.1 503 /);
    expect(got.toLowerCase()).toContain('connection: close');
    expect(got).toContain('SLUICE_SHUTTING_DOWN');
  });

  it('caps connections per client address; other addresses still connect', async () => {
    const h = hardening({ maxConnections: 80 }); // 10% share: 8 per address
    const a = Fastify({ ...listenerOptions(h) });
    a.addHook('onReady', capConnections(h, []));
    a.get('/healthz', async () => ({ ok: true }));
    app = a;
    await a.listen({ port: 0, host: '127.0.0.1' });
    const port = (a.server.address() as { port: number }).port;
    const open = (localAddress: string) =>
      new Promise<{ socket: Socket; closedEarly: Promise<boolean> }>((resolve) => {
        const socket = connect({ port, host: '127.0.0.1', localAddress });
        socket.on('error', () => {});
        // Dropped at accept: closed without an answer. Kept: a request on it is answered.
        const closedEarly = new Promise<boolean>((r) => {
          socket.once('close', () => r(true));
          socket.once('data', () => r(false));
        });
        socket.once('connect', () => {
          socket.write('GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n');
          resolve({ socket, closedEarly });
        });
      });
    const hog = await Promise.all(Array.from({ length: 12 }, () => open('127.0.0.2')));
    const dropped = (await Promise.all(hog.map((c) => c.closedEarly))).filter(Boolean).length;
    expect(dropped).toBe(4);
    const other = await open('127.0.0.3');
    expect(await other.closedEarly).toBe(false);
    for (const c of [...hog, other]) c.socket.destroy();
  });
});

describe('isStoreUnavailable', () => {
  const err = (code: string, message = 'x') => Object.assign(new Error(message), { code });
  it.each([
    ['a refused connection', err('ECONNREFUSED')],
    ['SQLite busy', err('SQLITE_BUSY', 'database is locked')],
    ['SQLite busy (extended code)', err('SQLITE_BUSY_SNAPSHOT')],
    ['PostgreSQL: the database is gone', err('3D000', 'database "x" does not exist')],
    ['PostgreSQL: terminated by an administrator', err('57P01')],
    ['PostgreSQL: connection exception class', err('08006')],
    ['pg: connection terminated', new Error('Connection terminated unexpectedly')],
    ['a wrapped cause', Object.assign(new Error('query failed'), { cause: err('ECONNRESET') })],
    ['an AggregateError of connects', Object.assign(new AggregateError([err('ECONNREFUSED')], 'all failed'))],
  ])('recognises %s', (_name, e) => {
    expect(isStoreUnavailable(e)).toBe(true);
  });
  it.each([
    ['a programming error', new TypeError('x is not a function')],
    ['a constraint violation', err('23505', 'duplicate key value')],
    ['SQLite constraint', err('SQLITE_CONSTRAINT_PRIMARYKEY')],
    ['not an error', 'ECONNREFUSED'],
  ])('does not mistake %s for an outage', (_name, e) => {
    expect(isStoreUnavailable(e)).toBe(false);
  });
});

describe('frameworkErrors', () => {
  it('a target Fastify cannot decode, and an over-long path parameter, come back from the catalogue', async () => {
    const a = Fastify({ ...listenerOptions(hardening()), maxParamLength: 10 });
    a.get('/v1/tasks/:name', async () => ({ ok: true }));
    a.get('/v1/messages/x', async () => ({ ok: true }));
    const bad = await a.inject({ method: 'GET', url: '/v1/messages/%C0%AF' });
    expect(bad.statusCode).toBe(400);
    expect(bad.json()).toMatchObject({
      type: 'error',
      error: { message: expect.stringContaining('SLUICE_BAD_REQUEST') },
    });
    const long = await a.inject({ method: 'GET', url: `/v1/tasks/${'x'.repeat(50)}` });
    expect(long.statusCode).toBe(404);
    expect(long.json().error.code).toBe('SLUICE_NOT_FOUND');
    await a.close();
  });
});
