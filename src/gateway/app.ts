/**
 * The data plane. `createGateway(deps)` builds a Fastify app and never listens; `main.ts` does.
 *
 * Pipeline per model call: parse -> authenticate -> context checks + authorize -> limit (reserve)
 * -> forward -> settle -> record. Each stage returns a Refusal value to stop; only `sendRefusal`
 * turns it into HTTP, in the caller's wire format.
 */
import { randomUUID } from 'node:crypto';
import { Readable } from 'node:stream';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import type { AbuseHooks } from '../abuse/engine.js';
import { ENDPOINT_ACTIONS } from '../core/authz/actions.js';
import { ERRORS, type ErrorCode, type Refusal, refuse } from '../core/errors.js';
import type {
  AuditDecision,
  AuditSink,
  BucketState,
  Clock,
  Endpoint,
  LimitBucket,
  LimitStore,
  Reservation,
  Upstream,
  UpstreamResponse,
  Usage,
  UsageRecord,
} from '../core/ports.js';
import { UpstreamError } from '../core/ports.js';
import { lastUserText } from '../providers/prompt-text.js';
import type { Admission } from './admission.js';
import { isRefusal, type KeyAuthenticator, type Principal } from './auth.js';
import { clientIpOf } from './client-ip.js';
import {
  capConnections,
  closeAuthFailures,
  isStoreUnavailable,
  keyOutcome,
  listenerOptions,
  requestGate,
  startDrain,
} from './hardening.js';
import { checkBody, hardenJsonParser } from './request-checks.js';
import type { RequestFacts, Runtime } from './runtime.js';
import { sendRefusal, sseErrorEvent, type WireFormat, wireFormatOf } from './wire.js';

export interface TokenVerifier {
  /** Verifies a JWT access token presented on the data plane; resolves to a principal or a refusal. */
  verify(
    token: string,
    req: { method: string; url: string; dpop: string | undefined; scheme: string },
  ): Promise<Principal | Refusal>;
}

export interface GatewayDeps {
  runtime: () => Runtime;
  auth: KeyAuthenticator;
  tokens?: TokenVerifier;
  limits: LimitStore;
  upstreams: Map<string, Upstream>;
  audit: AuditSink;
  usage: { record(r: UsageRecord): void };
  clock: Clock;
  logger: Logger;
  /** Readiness and degradation, for /readyz. */
  health: () => { ready: boolean; degraded: string[] };
  /** Optional extra data-plane routes (tokens, JWKS) registered by other modules. */
  plugins?: ((app: FastifyInstance, deps: GatewayDeps) => void)[];
  /** Called with each request's outcome, for metrics. */
  observe?: (o: Outcome) => void;
  /** Serve HTTPS with this certificate and key (`server.tls`); HTTP/1.1 keep-alive as with plain HTTP. */
  tls?: { cert: Buffer; key: Buffer };
  /** Aborted on a forced shutdown (second SIGTERM or deadline): open streams end with an error event. */
  forceEnd?: AbortSignal;
  /** Counts failed authentications per client IP; returns a refusal when an IP is over its budget. */
  authFailures?: { check(ip: string): Refusal | null; fail(ip: string): void };
  /** Records that a key was used (batched into one write by the caller; never on the request path). */
  touch?: (keyId: string, ip: string, at: number) => void;
  /** Sees every reservation's bucket states (allowed or denied): limit-crossing alerts, utilisation metrics. */
  onLimitStates?: (p: Principal, buckets: LimitBucket[], states: BucketState[]) => void;
  /** Upstream capacity and fair share, queueing (tier `queue`), upstream feedback; without it, plain reserves. */
  admission?: Admission;
  /** Abuse detection and quarantine (src/abuse/engine.ts): `check` in context checks, `observe` at record. */
  abuse?: AbuseHooks;
}

export interface Outcome {
  action: string;
  decision: AuditDecision;
  reason: string;
  tenantId: string | null;
  model: string | null;
  status: number;
  usage?: Usage;
  usd?: number;
  stageMs?: Record<string, number>;
  upstream?: string;
  upstreamMs?: number;
}

const ACTIONS: Record<Endpoint, string> = ENDPOINT_ACTIONS;

const ENDPOINT_PATHS: [Endpoint, string][] = [
  ['chat', '/v1/chat/completions'],
  ['completions', '/v1/completions'],
  ['embeddings', '/v1/embeddings'],
  ['images', '/v1/images/generations'],
  ['responses', '/v1/responses'],
  ['messages', '/v1/messages'],
];

/** Caller headers worth forwarding upstream; everything else (credentials included) stays here. */
const FORWARD_HEADERS = ['anthropic-version', 'anthropic-beta', 'openai-beta'];

/** Upstream calls still waiting for headers, per gateway: a forced shutdown aborts them. */
const waitingSets = new WeakMap<GatewayDeps, Set<AbortController>>();

