/**
 * Listener hardening for the data plane: header size and count caps, timeouts against slow
 * clients, keep-alive and connection caps (total and per client address), a drain mode that
 * refuses new requests in the caller's wire format, and the brute-force gate in front of
 * authentication. Refusals that Node itself produces before Fastify sees a request (headers too
 * large, header or request timeout, unparseable HTTP) are written as well-formed JSON responses
 * from the error catalogue too.
 *
 * `createGateway` spreads `listenerOptions(h)` into its Fastify options, registers the hooks
 * below, and maps store outages (`isStoreUnavailable`) to 503; nothing here listens.
 */
import {
  type IncomingMessage,
  type Server,
  type ServerOptions,
  type ServerResponse,
  STATUS_CODES,
} from 'node:http';
import { createRequire } from 'node:module';
import type { Socket } from 'node:net';
import type {
  FastifyError,
  FastifyInstance,
  FastifyReply,
  FastifyRequest,
  FastifyServerOptions,
  HookHandlerDoneFunction,
} from 'fastify';
import type { SluiceConfig } from '../config/schema.js';
import { type CidrMatcher, compileCidrs, type ParsedIp, parseIp } from '../core/authz/cidr.js';
import { ERRORS, type ErrorCode, refuse } from '../core/errors.js';
import { parseKey } from '../core/keys/api-key.js';
import type { AuthFailureLimiter } from './auth-failures.js';
import { clientIpOf } from './client-ip.js';
import type { GatewayDeps } from './pipeline/deps.js';
import { errorBody, sendRefusal, type WireFormat, wireFormatOf } from './wire.js';

type Hardening = SluiceConfig['hardening'];
type CompilersFactory = NonNullable<
  NonNullable<FastifyServerOptions['schemaController']>['compilersFactory']
>;
type ValidatorFactory = NonNullable<CompilersFactory['buildValidator']>;
type SerializerFactory = NonNullable<CompilersFactory['buildSerializer']>;
type LazySchemaController = {
  compilersFactory: { buildValidator: ValidatorFactory; buildSerializer: SerializerFactory };
};

/** 100 headers: Envoy's default `max_headers_count`; the OpenAI and Anthropic SDKs send about 15. */
export const MAX_HEADER_COUNT = 100;

/**
 * One client address may hold at most this share of `maxConnections` (and never fewer than
 * `MIN_CONNECTIONS_PER_IP`), so one slow-loris host cannot take every slot. Trusted proxies (as
 * configured at start) are exempt: they carry many clients.
 */
export const CONNECTION_SHARE_PER_IP = 0.1;
export const MIN_CONNECTIONS_PER_IP = 8;

/**
 * Addresses in one /24 (IPv4) or /64 (IPv6) share one cap (`hardening.maxConnectionsPerSubnet`,
 * default this share of `maxConnections`): one host usually holds a whole /64 and often many
 * addresses of a /24, so a per-address cap alone does not stop it (issue 21: ten addresses took
 * every slot).
 */
export const CONNECTION_SHARE_PER_SUBNET = 0.25;

/** The /24 (IPv4) or /64 (IPv6) an address belongs to, as a map key. */
export function subnetOf(ip: ParsedIp): string {
  return typeof ip === 'number' ? `4:${ip >>> 8}` : `6:${ip[0]}:${ip[1]}`;
}

/** Drain pass period while closing: sockets that become idle after their last response close at once. */
const DRAIN_SWEEP_MS = 100;

/**
 * The Fastify server options that bound what a client can hold: header bytes, time to send the
 * headers and the whole request, keep-alive idle time; and the handlers for refusals Node
 * (`clientErrorHandler`) and Fastify's router (`frameworkErrors`) produce. Node requires
 * `headersTimeout <= requestTimeout`; the smaller wins. Read once at creation (a listener cannot
 * change them live). Also the schema compilers, loaded on first use (see LAZY_SCHEMA_COMPILERS).
 */
