/**
 * Runs a request through the SAME stage lists as the HTTP app, without Fastify: a minimal request
 * and reply shim holds the headers, the status and what was sent. `sluice simulate` uses it to
 * replay traces fast (issue 11); the HTTP path never does. It covers the routes and bodies the
 * pipeline decides on; anything the HTTP layer itself would decide (an unknown route, a body that is
 * not plain JSON, too large, too deep, or with forbidden keys) is reported as `unsupported` so the
 * caller sends it through the real app instead — the shortcut never guesses what Fastify would do.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { ENDPOINT_ACTIONS } from '../../core/authz/actions.js';
import type { Endpoint, Usage } from '../../core/ports.js';
import { clientIpOf } from '../client-ip.js';
import { keyOutcome, requestGate } from '../hardening.js';
import { checkShape } from '../request-checks.js';
import type { WireFormat } from '../wire.js';
import { newContext } from './context.js';
import type { GatewayDeps } from './deps.js';
import { endRequest, finish, runStages, type Stage } from './runner.js';
import { storeWhenEnded } from './stages/cache.js';
import type { StageLists } from './stages.js';

export interface DirectInput {
  /** The request id (what `x-request-id` would carry). */
  id: string;
  method: string;
  /** Path, as on the wire (a query string is ignored). */
  url: string;
  /** Lower-case header names, in the order the client sent them. */
  headers: Record<string, string>;
  /** The JSON body as the client would send it (text); undefined for none. */
  payload?: string;
  /**
   * `JSON.parse(payload)`, when the caller already holds it (the simulator parsed the trace line):
   * used instead of parsing the text again. The text is still what every check reads (type, size,
   * forbidden text); the object gets the same shape check. It must be a value `JSON.parse(payload)`
   * would equal exactly (no -0: JSON writes it as 0). Stages never change a body in place (they
   * replace `ctx.body` with a copy), so the caller's object is left as it was.
   */
  body?: unknown;
  /** The peer address (before X-Forwarded-For through trusted proxies). */
  remoteAddress: string;
}

export interface DirectResult {
  status: number;
  /** What was sent: a refusal's JSON object, a local answer, or the upstream's bytes (a stream is drained). */
  body: unknown;
  /** Resolves once the end stages ran (or the refusal was audited). */
  done: Promise<void>;
}

const MODEL_ROUTES = new Map<string, Endpoint>([
  ['/v1/chat/completions', 'chat'],
  ['/v1/completions', 'completions'],
  ['/v1/embeddings', 'embeddings'],
  ['/v1/images/generations', 'images'],
  ['/v1/responses', 'responses'],
  ['/v1/messages', 'messages'],
]);
const TASK = /^\/v1\/tasks\/([^/]+)$/;
const FORBIDDEN_TEXT = /__proto__|constructor|prototype|\\u/;
const NO_USAGE: Usage = { inputTokens: 0, outputTokens: 0, images: 0 };
const FAKE_APP = { server: {} } as unknown as FastifyInstance;
const RAW_REPLY = {
  writableFinished: false,
  destroyed: false,
  on() {},
  off() {},
  once() {},
};

/** The app's onRequest gate and onResponse hook, built once per deps. */
const hooks = new WeakMap<
  GatewayDeps,
  { gate: ReturnType<typeof requestGate>; outcome: ReturnType<typeof keyOutcome> }
>();
function hooksOf(deps: GatewayDeps) {
  let h = hooks.get(deps);
  if (!h) {
    h = { gate: requestGate(deps), outcome: keyOutcome(deps) };
    hooks.set(deps, h);
  }
  return h;
}
const NOOP = () => {};

/** The reply shim: what the stages set (status, headers) and what was sent. Methods on the prototype: nothing per request but the object. */
class ShimReply {
  statusCode = 200;
  sent = false;
  payload: unknown = undefined;
  readonly hdrs: Record<string, unknown> = {};
  readonly raw = RAW_REPLY;
  code(s: number): this {
    this.statusCode = s;
    return this;
  }
  status(s: number): this {
    this.statusCode = s;
    return this;
  }
  header(k: string, v: unknown): this {
    this.hdrs[k.toLowerCase()] = v;
    return this;
  }
  headers(o: Record<string, unknown>): this {
    for (const k in o) this.hdrs[k.toLowerCase()] = o[k];
    return this;
  }
  getHeader(k: string): unknown {
    return this.hdrs[k.toLowerCase()];
  }
  removeHeader(k: string): this {
    delete this.hdrs[k.toLowerCase()];
    return this;
  }
  type(t: string): this {
    this.hdrs['content-type'] = t;
    return this;
  }
  send(p?: unknown): this {
    this.sent = true;
    this.payload = p;
    return this;
  }
}

function shimReply(): ShimReply & FastifyReply {
  return new ShimReply() as unknown as ShimReply & FastifyReply;
}