export function createGateway(deps: GatewayDeps): FastifyInstance {
  const waiting = new Set<AbortController>();
  waitingSets.set(deps, waiting);
  deps.forceEnd?.addEventListener('abort', () => {
    for (const ac of waiting) ac.abort();
  });
  const initial = deps.runtime().cfg;
  const app = Fastify({
    logger: false,
    bodyLimit: initial.hardening.maxBodyBytes,
    genReqId: (req) => {
      const given = req.headers['x-request-id'];
      return typeof given === 'string' && /^[A-Za-z0-9._:-]{1,128}$/.test(given) ? given : randomUUID();
    },
    requestIdHeader: false,
    // Draining is refused by the gate below, in the caller's wire format.
    return503OnClosing: false,
    forceCloseConnections: false,
    routerOptions: { ignoreTrailingSlash: true },
    ...withTls(listenerOptions(initial.hardening), deps.tls),
  });
  hardenJsonParser(app, initial.hardening);
  app.addHook('onReady', capConnections(initial.hardening, initial.trustedProxies));
  app.addHook('preClose', startDrain);
  app.addHook('onRequest', requestGate(deps));
  app.addHook('onResponse', keyOutcome(deps));
  app.addHook('onClose', closeAuthFailures(deps));

  app.setErrorHandler((err: Error & { code?: string; statusCode?: number }, request, reply) => {
    const format = wireFormatOf(request.url);
    const code: ErrorCode =
      err.code === 'FST_ERR_CTP_BODY_TOO_LARGE'
        ? 'SLUICE_BODY_TOO_LARGE'
        : err.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE'
          ? 'SLUICE_UNSUPPORTED_MEDIA_TYPE'
          : err.code === 'FST_ERR_CTP_EMPTY_JSON_BODY' || err.code === 'FST_ERR_CTP_INVALID_JSON_BODY'
            ? 'SLUICE_BAD_JSON'
            : err.code === 'SLUICE_JSON_TOO_DEEP' ||
                err.code === 'SLUICE_BAD_UTF8' ||
                err.code === 'SLUICE_BAD_JSON'
              ? (err.code as ErrorCode)
              : err instanceof SyntaxError
                ? 'SLUICE_BAD_JSON'
                : err.statusCode && err.statusCode >= 400 && err.statusCode < 500
                  ? 'SLUICE_BAD_REQUEST'
                  : isStoreUnavailable(err)
                    ? 'SLUICE_STORE_UNAVAILABLE'
                    : 'SLUICE_INTERNAL';
    if (code === 'SLUICE_INTERNAL') deps.logger.error({ err, reqId: request.id }, 'unhandled error');
    if (code === 'SLUICE_STORE_UNAVAILABLE') {
      // A store outage, not a bug: a short log line, and the caller is told when to retry.
      deps.logger.error({ err: err.message, reqId: request.id }, 'store unavailable');
      return sendRefusal(reply, format, refuse(code, undefined, { headers: { 'retry-after': '1' } }));
    }
    return sendRefusal(reply, format, refuse(code));
  });
  app.setNotFoundHandler((request, reply) => {
    const known = ENDPOINT_PATHS.some(([, p]) => p === request.url.split('?')[0]);
    return sendRefusal(
      reply,
      wireFormatOf(request.url),
      refuse(known ? 'SLUICE_METHOD_NOT_ALLOWED' : 'SLUICE_NOT_FOUND'),
    );
  });
  // Synchronous hook: an async onSend would cost a promise on every response.
  app.addHook('onRequest', (request, reply, done) => {
    reply.header('x-request-id', request.id);
    done();
  });

  app.get('/healthz', async () => ({ status: 'ok' }));
  app.get('/readyz', async (_req, reply) => {
    const h = deps.health();
    reply.code(h.ready ? 200 : 503);
    return {
      status: h.ready ? (h.degraded.length ? 'degraded' : 'ready') : 'not-ready',
      degraded: h.degraded,
    };
  });

  for (const [endpoint, path] of ENDPOINT_PATHS) {
    app.post(path, async (request, reply) => {
      await modelCall(deps, endpoint, request, reply);
      // Returning the reply tells Fastify the handler answered (possibly with a stream still flowing).
      return reply;
    });
  }
  app.post('/v1/tasks/:name', async (request, reply) => {
    await taskCall(deps, request as FastifyRequest<{ Params: { name: string } }>, reply);
    return reply;
  });
  app.get('/v1/models', async (request, reply) => {
    await listModels(deps, request, reply);
    return reply;
  });
  app.get('/sluice/v1/me', async (request, reply) => {
    await me(deps, request, reply);
    return reply;
  });
  for (const p of deps.plugins ?? []) p(app, deps);
  return app;
}