export function listenerOptions(h: Hardening): {
  http: ServerOptions;
  requestTimeout: number;
  keepAliveTimeout: number;
  clientErrorHandler: (err: Error, socket: Socket) => void;
  frameworkErrors: (err: FastifyError, request: FastifyRequest, reply: FastifyReply) => void;
  schemaController: LazySchemaController;
} {
  const headersTimeout = Math.min(h.headersTimeout, h.requestTimeout);
  return {
    http: {
      maxHeaderSize: h.maxHeaderBytes,
      headersTimeout,
      requestTimeout: h.requestTimeout,
      keepAliveTimeout: h.keepAliveTimeout,
      // Node checks the two timeouts on this period (default 30 s): a quarter of the shorter one.
      connectionsCheckingInterval: Math.max(250, Math.min(30_000, Math.floor(headersTimeout / 4))),
      // A missing Host is refused by the gate below in the caller's format, not by Node with an empty 400.
      requireHostHeader: false,
    },
    requestTimeout: h.requestTimeout,
    keepAliveTimeout: h.keepAliveTimeout,
    clientErrorHandler,
    frameworkErrors,
    schemaController: LAZY_SCHEMA_COMPILERS,
  };
}

/**
 * Fastify's schema compilers (ajv and fast-json-stringify, about 110 modules, 2.5 MiB resident),
 * loaded when a route first declares a schema instead of when an app is created: no Sluice route
 * does. Fastify treats a compiler given this way as custom, which changes one thing, for a route with
 * a `headers` schema: the schema's keys are not lower-cased for it.
 */
const LAZY_SCHEMA_COMPILERS: LazySchemaController = (() => {
  // Fastify's own dependencies, resolved from Fastify's package (they need not be hoisted).
  const fastifyRequire = createRequire(createRequire(import.meta.url).resolve('fastify'));
  const lazy = <B extends (...args: never[]) => unknown>(id: string): B => {
    let build: B | undefined;
    return ((...args: Parameters<B>) => {
      build ??= (fastifyRequire(id) as () => B)();
      return build(...args);
    }) as B;
  };
  return {
    compilersFactory: {
      buildValidator: lazy<ValidatorFactory>('@fastify/ajv-compiler'),
      buildSerializer: lazy<SerializerFactory>('@fastify/fast-json-stringify-compiler'),
    },
  };
})();

/**
 * Errors Fastify raises before routing (a target it cannot decode, a path parameter over
 * `maxParamLength`): answered from the catalogue instead of Fastify's own JSON shape.
 */
export function frameworkErrors(err: FastifyError, request: FastifyRequest, reply: FastifyReply): void {
  const r =
    err.code === 'FST_ERR_MAX_PARAM_LENGTH'
      ? refuse('SLUICE_NOT_FOUND')
      : refuse('SLUICE_BAD_REQUEST', 'the request target is not a valid URL');
  sendRefusal(reply, wireFormatOf(request.url), r);
}

/** A complete HTTP/1.1 error response (JSON body, connection closed) for raw sockets. */
export function rawErrorResponse(code: ErrorCode, format: WireFormat): string {
  const status = ERRORS[code].status;
  const body = JSON.stringify(errorBody(format, refuse(code)));
  return (
    `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Error'}\r\n` +
    'content-type: application/json\r\n' +
    `content-length: ${Buffer.byteLength(body)}\r\n` +
    'connection: close\r\n\r\n' +
    body
  );
}

/** The request target of a request line at the start of `raw` (`POST /v1/messages HTTP/1.1`), if any. */
function targetOf(raw: Buffer | undefined): string | undefined {
  if (!raw || raw.length === 0) return undefined;
  const line = raw.subarray(0, Math.min(raw.length, 256)).toString('latin1');
  const m = /^[!-~]{1,32} +(\S+)/.exec(line);
  return m?.[1];
}

