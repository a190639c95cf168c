/**
 * The developer portal on the data plane, registered through `GatewayDeps.plugins`:
 *
 *   GET    /portal/                 the built app (strict CSP, no inline script, works offline)
 *   POST   /portal/session          {apiKey} → HttpOnly SameSite=Strict session cookie + CSRF token
 *   GET    /portal/session          the current session (after a reload); DELETE signs out
 *   GET    /sluice/v1/usage         aggregated usage of the caller's tenant (by key, model or endpoint; per hour or day)
 *   GET    /sluice/v1/refusals      recent 429s and refusals of the tenant, with reasons
 *   GET    /sluice/v1/recommendations
 *   GET    /sluice/v1/exceptions    the tenant's exception requests; POST one; GET /:id
 *
 * Every /sluice/v1 route takes an API key or a short-lived token as usual; the portal's session
 * stands in for one: the key is exchanged once for a short-lived JWT kept on the server, and requests
 * that carry the session cookie (and, for writes, the `x-csrf-token` header) are authenticated with
 * that token. The key itself is never stored, neither in the browser nor here.
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { TokenService } from '../../auth/tokens.js';
import { refuse } from '../../core/errors.js';
import { exceptionView } from '../../core/exceptions/model.js';
import type { Clock } from '../../core/ports.js';
import { authenticate, type GatewayDeps } from '../app.js';
import { sendRefusal } from '../wire.js';
import { ExceptionError, type ExceptionService } from './exception-service.js';
import { serveApp, webDir } from './static.js';
import type { PortalQueries, UsageBucket, UsageGroup } from './usage-queries.js';

/** 30 minutes: long enough to read the pages, short enough that a forgotten tab does not stay signed in. */
export const PORTAL_SESSION_MS = 30 * 60_000;
const MAX_SESSIONS = 10_000;
export const SESSION_COOKIE = 'sluice_portal';
const DAY = 86_400_000;

interface Session {
  token: string;
  csrf: string;
  keyId: string;
  tenantId: string;
  expiresAt: number;
}

export interface PortalOptions {
  tokens: TokenService;
  clock: Clock;
  exceptions: ExceptionService;
  queries: PortalQueries;
  /** Serve the built app (default true); tests of the API alone may skip it. */
  serveApp?: boolean;
}

export function cookieValue(header: string | undefined, name: string): string | undefined {
  if (!header) return undefined;
  for (const part of header.split(';')) {
    const i = part.indexOf('=');
    if (i > 0 && part.slice(0, i).trim() === name) return part.slice(i + 1).trim();
  }
  return undefined;
}