/** Authenticates the caller; on failure answers and returns undefined. */
export async function authenticate(
  deps: GatewayDeps,
  request: FastifyRequest,
  reply: FastifyReply,
  format: WireFormat,
  rt: Runtime,
  /** True at the token endpoint: a key whose tier says `dpop: required` may still be exchanged there. */
  exchange = false,
): Promise<Principal | undefined> {
  const ip = clientIpOf(rt, request);
  const limited = deps.authFailures?.check(ip);
  if (limited) {
    // abuse hook: an address over its failure budget is still presenting credentials (stuffing).
    deps.abuse?.authFailed({
      ip,
      presented: request.headers.authorization ?? (request.headers['x-api-key'] as string | undefined),
      userAgent: (request.headers['user-agent'] as string | undefined) ?? null,
    });
    sendRefusal(reply, format, limited);
    return undefined;
  }
  const auth = request.headers.authorization;
  let presented: string | undefined;
  let scheme = 'bearer';
  if (auth) {
    const sp = auth.indexOf(' ');
    scheme = sp > 0 ? auth.slice(0, sp).toLowerCase() : '';
    presented = sp > 0 ? auth.slice(sp + 1).trim() : undefined;
  } else {
    const x = request.headers['x-api-key'];
    if (typeof x === 'string') presented = x.trim();
  }
  let result: Principal | Refusal;
  if (!presented) result = refuse('SLUICE_MISSING_KEY');
  else if (presented.startsWith('sk-sluice-') && scheme === 'bearer')
    result = await deps.auth.authenticate(presented);
  else if ((scheme === 'bearer' || scheme === 'dpop') && presented.split('.').length === 3 && deps.tokens) {
    result = await deps.tokens.verify(presented, {
      method: request.method,
      url: `${request.protocol}://${request.host}${request.url}`,
      dpop: request.headers.dpop as string | undefined,
      scheme,
    });
  } else result = refuse('SLUICE_INVALID_KEY');
  // A key bound to DPoP is only good for minting bound tokens, never as a bearer credential itself.
  if (
    !exchange &&
    !isRefusal(result) &&
    result.via === 'key' &&
    (result.record.dpop === 'required' || rt.cfg.tiers[result.tier]?.dpop === 'required')
  ) {
    result = refuse(
      'SLUICE_DPOP_INVALID',
      'this key requires DPoP-bound tokens: exchange it at POST /sluice/v1/token with a DPoP proof',
    );
  }
  if (isRefusal(result)) {
    deps.authFailures?.fail(ip);
    // abuse hook: failed credentials per IP range (credential stuffing).
    if (
      result.code === 'SLUICE_INVALID_KEY' ||
      result.code === 'SLUICE_KEY_REVOKED' ||
      result.code === 'SLUICE_KEY_EXPIRED' ||
      result.code === 'SLUICE_MISSING_KEY'
    )
      deps.abuse?.authFailed({
        ip,
        presented,
        userAgent: (request.headers['user-agent'] as string | undefined) ?? null,
      });
    if (result.code === 'SLUICE_STEP_UP_REQUIRED' || result.code === 'SLUICE_INVALID_TOKEN') {
      result.headers = { ...result.headers, 'www-authenticate': wwwAuthenticate(result) };
    }
    record(deps, request, rt, null, {
      action: 'auth',
      model: null,
      decision: 'refused',
      reason: result.code,
      status: ERRORS[result.code].status,
      ip,
    });
    sendRefusal(reply, format, result);
    return undefined;
  }
  return result;
}

function wwwAuthenticate(r: Refusal): string {
  if (r.code === 'SLUICE_STEP_UP_REQUIRED') {
    return 'Bearer error="insufficient_user_authentication", error_description="A token minted with a fresh second factor is required"';
  }
  return 'Bearer error="invalid_token"';
}

interface RecordInput {
  action: string;
  model: string | null;
  decision: AuditDecision;
  reason: string;
  status: number;
  ip: string;
  country?: string | null;
  states?: BucketState[];
  details?: Record<string, unknown>;
  usage?: Usage;
  usd?: number;
  upstream?: string;
  upstreamMs?: number;
  stageMs?: Record<string, number>;
}

/** Audit and metrics for one decision. Never throws; never blocks. */
function record(
  deps: GatewayDeps,
  request: FastifyRequest,
  rt: Runtime,
  p: Principal | null,
  r: RecordInput,
): void {
  const now = deps.clock.now();
  let details: Record<string, unknown> | null = r.details ?? null;
  // Limit states matter when they decided (throttled) or came close; an ordinary allow carries usage only.
  if (
    r.states &&
    r.states.length > 0 &&
    (r.decision !== 'allowed' || r.states.some((s) => s.remaining < s.limit * 0.2))
  ) {
    details = {
      ...details,
      limits: r.states.map((s) => ({ id: s.id, per: s.per, limit: s.limit, remaining: s.remaining })),
    };
  }
  if (r.usage) details = { ...details, usage: r.usage, usd: r.usd };
  if (p) deps.touch?.(p.keyId, r.ip, now);
  deps.audit.emit({
    at: now,
    requestId: request.id,
    keyId: p?.keyId ?? null,
    tenantId: p?.tenantId ?? null,
    projectId: p?.projectId ?? null,
    clientIp: r.ip,
    country: r.country ?? null,
    userAgent: (request.headers['user-agent'] as string | undefined)?.slice(0, 256) ?? null,
    action: r.action,
    model: r.model,
    decision: r.decision,
    reason: r.reason,
    policyVersion: rt.version,
    details,
  });
  deps.observe?.({
    action: r.action,
    decision: r.decision,
    reason: r.reason,
    tenantId: p?.tenantId ?? null,
    model: r.model,
    status: r.status,
    usage: r.usage,
    usd: r.usd,
    upstream: r.upstream,
    upstreamMs: r.upstreamMs,
    stageMs: r.stageMs,
  });
}

function endUserOf(request: FastifyRequest, body: Record<string, unknown> | null): string | null {
  const h = request.headers['x-sluice-end-user'];
  if (typeof h === 'string' && h.length > 0) return h.slice(0, 256);
  const u = body?.user;
  if (typeof u === 'string' && u.length > 0) return u.slice(0, 256);
  const meta = body?.metadata as { user_id?: unknown } | undefined;
  if (meta && typeof meta.user_id === 'string') return meta.user_id.slice(0, 256);
  return null;
}

interface CallPlan {
  endpoint: Endpoint;
  action: string;
  /** The model the caller named (what limits, authz and usage see). */
  model: string;
  body: Record<string, unknown>;
  stream: boolean;
  /** performance.now() when the handler started and the time authentication took, for stage metrics. */
  t0?: number;
  authMs?: number;
}