/**
 * Answers the errors Node raises on a connection before (or while) Fastify reads a request:
 * 431 SLUICE_HEADERS_TOO_LARGE, 408 SLUICE_REQUEST_TIMEOUT, 400 SLUICE_BAD_REQUEST for HTTP it
 * cannot parse. Writes only when no response has started on the socket (as Node's own handler
 * does), then destroys the socket. The wire format follows the request target when it is known.
 */
export function clientErrorHandler(err: Error & { code?: string; rawPacket?: Buffer }, socket: Socket): void {
  if (err.code === 'ECONNRESET' || socket.destroyed) return;
  const code: ErrorCode =
    err.code === 'HPE_HEADER_OVERFLOW'
      ? 'SLUICE_HEADERS_TOO_LARGE'
      : err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
        ? 'SLUICE_REQUEST_TIMEOUT'
        : 'SLUICE_BAD_REQUEST';
  const s = socket as Socket & {
    _httpMessage?: ServerResponse & { req?: IncomingMessage };
    parser?: { _url?: string };
  };
  const res = s._httpMessage;
  if (socket.writable && !res?.headersSent) {
    const target = res?.req?.url ?? targetOf(err.rawPacket) ?? s.parser?._url ?? '/';
    try {
      socket.write(rawErrorResponse(code, wireFormatOf(target)));
    } catch {
      // The peer is gone; nothing to tell it.
    }
  }
  socket.destroy();
}

/** Servers whose Fastify app is closing: their gate refuses new requests with SLUICE_SHUTTING_DOWN. */
const closing = new WeakSet<Server>();

/** True once `startDrain` ran for this server (the app is closing). */
export function isDraining(server: Server): boolean {
  return closing.has(server);
}

interface PerIpConnections {
  counts: Map<string, number>;
  subnets: Map<string, number>;
  trusted: CidrMatcher;
}

const bump = (m: Map<string, number>, k: string, d: number) => {
  const n = (m.get(k) ?? 0) + d;
  if (n <= 0) m.delete(k);
  else m.set(k, n);
};

/**
 * Minimum body rate: a request whose body arrives slower than `minBodyRate` bytes/s on average, once
 * `minBodyRateAfter` has passed since its headers, is answered 408 SLUICE_REQUEST_TIMEOUT and its
 * connection closed (`requestTimeout` alone let a trickle of 1 byte/s hold a slot for 5 minutes).
 * One sweep timer for all connections; a request is tracked only while its body is being received.
 */
function enforceBodyRate(server: Server, h: Hardening): void {
  if (h.minBodyRate <= 0) return;
  const receiving = new Map<IncomingMessage, { socket: Socket; since: number; bytes0: number }>();
  server.on('request', (req: IncomingMessage) => {
    const hasBody =
      req.headers['content-length'] !== undefined || req.headers['transfer-encoding'] !== undefined;
    if (!hasBody || req.complete) return;
    receiving.set(req, { socket: req.socket, since: performance.now(), bytes0: req.socket.bytesRead });
    // One listener, not one each for 'end', 'close' and the response's 'finish': a request emits
    // 'close' once its response has finished or its connection closed, and a body that ended
    // before that is dropped by the sweep (`req.complete`) before it is ever judged.
    req.once('close', () => receiving.delete(req));
  });
  const period = Math.max(50, Math.min(1000, Math.floor(h.minBodyRateAfter / 4)));
  const sweep = setInterval(() => {
    const now = performance.now();
    for (const [req, r] of receiving) {
      const elapsed = now - r.since;
      if (elapsed < h.minBodyRateAfter) continue;
      if (req.complete) {
        receiving.delete(req);
        continue;
      }
      const rate = ((r.socket.bytesRead - r.bytes0) * 1000) / elapsed;
      if (rate >= h.minBodyRate) continue;
      receiving.delete(req);
      const res = (r.socket as Socket & { _httpMessage?: ServerResponse })._httpMessage;
      if (r.socket.writable && !res?.headersSent) {
        try {
          r.socket.write(rawErrorResponse('SLUICE_REQUEST_TIMEOUT', wireFormatOf(req.url ?? '/')));
        } catch {
          // The peer is gone.
        }
      }
      r.socket.destroy();
    }
  }, period);
  sweep.unref();
  server.once('close', () => clearInterval(sweep));
}