/** Which stage list a method and path take, or null when only the HTTP app can answer it. */
function routeOf(
  stages: StageLists,
  method: string,
  path: string,
): {
  stages: readonly Stage[];
  end: readonly Stage[];
  endpoint: Endpoint | null;
  action: string;
  format: WireFormat;
  params: Record<string, string>;
} | null {
  if (method === 'POST') {
    const e = MODEL_ROUTES.get(path);
    if (e)
      return {
        stages: stages.model,
        end: stages.end,
        endpoint: e,
        action: ENDPOINT_ACTIONS[e],
        format: e === 'messages' ? 'anthropic' : 'openai',
        params: {},
      };
    const m = TASK.exec(path);
    if (m) {
      let name: string;
      try {
        name = decodeURIComponent(m[1]!);
      } catch {
        return null;
      }
      return {
        stages: stages.task,
        end: stages.end,
        endpoint: 'chat',
        action: `tasks.${name}`,
        format: 'openai',
        params: { name },
      };
    }
  } else if (method === 'GET') {
    if (path === '/v1/models')
      return {
        stages: stages.models,
        end: [],
        endpoint: null,
        action: 'models.list',
        format: 'openai',
        params: {},
      };
    if (path === '/sluice/v1/me')
      return { stages: stages.me, end: [], endpoint: null, action: 'me.read', format: 'openai', params: {} };
  }
  return null;
}

/**
 * Runs one request directly, or returns 'unsupported' when the HTTP layer would decide it (see the
 * top of this file). `stages` must be the lists the app was built with (`defaultStages()` plus
 * `deps.stages`).
 */
export async function runPipelineDirect(
  deps: GatewayDeps,
  stages: StageLists,
  input: DirectInput,
): Promise<DirectResult | 'unsupported'> {
  const q = input.url.indexOf('?');
  let path = q < 0 ? input.url : input.url.slice(0, q);
  if (path.length > 1 && path.endsWith('/')) path = path.replace(/\/+$/, '');
  const route = routeOf(stages, input.method, path);
  if (!route) return 'unsupported';
  const rt = deps.runtime();
  const h = rt.cfg.hardening;
  let body: unknown;
  const payload = input.method === 'GET' ? undefined : input.payload;
  if (payload !== undefined) {
    const ct = input.headers['content-type'];
    if (
      ct !== 'application/json' &&
      (ct === undefined || ct.split(';')[0]!.trim().toLowerCase() !== 'application/json')
    )
      return 'unsupported';
    if (payload.length === 0 || Buffer.byteLength(payload) > h.maxBodyBytes) return 'unsupported';
    if (FORBIDDEN_TEXT.test(payload)) return 'unsupported';
    body = input.body !== undefined ? input.body : JSON.parse(payload);
    if (
      !checkShape(body, {
        maxDepth: h.maxJsonDepth,
        maxArray: h.maxArrayLength,
        maxString: h.maxStringLength,
      })
    )
      return 'unsupported';
  }
  const rawHeaders: string[] = [];
  for (const k in input.headers) rawHeaders.push(k, input.headers[k]!);
  const request = {
    id: input.id,
    method: input.method,
    url: input.url,
    headers: input.headers,
    params: route.params,
    body,
    protocol: 'http',
    host: input.headers.host ?? 'localhost',
    socket: { remoteAddress: input.remoteAddress },
    raw: { rawHeaders, httpVersionMinor: 1, complete: true, socket: { remoteAddress: input.remoteAddress } },
  } as unknown as FastifyRequest;
  const reply = shimReply();
  reply.header('x-request-id', input.id);
  // The onRequest gate (brute-force budgets, header checks), as the app runs it.
  let passed = false;
  hooksOf(deps).gate.call(FAKE_APP, request, reply, () => {
    passed = true;
  });
  if (!passed) return answered(deps, request, reply, Promise.resolve());
  const ctx = newContext(deps, request, reply, {
    endpoint: route.endpoint,
    action: route.action,
    format: route.format,
    rt,
    ip: clientIpOf(rt, request),
    end: route.end,
  });
  await runStages(ctx, route.stages);
  if (!ctx.replied) {
    if (ctx.response) {
      // respond(), without the socket: the end stages run once the body (or stream) has ended.
      const res = ctx.cache && !ctx.cache.hit ? storeWhenEnded(ctx, ctx.response) : ctx.response;
      ctx.replied = true;
      reply.code(res.status);
      reply.headers(res.headers);
      const end = (usage: Usage) => {
        ctx.detach?.();
        ctx.usage = usage;
        return endRequest(ctx);
      };
      const ended = res.usage.then(end, () => end(NO_USAGE));
      if (res.body instanceof Uint8Array) reply.send(res.body);
      else {
        for await (const _chunk of res.body) {
          // Drained as a client would read it; the bytes themselves are not kept.
        }
        reply.send(undefined);
      }
      await ended;
    } else {
      ctx.replied = true;
      reply.send(ctx.answer ?? null);
      finish(ctx);
    }
  }
  return answered(deps, request, reply, ctx.done);
}

function answered(
  deps: GatewayDeps,
  request: FastifyRequest,
  reply: ShimReply & FastifyReply,
  done: Promise<void>,
): DirectResult {
  // The onResponse hook: key-failure budgets see the status.
  hooksOf(deps).outcome(request, reply, NOOP);
  return { status: reply.statusCode, body: reply.payload, done };
}