async function modelCall(
  deps: GatewayDeps,
  endpoint: Endpoint,
  request: FastifyRequest,
  reply: FastifyReply,
): Promise<void> {
  const format: WireFormat = endpoint === 'messages' ? 'anthropic' : 'openai';
  const rt = deps.runtime();
  const body = request.body as Record<string, unknown> | null;
  const t0 = performance.now();
  const checked = checkBody(endpoint, body);
  const principal = await authenticate(deps, request, reply, format, rt);
  if (!principal) return;
  const authMs = performance.now() - t0;
  if (isRefusal(checked)) {
    const ip = clientIpOf(rt, request);
    record(deps, request, rt, principal, {
      action: ACTIONS[endpoint],
      model: null,
      decision: 'refused',
      reason: checked.code,
      status: 400,
      ip,
    });
    sendRefusal(reply, format, checked);
    return;
  }
  await forward(deps, rt, request, reply, format, principal, {
    endpoint,
    action: ACTIONS[endpoint],
    model: checked.model,
    body: body!,
    stream: checked.stream,
    t0,
    authMs,
  });
}

async function taskCall(
  deps: GatewayDeps,
  request: FastifyRequest<{ Params: { name: string } }>,
  reply: FastifyReply,
): Promise<void> {
  const rt = deps.runtime();
  const principal = await authenticate(deps, request, reply, 'openai', rt);
  if (!principal) return;
  const name = request.params.name;
  const task = rt.cfg.tasks[name];
  if (!task) {
    sendRefusal(reply, 'openai', refuse('SLUICE_UNKNOWN_TASK', name.slice(0, 64)));
    return;
  }
  const body = request.body as { input?: unknown; params?: unknown; stream?: unknown } | null;
  if (!body || typeof body !== 'object' || typeof body.input !== 'string') {
    sendRefusal(
      reply,
      'openai',
      refuse('SLUICE_BAD_REQUEST', '"input" must be a string', { param: 'input' }),
    );
    return;
  }
  if (body.input.length > task.input.maxChars) {
    sendRefusal(
      reply,
      'openai',
      refuse('SLUICE_BAD_REQUEST', `"input" is longer than ${task.input.maxChars} characters`, {
        param: 'input',
      }),
    );
    return;
  }
  const given = (body.params ?? {}) as Record<string, unknown>;
  if (typeof given !== 'object' || Array.isArray(given)) {
    sendRefusal(
      reply,
      'openai',
      refuse('SLUICE_BAD_REQUEST', '"params" must be an object', { param: 'params' }),
    );
    return;
  }
  const values: Record<string, string> = {};
  for (const k of Object.keys(given)) {
    if (!(k in task.params)) {
      sendRefusal(
        reply,
        'openai',
        refuse('SLUICE_BAD_REQUEST', `unknown parameter "${k.slice(0, 64)}"`, {
          param: `params.${k.slice(0, 64)}`,
        }),
      );
      return;
    }
  }
  for (const [k, spec] of Object.entries(task.params)) {
    const v = given[k] ?? spec.default;
    const bad = (why: string) =>
      sendRefusal(
        reply,
        'openai',
        refuse('SLUICE_BAD_REQUEST', `parameter "${k}" ${why}`, { param: `params.${k}` }),
      );
    if (v === undefined) return void bad('is required');
    if (spec.type === 'integer' || spec.type === 'number') {
      if (typeof v !== 'number' || (spec.type === 'integer' && !Number.isInteger(v)))
        return void bad(`must be an ${spec.type}`);
      if (spec.min !== undefined && v < spec.min) return void bad(`must be at least ${spec.min}`);
      if (spec.max !== undefined && v > spec.max) return void bad(`must be at most ${spec.max}`);
    } else if (spec.type === 'boolean') {
      if (typeof v !== 'boolean') return void bad('must be a boolean');
    } else {
      if (typeof v !== 'string') return void bad('must be a string');
      if (spec.enum && !spec.enum.includes(v)) return void bad(`must be one of ${spec.enum.join(', ')}`);
      if (v.length > 1000) return void bad('is too long');
    }
    values[k] = String(v);
  }
  const system = task.system.replace(/\{\{(\w+)\}\}/g, (_, k: string) => values[k] ?? '');
  await forward(deps, rt, request, reply, 'openai', principal, {
    endpoint: 'chat',
    action: `tasks.${name}`,
    model: task.model,
    stream: body.stream === true,
    body: {
      model: task.model,
      messages: [
        { role: 'system', content: system },
        { role: 'user', content: body.input },
      ],
      max_tokens: task.maxTokens,
      stream: body.stream === true,
    },
  });
}