/**
 * `onReady` hook: the connection caps Fastify has no option for (`maxConnections`, a per-address
 * cap, `maxHeadersCount` one past the cap so the gate can see an excess), and answers for the
 * requests Node would otherwise answer with an empty body (CONNECT, an unmet `Expect`).
 */
export function capConnections(h: Hardening, trustedProxies: readonly string[]) {
  return function onReady(this: FastifyInstance, done: HookHandlerDoneFunction): void {
    const server = this.server as Server;
    server.maxConnections = h.maxConnections;
    server.maxHeadersCount = MAX_HEADER_COUNT + 1;
    const perIp = Math.max(MIN_CONNECTIONS_PER_IP, Math.floor(h.maxConnections * CONNECTION_SHARE_PER_IP));
    const perSubnet =
      h.maxConnectionsPerSubnet ??
      Math.max(perIp, Math.floor(h.maxConnections * CONNECTION_SHARE_PER_SUBNET));
    const state: PerIpConnections = {
      counts: new Map(),
      subnets: new Map(),
      trusted: compileCidrs(trustedProxies, { lenient: true }),
    };
    // Before Node's own listener: a socket over the cap is dropped before any parser is attached.
    server.prependListener('connection', (socket: Socket) => {
      const addr = socket.remoteAddress ?? '';
      const parsed = parseIp(addr);
      if (parsed !== null && state.trusted.size > 0 && state.trusted.hasParsed(parsed)) return;
      const net = parsed === null ? `?${addr}` : subnetOf(parsed);
      if ((state.counts.get(addr) ?? 0) + 1 > perIp || (state.subnets.get(net) ?? 0) + 1 > perSubnet) {
        socket.destroy();
        return;
      }
      bump(state.counts, addr, 1);
      bump(state.subnets, net, 1);
      socket.once('close', () => {
        bump(state.counts, addr, -1);
        bump(state.subnets, net, -1);
      });
    });
    enforceBodyRate(server, h);
    server.on('connect', (req: IncomingMessage, socket: Socket) => {
      if (socket.writable)
        socket.write(rawErrorResponse('SLUICE_METHOD_NOT_ALLOWED', wireFormatOf(req.url ?? '/')));
      socket.destroy();
    });
    server.on('checkExpectation', (req: IncomingMessage, res: ServerResponse) => {
      const format = wireFormatOf(req.url ?? '/');
      const body = JSON.stringify(
        errorBody(format, refuse('SLUICE_BAD_REQUEST', 'unsupported Expect header', { param: 'expect' })),
      );
      res.writeHead(417, { 'content-type': 'application/json', connection: 'close' });
      res.end(body);
    });
    done();
  };
}

/**
 * `preClose` hook: from now on the gate refuses new requests (503 SLUICE_SHUTTING_DOWN,
 * `connection: close`), and sockets close as soon as their in-flight response ends instead of
 * idling until the keep-alive timeout.
 */
export function startDrain(this: FastifyInstance, done: HookHandlerDoneFunction): void {
  const server = this.server as Server;
  closing.add(server);
  const sweep = setInterval(() => server.closeIdleConnections?.(), DRAIN_SWEEP_MS);
  sweep.unref();
  server.once('close', () => clearInterval(sweep));
  done();
}

/** Paths answered without authentication; the brute-force gate leaves them alone. */
function isPublic(url: string): boolean {
  return url === '/healthz' || url === '/readyz' || url.startsWith('/.well-known/');
}