function sameSecret(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

function exceptionRefusal(reply: FastifyReply, err: unknown): FastifyReply {
  if (err instanceof ExceptionError) {
    const code =
      err.kind === 'not-found'
        ? 'SLUICE_NOT_FOUND'
        : err.kind === 'state'
          ? 'SLUICE_EXCEPTION_STATE'
          : 'SLUICE_EXCEPTION_INVALID';
    return sendRefusal(reply, 'openai', refuse(code, err.message));
  }
  throw err;
}

export function portalRoutes(opts: PortalOptions) {
  const sessions = new Map<string, Session>();
  const { clock } = opts;
  const sessionOf = (request: FastifyRequest): { id: string; s: Session } | undefined => {
    const id = cookieValue(request.headers.cookie, SESSION_COOKIE);
    if (!id) return undefined;
    const s = sessions.get(id);
    if (!s) return undefined;
    if (s.expiresAt <= clock.now()) {
      sessions.delete(id);
      return undefined;
    }
    return { id, s };
  };

  return (app: FastifyInstance, deps: GatewayDeps) => {
    // The session stands in for a credential on /sluice/v1 and /v1/models; writes need the CSRF token.
    app.addHook('onRequest', (request, reply, done) => {
      const url = request.url;
      if (!(url.startsWith('/sluice/v1/') || url.startsWith('/v1/models'))) return done();
      if (request.headers.authorization || request.headers['x-api-key']) return done();
      const hit = sessionOf(request);
      if (!hit) return done();
      if (request.method !== 'GET' && request.method !== 'HEAD') {
        const sent = request.headers['x-csrf-token'];
        if (typeof sent !== 'string' || !sameSecret(sent, hit.s.csrf)) {
          sendRefusal(reply, 'openai', refuse('SLUICE_CSRF_FAILED'));
          return;
        }
      }
      request.headers.authorization = `Bearer ${hit.s.token}`;
      done();
    });

    app.post('/portal/session', async (request, reply) => {
      const b = (request.body ?? {}) as { apiKey?: unknown };
      if (typeof b.apiKey !== 'string' || !b.apiKey.startsWith('sk-sluice-') || b.apiKey.length > 256)
        return sendRefusal(
          reply,
          'openai',
          refuse('SLUICE_BAD_REQUEST', '"apiKey" must be a Sluice API key'),
        );
      request.headers.authorization = `Bearer ${b.apiKey}`;
      const rt = deps.runtime();
      const principal = await authenticate(deps, request, reply, 'openai', rt);
      if (!principal) return reply;
      const minted = await opts.tokens.mint({
        keyId: principal.keyId,
        tenantId: principal.tenantId,
        ttlMs: PORTAL_SESSION_MS,
      });
      if (sessions.size >= MAX_SESSIONS) {
        const now = clock.now();
        for (const [id, s] of sessions) if (s.expiresAt <= now) sessions.delete(id);
        // Still full: the oldest session goes (it is the closest to expiring anyway).
        if (sessions.size >= MAX_SESSIONS) sessions.delete(sessions.keys().next().value as string);
      }
      const id = randomBytes(32).toString('base64url');
      const csrf = randomBytes(24).toString('base64url');
      const expiresAt = Math.min(minted.expiresAt, clock.now() + PORTAL_SESSION_MS);
      sessions.set(id, {
        token: minted.token,
        csrf,
        keyId: principal.keyId,
        tenantId: principal.tenantId,
        expiresAt,
      });
      const secure = request.protocol === 'https' ? '; Secure' : '';
      reply.header(
        'set-cookie',
        `${SESSION_COOKIE}=${id}; Path=/; HttpOnly; SameSite=Strict; Max-Age=${Math.floor(PORTAL_SESSION_MS / 1000)}${secure}`,
      );
      reply.header('cache-control', 'no-store');
      return {
        csrfToken: csrf,
        key: principal.keyId,
        tenant: principal.tenantId,
        expiresAt: new Date(expiresAt).toISOString(),
      };
    });

    // Lets a reloaded page pick its session up again. Same-origin only (no CORS), so the CSRF token stays private.
    app.get('/portal/session', async (request, reply) => {
      const hit = sessionOf(request);
      if (!hit) return sendRefusal(reply, 'openai', refuse('SLUICE_SESSION_INVALID'));
      reply.header('cache-control', 'no-store');
      return {
        csrfToken: hit.s.csrf,
        key: hit.s.keyId,
        tenant: hit.s.tenantId,
        expiresAt: new Date(hit.s.expiresAt).toISOString(),
      };
    });
    app.delete('/portal/session', async (request, reply) => {
      const hit = sessionOf(request);
      if (hit) {
        const sent = request.headers['x-csrf-token'];
        if (typeof sent !== 'string' || !sameSecret(sent, hit.s.csrf))
          return sendRefusal(reply, 'openai', refuse('SLUICE_CSRF_FAILED'));
        sessions.delete(hit.id);
      }
      reply.header('set-cookie', `${SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0`);
      return reply.code(204).send();
    });

    const caller = async (request: FastifyRequest, reply: FastifyReply) => {
      const rt = deps.runtime();
      return authenticate(deps, request, reply, 'openai', rt);
    };
    const range = (q: Record<string, string | undefined>) => {
      const now = clock.now();
      const days = Math.min(Math.max(Number.parseInt(q.days ?? '7', 10) || 7, 1), 400);
      return { since: now - days * DAY, until: now + 1 };
    };

    app.get('/sluice/v1/usage', async (request, reply) => {
      const p = await caller(request, reply);
      if (!p) return reply;
      const q = request.query as Record<string, string | undefined>;
      const groupBy = (q.groupBy ?? 'model') as UsageGroup;
      const bucket = (q.bucket ?? 'day') as UsageBucket;
      if (!['key', 'model', 'endpoint'].includes(groupBy))
        return sendRefusal(
          reply,
          'openai',
          refuse('SLUICE_BAD_REQUEST', '"groupBy" is key, model or endpoint', { param: 'groupBy' }),
        );
      if (!['hour', 'day'].includes(bucket))
        return sendRefusal(
          reply,
          'openai',
          refuse('SLUICE_BAD_REQUEST', '"bucket" is hour or day', { param: 'bucket' }),
        );
      const r = range(q);
      const data = await opts.queries.usage({ tenantId: p.tenantId, groupBy, bucket, ...r });
      return { tenant: p.tenantId, groupBy, bucket, since: r.since, until: r.until, data };
    });

    app.get('/sluice/v1/refusals', async (request, reply) => {
      const p = await caller(request, reply);
      if (!p) return reply;
      const r = range(request.query as Record<string, string | undefined>);
      return { tenant: p.tenantId, data: await opts.queries.refusals(p.tenantId, r.since) };
    });

    app.get('/sluice/v1/recommendations', async (request, reply) => {
      const p = await caller(request, reply);
      if (!p) return reply;
      const r = range(request.query as Record<string, string | undefined>);
      return { tenant: p.tenantId, data: await opts.queries.recommendations(p.tenantId, r.since, r.until) };
    });

    app.get('/sluice/v1/exceptions', async (request, reply) => {
      const p = await caller(request, reply);
      if (!p) return reply;
      const now = clock.now();
      const rows = await opts.exceptions.list({ tenantId: p.tenantId });
      return { data: rows.map((r) => exceptionView(r, now)), policy: policyView(opts.exceptions) };
    });

    app.get('/sluice/v1/exceptions/:id', async (request, reply) => {
      const p = await caller(request, reply);
      if (!p) return reply;
      try {
        const r = await opts.exceptions.get((request.params as { id: string }).id);
        if (r.tenantId !== p.tenantId) return sendRefusal(reply, 'openai', refuse('SLUICE_NOT_FOUND'));
        return exceptionView(r, clock.now());
      } catch (err) {
        return exceptionRefusal(reply, err);
      }
    });

    app.post('/sluice/v1/exceptions', async (request, reply) => {
      const p = await caller(request, reply);
      if (!p) return reply;
      try {
        const r = await opts.exceptions.request(
          (request.body ?? {}) as Record<string, unknown>,
          { tenantId: p.tenantId, keyId: p.keyId },
          { requestId: request.id, ip: request.ip },
        );
        return reply.code(201).send(exceptionView(r, clock.now()));
      } catch (err) {
        return exceptionRefusal(reply, err);
      }
    });

    if (opts.serveApp !== false) serveApp(app, '/portal', webDir('portal'));
  };
}

function policyView(s: ExceptionService) {
  const p = s.policy();
  return { maxDuration: Math.floor(p.maxDurationMs / 1000), pendingTtl: Math.floor(p.pendingTtlMs / 1000) };
}