/** Context checks, authorization, limits, forwarding, settlement and recording for one model call. */
async function forward(
  deps: GatewayDeps,
  rt: Runtime,
  request: FastifyRequest,
  reply: FastifyReply,
  format: WireFormat,
  principal: Principal,
  call: CallPlan,
): Promise<void> {
  const now = deps.clock.now();
  const ip = clientIpOf(rt, request);
  const estimate = rt.limits.estimate(call.endpoint, call.body);
  const country = rt.access.country(ip);
  const facts: RequestFacts = {
    action: call.action,
    model: call.model,
    ip,
    country,
    endUser: endUserOf(request, call.body),
    now,
    endpoint: call.endpoint,
    tokenEstimate: estimate.inputTokens + estimate.outputTokens,
  };
  const base = { action: call.action, model: call.model, ip, country };

  // abuse hook (context checks): a quarantined or throttled capability is refused here.
  const paused = deps.abuse?.check({
    keyId: principal.keyId,
    tenantId: principal.tenantId,
    ip,
    action: call.action,
  });
  if (paused) {
    record(deps, request, rt, principal, {
      ...base,
      decision: paused.code === 'SLUICE_QUARANTINED' ? 'refused' : 'throttled',
      reason: paused.code,
      status: ERRORS[paused.code].status,
    });
    sendRefusal(reply, format, paused);
    return;
  }

  // 1. Authorize: scopes, models, context rules.
  const tAuthz = performance.now();
  const authz = rt.access.authorize(principal, facts);
  const authorizeMs = performance.now() - tAuthz;
  if (authz.refusal) {
    record(deps, request, rt, principal, {
      ...base,
      decision: 'refused',
      reason: authz.refusal.code,
      status: ERRORS[authz.refusal.code].status,
    });
    sendRefusal(reply, format, authz.refusal);
    return;
  }
  const route = rt.route(call.model);
  const upstream = route ? deps.upstreams.get(route.upstream) : undefined;
  if (!route || !upstream) {
    const r = refuse('SLUICE_UNKNOWN_MODEL', call.model.slice(0, 200), { param: 'model' });
    record(deps, request, rt, principal, { ...base, decision: 'refused', reason: r.code, status: 404 });
    sendRefusal(reply, format, r);
    return;
  }
  if (!upstream.supports(call.endpoint)) {
    const r = refuse(
      'SLUICE_BAD_REQUEST',
      `model "${call.model.slice(0, 200)}" is not served on this endpoint`,
      { param: 'model' },
    );
    record(deps, request, rt, principal, { ...base, decision: 'refused', reason: r.code, status: 400 });
    sendRefusal(reply, format, r);
    return;
  }
  const tier = rt.cfg.tiers[principal.tier];
  const maxTokens = (call.body.max_tokens ??
    call.body.max_completion_tokens ??
    call.body.max_output_tokens) as number | undefined;
  if (tier?.maxTokens !== undefined && typeof maxTokens === 'number' && maxTokens > tier.maxTokens) {
    const r = refuse(
      'SLUICE_PARAM_OUT_OF_RANGE',
      `max_tokens may be at most ${tier.maxTokens} on your tier`,
      { param: 'max_tokens' },
    );
    record(deps, request, rt, principal, { ...base, decision: 'refused', reason: r.code, status: 400 });
    sendRefusal(reply, format, r);
    return;
  }
  const n = call.body.n;
  if (tier && typeof n === 'number' && n > tier.maxN) {
    const r = refuse('SLUICE_PARAM_OUT_OF_RANGE', `n may be at most ${tier.maxN} on your tier`, {
      param: 'n',
    });
    record(deps, request, rt, principal, { ...base, decision: 'refused', reason: r.code, status: 400 });
    sendRefusal(reply, format, r);
    return;
  }

  // 2. Limits: every applicable bucket reserved in one store operation. With an admission controller
  // the upstream's capacity and the tenant's fair share of it join that one reserve, and a tier with a
  // queue waits for its retry time instead of being refused (src/gateway/admission.ts).
  let buckets = rt.limits.bucketsFor(principal, facts);
  let costs = rt.limits.costsFor(buckets, call.model, estimate);
  const own = buckets.length;
  const admission = deps.admission;
  const declared = admission ? rt.cfg.upstreams.find((u) => u.name === upstream.name)?.capacity : undefined;
  let reservation: Reservation | undefined;
  let shadowLimits: string[] = [];
  let states: BucketState[] = [];
  if (buckets.length > 0 || admission) {
    let result: Awaited<ReturnType<LimitStore['reserve']>> | undefined;
    let waitedMs = 0;
    let gone: AbortController | undefined;
    const onGone = () => {
      if (!reply.raw.writableFinished) gone?.abort();
    };
    try {
      if (admission) {
        // Only a request that may wait needs to hear that its client left.
        if (tier?.queue !== undefined) {
          gone = new AbortController();
          reply.raw.on('close', onGone);
        }
        const adm = await admission.admit({
          buckets,
          costs,
          requestId: request.id,
          tenantId: principal.tenantId,
          weight: tier?.weight ?? 1,
          maxWaitMs: tier?.queue?.maxWait,
          upstream: upstream.name,
          capacity: declared,
          tokens: estimate.inputTokens + estimate.outputTokens,
          signal: gone?.signal,
        });
        waitedMs = adm.waitedMs;
        if (!adm.ok && adm.aborted) {
          // The client left while waiting for its turn: nothing was reserved, nobody to answer.
          record(deps, request, rt, principal, {
            ...base,
            decision: 'throttled',
            reason: 'client_closed',
            status: 499,
            details: { waitedMs },
          });
          return;
        }
        buckets = adm.buckets;
        costs = adm.costs;
        if (!adm.ok) result = adm.denial;
        else if (adm.reservation)
          result = {
            ok: true,
            reservation: adm.reservation,
            states: adm.states,
            shadowDenied: adm.shadowDenied ?? [],
          };
      } else result = await deps.limits.reserve({ buckets, costs, requestId: request.id });
    } catch (err) {
      deps.logger.error({ err: (err as Error).message, reqId: request.id }, 'limit store failed');
      const r = refuse('SLUICE_STORE_UNAVAILABLE', undefined, { headers: { 'retry-after': '1' } });
      record(deps, request, rt, principal, { ...base, decision: 'error', reason: r.code, status: 503 });
      sendRefusal(reply, format, r);
      return;
    } finally {
      if (gone) reply.raw.off('close', onGone);
    }
    if (result) {
      states = result.states;
      // Watchers see the caller's own limits; the upstream's capacity buckets are not theirs.
      if (own < buckets.length) deps.onLimitStates?.(principal, buckets.slice(0, own), states.slice(0, own));
      else deps.onLimitStates?.(principal, buckets, states);
      if (!result.ok) {
        const r = rt.limits.denialFor(result, buckets, costs, format, deps.clock.now());
        record(deps, request, rt, principal, {
          ...base,
          decision: 'throttled',
          reason: r.code,
          status: ERRORS[r.code].status,
          states,
          details: {
            limit: buckets[result.bucketIndex]?.id,
            retryAfterMs: Number.isFinite(result.retryAfterMs) ? result.retryAfterMs : null,
            ...(waitedMs > 0 ? { waitedMs } : {}),
          },
        });
        sendRefusal(reply, format, r);
        return;
      }
      reservation = result.reservation;
      shadowLimits = result.shadowDenied;
      // Capacity buckets show in the headers of the denial they cause, not on every answer.
      if (own < states.length) states = states.slice(0, own);
      reply.headers(rt.limits.headersFor(states, format, deps.clock.now()));
    }
  }

  const limitMs = performance.now() - tAuthz - authorizeMs;
  if (shadowLimits.length > 0) {
    // Shadow limits never deny: their would-be refusals are logged here and audited with the request.
    deps.logger.info(
      { reqId: request.id, key: principal.keyId, limits: shadowLimits },
      'shadow limit would have refused',
    );
  }

  // 3. Forward. A client that goes away aborts the upstream call.
  const ac = new AbortController();
  const onClose = () => {
    if (!reply.raw.writableFinished) ac.abort();
  };
  reply.raw.on('close', onClose);
  // A forced shutdown (deadline or second signal) also ends a call still waiting for upstream headers.
  const waitingOnUpstream = waitingSets.get(deps) ?? new Set<AbortController>();
  // (A Set, not a listener per request: an EventTarget listener costs more than the whole add/delete.)
  if (deps.forceEnd?.aborted) ac.abort();
  waitingOnUpstream.add(ac);
  const headers: Record<string, string> = { 'x-request-id': request.id };
  for (const h of FORWARD_HEADERS) {
    const v = request.headers[h];
    if (typeof v === 'string') headers[h] = v;
  }
  const upstreamBody =
    route.upstreamModel === call.model ? call.body : { ...call.body, model: route.upstreamModel };
  const started = deps.clock.now();
  const tUp = performance.now();
  let res: UpstreamResponse;
  try {
    res = await upstream.call({
      endpoint: call.endpoint,
      body: upstreamBody,
      stream: call.stream,
      signal: ac.signal,
      requestId: request.id,
      headers,
    });
  } catch (err) {
    // Nothing was produced: refund everything.
    if (reservation)
      void settle(
        deps,
        rt,
        reservation,
        buckets,
        call.model,
        { inputTokens: 0, outputTokens: 0, images: 0 },
        true,
      );
    waitingOnUpstream.delete(ac);
    const shuttingDown = deps.forceEnd?.aborted === true && !reply.raw.destroyed;
    const code: ErrorCode = shuttingDown
      ? 'SLUICE_SHUTTING_DOWN'
      : err instanceof UpstreamError
        ? err.kind === 'timeout'
          ? 'SLUICE_UPSTREAM_TIMEOUT'
          : err.kind === 'circuit-open'
            ? 'SLUICE_UPSTREAM_UNAVAILABLE'
            : 'SLUICE_UPSTREAM_ERROR'
        : 'SLUICE_UPSTREAM_ERROR';
    deps.logger.warn(
      { reqId: request.id, upstream: upstream.name, err: (err as Error).message },
      'upstream call failed',
    );
    record(deps, request, rt, principal, {
      ...base,
      decision: 'error',
      reason: code,
      status: ERRORS[code].status,
      upstream: upstream.name,
    });
    if (!ac.signal.aborted || shuttingDown) sendRefusal(reply, format, refuse(code));
    return;
  }
  // Upstream feedback: a 429 or a nearly spent upstream allowance lowers the capacity handed out.
  admission?.observe(upstream.name, declared, res, started);
  // A request the upstream refused with 429 still used its capacity: the failed call's refund leaves
  // the capacity buckets charged (a reservation's settle applies actual minus reserved, so 0 keeps them).
  if (res.status === 429 && reservation && own < reservation.costs.length)
    reservation = { ...reservation, costs: reservation.costs.map((c, i) => (i < own ? c : 0)) };

  waitingOnUpstream.delete(ac);
  const upstreamHeadersMs = performance.now() - tUp;
  // Time Sluice itself added before the upstream call (parse to forward), by stage.
  const stageMs: Record<string, number> = {
    auth: call.authMs ?? 0,
    authorize: authorizeMs,
    limit: limitMs,
    upstream_headers: upstreamHeadersMs,
    gateway: call.t0 !== undefined ? tUp - call.t0 : 0,
  };
  const ok = res.status < 400;
  reply.code(res.status);
  reply.headers(res.headers);
  const finish = (usage: Usage) => {
    reply.raw.off('close', onClose);
    const usd = rt.limits.usdFor(call.model, usage);
    // An upstream failure (5xx) is refunded whole; a 4xx the caller caused still counts as a request
    // (tokens settle to what was produced), or invalid requests could be sent without limit.
    if (reservation) void settle(deps, rt, reservation, buckets, call.model, usage, res.status >= 500);
    deps.usage.record({
      requestId: request.id,
      at: deps.clock.now(),
      keyId: principal.keyId,
      tenantId: principal.tenantId,
      projectId: principal.projectId,
      model: call.model,
      action: call.action,
      upstream: upstream.name,
      inputTokens: usage.inputTokens,
      outputTokens: usage.outputTokens,
      images: usage.images,
      usd,
      status: res.status,
      latencyMs: deps.clock.now() - started,
    });
    record(deps, request, rt, principal, {
      ...base,
      decision: ok ? 'allowed' : 'error',
      reason: ok ? (ac.signal.aborted ? 'client_closed' : 'ok') : `upstream_${res.status}`,
      status: res.status,
      states,
      usage,
      usd,
      upstream: upstream.name,
      upstreamMs: deps.clock.now() - started,
      stageMs,
      details:
        authz.shadow.length || shadowLimits.length
          ? { shadow: [...authz.shadow, ...shadowLimits.map((id) => `limit:${id}`)] }
          : undefined,
    });
    // abuse hook (record): the detectors see the answered call.
    if (deps.abuse) observeAbuse(deps.abuse, request, principal, call, facts, usage, res.status);
  };
  if (res.body instanceof Uint8Array) {
    res.usage.then(finish, () => finish({ inputTokens: 0, outputTokens: 0, images: 0 }));
    reply.send(Buffer.from(res.body.buffer, res.body.byteOffset, res.body.byteLength));
    return;
  }
  res.usage.then(finish, () => finish({ inputTokens: 0, outputTokens: 0, images: 0 }));
  reply.header('cache-control', 'no-cache');
  reply.header('x-accel-buffering', 'no');
  const body = deps.forceEnd ? guarded(res.body, deps.forceEnd, format, ac) : res.body;
  const stream = Readable.from(body, { objectMode: false, highWaterMark: 16 * 1024 });
  stream.on('error', (err) => {
    deps.logger.warn({ reqId: request.id, err: err.message }, 'stream to client failed');
    ac.abort();
  });
  reply.send(stream);
}