/** The Sluice API key a request presents (Bearer or `x-api-key`), if it is one. */
function presentedKey(request: FastifyRequest): string | undefined {
  const auth = request.headers.authorization;
  if (typeof auth === 'string') {
    return auth.length > 7 && auth.slice(0, 7).toLowerCase() === 'bearer ' ? auth.slice(7).trim() : undefined;
  }
  const x = request.headers['x-api-key'];
  return typeof x === 'string' ? x.trim() : undefined;
}

type Gate = NonNullable<GatewayDeps['authFailures']> &
  Partial<Pick<AuthFailureLimiter, 'watchingIps' | 'watchingKeys' | 'checkKey' | 'failKey' | 'passKey'>>;

/**
 * `onRequest` hook, first in line: drain refusals, header count cap, required Host, and the
 * brute-force gate (an IP or key id over its failure budget is refused before the body is even
 * read). Costs two Map size reads when nobody is failing.
 */
export function requestGate(deps: Pick<GatewayDeps, 'authFailures' | 'runtime'>) {
  return function gate(
    this: FastifyInstance,
    request: FastifyRequest,
    reply: FastifyReply,
    done: HookHandlerDoneFunction,
  ): void {
    const format = wireFormatOf(request.url);
    if (closing.has(this.server as Server)) {
      reply.header('connection', 'close');
      sendRefusal(
        reply,
        format,
        refuse('SLUICE_SHUTTING_DOWN', undefined, { headers: { 'retry-after': '1' } }),
      );
      return;
    }
    if (request.raw.rawHeaders.length > 2 * MAX_HEADER_COUNT) {
      sendRefusal(reply, format, refuse('SLUICE_HEADERS_TOO_LARGE', `more than ${MAX_HEADER_COUNT} headers`));
      return;
    }
    if (!request.headers.host && request.raw.httpVersionMinor === 1) {
      sendRefusal(
        reply,
        format,
        refuse('SLUICE_BAD_REQUEST', 'the Host header is required', { param: 'host' }),
      );
      return;
    }
    const gate = deps.authFailures as Gate | undefined;
    if (gate && !isPublic(request.url)) {
      if (gate.watchingIps?.() !== false) {
        const rt = deps.runtime();
        const ip = clientIpOf(rt, request);
        const r = gate.check(ip);
        if (r) {
          sendRefusal(reply, format, r);
          return;
        }
      }
      if (gate.watchingKeys?.() && gate.checkKey) {
        const presented = presentedKey(request);
        const parsed = presented ? parseKey(presented) : undefined;
        const r = parsed && presented ? gate.checkKey(parsed.id, presented) : null;
        if (r) {
          sendRefusal(reply, format, r);
          return;
        }
      }
    }
    done();
  };
}

/**
 * `onResponse` hook: counts a 401 against the key id it presented, and remembers a credential that
 * authenticated while its key id was being attacked (so the owner is never locked out).
 */
export function keyOutcome(deps: Pick<GatewayDeps, 'authFailures'>) {
  return function outcome(request: FastifyRequest, reply: FastifyReply, done: HookHandlerDoneFunction): void {
    const gate = deps.authFailures as Gate | undefined;
    const status = reply.statusCode;
    if (gate?.failKey && (status === 401 || (status < 400 && gate.watchingKeys?.()))) {
      const presented = presentedKey(request);
      const parsed = presented ? parseKey(presented) : undefined;
      if (parsed && presented) {
        if (status === 401) gate.failKey(parsed.id);
        else gate.passKey?.(parsed.id, presented);
      }
    }
    done();
  };
}

/** `onClose` hook: the brute-force limiter emits its open windows' summaries before the audit flush. */
export function closeAuthFailures(deps: Pick<GatewayDeps, 'authFailures'>) {
  return function onClose(_app: FastifyInstance, done: HookHandlerDoneFunction): void {
    (deps.authFailures as { close?: () => void } | undefined)?.close?.();
    done();
  };
}

/** Moved to src/stores/store-errors.ts; re-exported for existing importers. */
export { isStoreUnavailable } from '../stores/store-errors.js';