/** Header names that say nothing about the client (ids, credentials, sizes) stay out of its fingerprint. */
const NOT_FINGERPRINT = new Set([
  'authorization',
  'x-api-key',
  'x-request-id',
  'content-length',
  'host',
  'cookie',
]);

/** The facts the abuse detectors need about one answered call (prompt prefix only, never credentials). */
function observeAbuse(
  abuse: AbuseHooks,
  request: FastifyRequest,
  principal: Principal,
  call: CallPlan,
  facts: RequestFacts,
  usage: Usage,
  status: number,
): void {
  const raw = request.raw.rawHeaders;
  const headerNames: string[] = [];
  for (let i = 0; i < raw.length && headerNames.length < 32; i += 2) {
    const n = raw[i]!.toLowerCase();
    if (!NOT_FINGERPRINT.has(n)) headerNames.push(n);
  }
  const prompt =
    call.endpoint === 'images'
      ? typeof call.body.prompt === 'string'
        ? call.body.prompt
        : ''
      : lastUserText(call.endpoint, call.body);
  abuse.observe({
    requestId: request.id,
    keyId: principal.keyId,
    tenantId: principal.tenantId,
    ip: facts.ip,
    userAgent: (request.headers['user-agent'] as string | undefined) ?? null,
    headerNames,
    endUser: facts.endUser,
    action: call.action,
    endpoint: call.action.startsWith('tasks.') ? 'tasks' : call.endpoint,
    model: call.model,
    prompt: prompt.length > 2000 ? prompt.slice(0, 2000) : prompt,
    inputTokens: usage.inputTokens,
    outputTokens: usage.outputTokens,
    status,
  });
}

/** Passes a stream through until a forced shutdown, which ends it with a well-formed error event. */
async function* guarded(
  src: AsyncIterable<Uint8Array>,
  kill: AbortSignal,
  format: WireFormat,
  upstream: AbortController,
): AsyncGenerator<Uint8Array> {
  const it = src[Symbol.asyncIterator]();
  let onKill: () => void = () => {};
  const killed = new Promise<'kill'>((resolve) => {
    onKill = () => resolve('kill');
    if (kill.aborted) onKill();
    else kill.addEventListener('abort', onKill, { once: true });
  });
  try {
    for (;;) {
      const n = await Promise.race([it.next(), killed]);
      if (n === 'kill') {
        upstream.abort();
        yield Buffer.from(sseErrorEvent(format, refuse('SLUICE_SHUTTING_DOWN')));
        return;
      }
      if (n.done) return;
      yield n.value;
    }
  } finally {
    kill.removeEventListener('abort', onKill);
    void it.return?.();
  }
}

/** Replaces reservation by actual usage; a failed call is refunded whole. Never throws. */
async function settle(
  deps: GatewayDeps,
  rt: Runtime,
  reservation: Reservation,
  buckets: Reservation['buckets'],
  model: string,
  usage: Usage,
  failed: boolean,
): Promise<void> {
  try {
    // A failed call costs nothing (the request itself included); a lease is released separately.
    const actual = failed
      ? buckets.map(() => 0)
      : rt.limits
          .costsFor(buckets, model, usage)
          .map((c, i) => (buckets[i]!.kind === 'requests' ? reservation.costs[i]! : c));
    await deps.limits.settle(reservation, actual);
  } catch (err) {
    deps.logger.warn({ err: (err as Error).message }, 'settle failed');
  } finally {
    try {
      await deps.limits.release(reservation);
    } catch (err) {
      deps.logger.warn({ err: (err as Error).message }, 'release failed');
    }
  }
}

async function listModels(deps: GatewayDeps, request: FastifyRequest, reply: FastifyReply): Promise<void> {
  const rt = deps.runtime();
  const principal = await authenticate(deps, request, reply, 'openai', rt);
  if (!principal) return;
  const ip = clientIpOf(rt, request);
  const authz = rt.access.authorize(principal, {
    action: 'models.list',
    model: null,
    ip,
    country: null,
    endUser: null,
    now: deps.clock.now(),
  });
  // Listing is allowed to every key (it shows only what the key may use); context rules still apply.
  if (authz.refusal && authz.refusal.code !== 'SLUICE_SCOPE_DENIED') {
    sendRefusal(reply, 'openai', authz.refusal);
    return;
  }
  const seen = new Set<string>();
  const data: { id: string; object: 'model'; created: number; owned_by: string }[] = [];
  const add = (id: string, owner: string) => {
    if (seen.has(id) || !rt.access.modelAllowed(principal, id)) return;
    const route = rt.route(id);
    if (!route) return;
    seen.add(id);
    data.push({ id, object: 'model', created: 1_700_000_000, owned_by: owner });
  };
  // Concrete names in routes and tasks, then what upstreams advertise (the mock's demo models).
  for (const m of rt.cfg.models) if (!m.match.includes('*')) add(m.match, m.upstream);
  for (const u of deps.upstreams.values())
    for (const m of u.advertisedModels()) if (rt.route(m.id)?.upstream === u.name) add(m.id, u.name);
  reply.send({ object: 'list', data });
}

async function me(deps: GatewayDeps, request: FastifyRequest, reply: FastifyReply): Promise<void> {
  const rt = deps.runtime();
  const principal = await authenticate(deps, request, reply, 'openai', rt);
  if (!principal) return;
  const ip = clientIpOf(rt, request);
  // Every limit that can apply to this key: each action, with no model and with a sample name for every
  // model the routes, upstreams and limits mention (`gpt-4*` is sampled as `gpt-4`), deduplicated.
  const actions = [...Object.values(ENDPOINT_ACTIONS), ...Object.keys(rt.cfg.tasks).map((t) => `tasks.${t}`)];
  const models = new Set<string | null>([null]);
  for (const m of rt.cfg.models) models.add(m.match.replaceAll('*', '') || null);
  for (const u of deps.upstreams.values()) for (const m of u.advertisedModels()) models.add(m.id);
  const limitLists = [
    ...Object.values(rt.cfg.tiers).map((t) => t.limits),
    ...[rt.cfg.tenants, rt.cfg.projects, rt.cfg.keys].flatMap((o) =>
      Object.values(o).map((x) => x.limits ?? []),
    ),
  ];
  for (const list of limitLists)
    for (const l of list) for (const m of l.models ?? []) models.add(m.replaceAll('*', '') || null);
  const seen = new Set<string>();
  const buckets: LimitBucket[] = [];
  const now = deps.clock.now();
  for (const action of actions) {
    for (const model of models) {
      const facts: RequestFacts = { action, model, ip, country: null, endUser: null, now };
      for (const b of rt.limits.bucketsFor(principal, facts)) {
        if (seen.has(b.key)) continue;
        seen.add(b.key);
        buckets.push(b);
      }
    }
  }
  let states: BucketState[] = [];
  try {
    states = buckets.length ? await deps.limits.peek(buckets) : [];
  } catch {
    sendRefusal(reply, 'openai', refuse('SLUICE_STORE_UNAVAILABLE'));
    return;
  }
  const tier = rt.cfg.tiers[principal.tier];
  reply.send({
    key: {
      id: principal.keyId,
      tenant: principal.tenantId,
      project: principal.projectId,
      tier: principal.tier,
      expiresAt: principal.record.expiresAt ?? null,
    },
    scopes: principal.record.scopes ?? tier?.scopes ?? [],
    models: principal.record.models ?? tier?.models ?? [],
    limits: states.map((s, i) => ({
      id: s.id,
      per: s.per,
      kind: s.kind,
      limit: s.limit,
      // Money is shown to the micro-dollar; everything else counts whole units.
      used: round(s.kind, Math.max(0, s.limit - s.remaining)),
      remaining: round(s.kind, s.remaining),
      resetMs: s.resetMs,
      resetAt: new Date(deps.clock.now() + s.resetMs).toISOString(),
      window: s.windowMs,
      mode: buckets[i]?.shadow ? 'shadow' : 'enforce',
      actions: undefined,
    })),
    // abuse hook: capabilities paused pending review, why in plain words, until when, how to appeal.
    paused: deps.abuse?.pausedFor?.(principal.keyId, principal.tenantId) ?? [],
  });
}

function round(kind: string, v: number): number {
  return kind === 'usd' ? Math.round(v * 1e6) / 1e6 : Math.round(v);
}

/** Listener options with TLS: Fastify takes the Node server options under `https` instead of `http`. */
export function withTls<T extends { http: object }>(
  opts: T,
  tls: { cert: Buffer; key: Buffer } | undefined,
): T {
  if (!tls) return opts;
  const { http, ...rest } = opts;
  return { ...rest, https: { ...http, cert: tls.cert, key: tls.key } } as unknown as T;
}
