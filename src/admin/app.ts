/**
 * The management plane: its own listener, its own credentials (admin tokens, hashed at rest), the
 * same error catalogue. `createAdmin(deps)` builds the app and never listens.
 * Every call is audited (decision `admin`), with the admin user and the operation, never secrets.
 */
import { createHmac, randomBytes } from 'node:crypto';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import { newTotpSecret, otpauthUrl } from '../auth/totp.js';
import type { SluiceConfig } from '../config/schema.js';
import { type ErrorCode, type Refusal, refuse } from '../core/errors.js';
import { newId } from '../core/ids.js';
import type { AdminRole, AdminUser, AuditSink, Clock, ControlStore, UsageLedger } from '../core/ports.js';
import { withTls } from '../gateway/app.js';
import { listenerOptions } from '../gateway/hardening.js';
import { isStoreUnavailable } from '../stores/store-errors.js';
import { guard, sendAdminError } from './guard.js';
import { type KeyService, KeyServiceError, publicKeyView } from './key-service.js';
import { stepUpOk } from './step-up.js';

export interface AdminDeps {
  control: ControlStore;
  keys: KeyService;
  usage: UsageLedger;
  audit: AuditSink;
  pepper: Buffer;
  /** The pepper being rotated out (SLUICE_PEPPER_PREVIOUS), accepted until `until`. */
  previousPepper?: { pepper: Buffer; until: number };
  clock: Clock;
  logger: Logger;
  /** Called after a key changes so every instance drops its cached copy. */
  invalidateKey: (keyId: string) => void;
  /** Extra route groups (policy, audit, metrics, alerts) registered by their modules. */
  plugins?: ((app: FastifyInstance, deps: AdminDeps) => void)[];
  /** Current policy version, for audit events. */
  policyVersion: () => number | null;
  /** Listener limits (header size, timeouts) as on the data plane. */
  hardening?: SluiceConfig['hardening'];
  /** Serve HTTPS (`admin.tls`). */
  tls?: { cert: Buffer; key: Buffer };
  /** The console's session (cookie) as an admin user, a refusal (bad CSRF token), or undefined (none). */
  consoleSession?: (request: FastifyRequest) => Promise<AdminUser | Refusal | undefined>;
}

declare module 'fastify' {
  interface FastifyRequest {
    admin?: AdminUser;
  }
}

export function hashAdminToken(pepper: Buffer, token: string): string {
  return createHmac('sha256', pepper).update(`admin:${token}`).digest('hex');
}

/** Which roles may call a route: admin can do everything; operator manages keys; auditor reads. */
export { guard, type Permission, sendAdminError } from './guard.js';

export function auditAdmin(
  deps: AdminDeps,
  request: FastifyRequest,
  op: string,
  details: Record<string, unknown>,
  status = 200,
): void {
  deps.audit.emit({
    at: deps.clock.now(),
    requestId: request.id,
    keyId: null,
    tenantId: (details.tenant as string | undefined) ?? null,
    projectId: null,
    clientIp: request.ip,
    country: null,
    userAgent: (request.headers['user-agent'] as string | undefined)?.slice(0, 256) ?? null,
    action: `admin.${op}`,
    model: null,
    decision: 'admin',
    reason: status < 400 ? 'ok' : `http_${status}`,
    policyVersion: deps.policyVersion(),
    details: { ...details, by: request.admin?.name ?? null, byRole: request.admin?.role ?? null },
  });
}

function keyError(reply: FastifyReply, err: unknown): FastifyReply {
  if (err instanceof KeyServiceError) {
    const code: ErrorCode =
      err.kind === 'not-found'
        ? 'SLUICE_ADMIN_NOT_FOUND'
        : err.kind === 'conflict'
          ? 'SLUICE_ADMIN_CONFLICT'
          : 'SLUICE_BAD_REQUEST';
    return sendAdminError(reply, refuse(code, err.message));
  }
  throw err;
}

const strList = (v: unknown): string[] | null | undefined => {
  if (v === undefined) return undefined;
  if (v === null) return null;
  if (typeof v === 'string')
    return v
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean);
  if (Array.isArray(v) && v.every((x) => typeof x === 'string')) return v as string[];
  throw new KeyServiceError('invalid', 'expected a list of strings');
};
const optStr = (v: unknown): string | null | undefined => {
  if (v === undefined || v === null) return v as undefined | null;
  if (typeof v !== 'string') throw new KeyServiceError('invalid', 'expected a string');
  return v;
};

export function createAdmin(deps: AdminDeps): FastifyInstance {
  const app = Fastify({
    logger: false,
    bodyLimit: 2 * 1024 * 1024,
    trustProxy: false,
    ...(deps.hardening
      ? withTls(listenerOptions(deps.hardening), deps.tls)
      : deps.tls
        ? { https: deps.tls }
        : {}),
  });

  app.setErrorHandler((err: Error & { code?: string; statusCode?: number }, request, reply) => {
    if (err instanceof KeyServiceError) return keyError(reply, err);
    const code: ErrorCode =
      err.code === 'FST_ERR_CTP_BODY_TOO_LARGE'
        ? 'SLUICE_BODY_TOO_LARGE'
        : err instanceof SyntaxError ||
            err.code === 'FST_ERR_CTP_INVALID_JSON_BODY' ||
            err.code === 'FST_ERR_CTP_EMPTY_JSON_BODY'
          ? 'SLUICE_BAD_JSON'
          : err.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE'
            ? 'SLUICE_UNSUPPORTED_MEDIA_TYPE'
            : (err as { storeUnavailable?: boolean }).storeUnavailable || isStoreUnavailable(err)
              ? 'SLUICE_STORE_UNAVAILABLE'
              : err.statusCode && err.statusCode < 500
                ? 'SLUICE_BAD_REQUEST'
                : 'SLUICE_INTERNAL';
    if (code === 'SLUICE_INTERNAL' || code === 'SLUICE_STORE_UNAVAILABLE')
      deps.logger.error({ err: err.message, reqId: request.id }, 'admin error');
    return sendAdminError(reply, refuse(code));
  });
  app.setNotFoundHandler((_req, reply) => sendAdminError(reply, refuse('SLUICE_NOT_FOUND')));

  // Security headers on every management-plane response.
  app.addHook('onSend', async (_req, reply) => {
    reply.header('x-content-type-options', 'nosniff');
    reply.header('x-frame-options', 'DENY');
    reply.header('referrer-policy', 'no-referrer');
    reply.header('cache-control', 'no-store');
    reply.header('content-security-policy', "default-src 'self'; frame-ancestors 'none'");
  });

  // Authentication: admin token (never a data-plane key).
  app.addHook('onRequest', async (request, reply) => {
    if (request.url === '/healthz' || request.url.startsWith('/console') || request.url === '/') return;
    const auth = request.headers.authorization;
    const token = auth?.startsWith('Bearer ') ? auth.slice(7).trim() : undefined;
    // The console's session cookie (console-auth.ts) stands in for a token; writes need its CSRF token.
    const viaSession = !auth && deps.consoleSession ? await deps.consoleSession(request) : undefined;
    if (viaSession && 'code' in viaSession) return sendAdminError(reply, viaSession);
    if (viaSession) {
      request.admin = viaSession;
      return;
    }
    if (!token || token.startsWith('sk-sluice-'))
      return sendAdminError(reply, refuse('SLUICE_ADMIN_UNAUTHORIZED'));
    let user = await deps.control.getAdminUserByTokenHash(hashAdminToken(deps.pepper, token));
    const old = deps.previousPepper;
    if (!user && old && old.until > deps.clock.now()) {
      // Pepper rotation: a token hashed under the previous pepper is accepted and rewritten.
      user = await deps.control.getAdminUserByTokenHash(hashAdminToken(old.pepper, token));
      if (user)
        await deps.control.updateAdminUser(user.id, { tokenHash: hashAdminToken(deps.pepper, token) });
    }
    if (!user || user.disabledAt) return sendAdminError(reply, refuse('SLUICE_ADMIN_UNAUTHORIZED'));
    request.admin = user;
  });

  // A role refusal is itself an admin event: who tried what.
  app.addHook('onResponse', (request, reply, done) => {
    if (reply.statusCode === 403 && request.admin) {
      auditAdmin(
        deps,
        request,
        'refused',
        { method: request.method, route: request.routeOptions.url ?? null },
        403,
      );
    }
    done();
  });

  app.get('/healthz', async () => ({ status: 'ok' }));

  // --- tenants and projects ---------------------------------------------------------------------
  app.get('/admin/v1/tenants', { preHandler: guard('read') }, async () => ({
    data: await deps.control.listTenants(),
  }));
  app.post('/admin/v1/tenants', { preHandler: guard('keys') }, async (request, reply) => {
    const b = (request.body ?? {}) as { id?: unknown; name?: unknown };
    if (typeof b.id !== 'string' || !/^[A-Za-z0-9_.-]{1,64}$/.test(b.id)) {
      return sendAdminError(reply, refuse('SLUICE_BAD_REQUEST', 'id must be 1-64 letters, digits, _ . -'));
    }
    if (await deps.control.getTenant(b.id))
      return sendAdminError(reply, refuse('SLUICE_ADMIN_CONFLICT', `tenant "${b.id}" exists`));
    const t = { id: b.id, name: typeof b.name === 'string' ? b.name : b.id, createdAt: deps.clock.now() };
    await deps.control.createTenant(t);
    auditAdmin(deps, request, 'tenants.create', { tenant: t.id });
    return reply.code(201).send(t);
  });
  app.get('/admin/v1/projects', { preHandler: guard('read') }, async (request) => {
    const q = request.query as { tenant?: string };
    return { data: await deps.control.listProjects(q.tenant) };
  });
  app.post('/admin/v1/projects', { preHandler: guard('keys') }, async (request, reply) => {
    const b = (request.body ?? {}) as { id?: unknown; tenant?: unknown; name?: unknown };
    if (typeof b.id !== 'string' || !/^[A-Za-z0-9_.-]{1,64}$/.test(b.id) || typeof b.tenant !== 'string') {
      return sendAdminError(
        reply,
        refuse('SLUICE_BAD_REQUEST', 'id (1-64 letters, digits, _ . -) and tenant are required'),
      );
    }
    if (!(await deps.control.getTenant(b.tenant)))
      return sendAdminError(reply, refuse('SLUICE_ADMIN_NOT_FOUND', `no tenant "${b.tenant}"`));
    if (await deps.control.getProject(b.id))
      return sendAdminError(reply, refuse('SLUICE_ADMIN_CONFLICT', `project "${b.id}" exists`));
    const p = {
      id: b.id,
      tenantId: b.tenant,
      name: typeof b.name === 'string' ? b.name : b.id,
      createdAt: deps.clock.now(),
    };
    await deps.control.createProject(p);
    auditAdmin(deps, request, 'projects.create', { tenant: p.tenantId, project: p.id });
    return reply.code(201).send(p);
  });

  // --- keys -----------------------------------------------------------------------------------------
  app.get('/admin/v1/keys', { preHandler: guard('read') }, async (request) => {
    const q = request.query as { tenant?: string; project?: string; all?: string };
    const keys = await deps.control.listKeys({
      tenantId: q.tenant,
      projectId: q.project,
      includeRevoked: q.all === 'true' || q.all === '1',
    });
    return { data: keys.map(publicKeyView) };
  });
  app.post('/admin/v1/keys', { preHandler: guard('keys') }, async (request, reply) => {
    const b = (request.body ?? {}) as Record<string, unknown>;
    try {
      const { record, key } = await deps.keys.create({
        tenant: optStr(b.tenant) ?? '',
        tier: optStr(b.tier) ?? 'default',
        project: optStr(b.project),
        name: optStr(b.name),
        owner: optStr(b.owner),
        notes: optStr(b.notes),
        expires: typeof b.expires === 'number' ? b.expires : optStr(b.expires),
        scopes: strList(b.scopes),
        models: strList(b.models),
        allowIps: strList(b.allowIps),
        denyIps: strList(b.denyIps),
        dpop: b.dpop === 'required' || b.dpop === 'optional' ? b.dpop : null,
      });
      deps.invalidateKey(record.id);
      auditAdmin(deps, request, 'keys.create', {
        tenant: record.tenantId,
        key: record.id,
        tier: record.tier,
      });
      return reply.code(201).send({ ...publicKeyView(record), key });
    } catch (err) {
      return keyError(reply, err);
    }
  });
  app.get('/admin/v1/keys/:id', { preHandler: guard('read') }, async (request, reply) => {
    try {
      return publicKeyView(await deps.keys.get((request.params as { id: string }).id));
    } catch (err) {
      return keyError(reply, err);
    }
  });
  app.patch('/admin/v1/keys/:id', { preHandler: guard('keys') }, async (request, reply) => {
    const id = (request.params as { id: string }).id;
    const b = (request.body ?? {}) as Record<string, unknown>;
    try {
      const rec = await deps.keys.update(id, {
        scopes: strList(b.scopes),
        models: strList(b.models),
        allowIps: strList(b.allowIps),
        denyIps: strList(b.denyIps),
        name: optStr(b.name),
        owner: optStr(b.owner),
        notes: optStr(b.notes),
        expires: typeof b.expires === 'number' ? b.expires : optStr(b.expires),
        dpop:
          b.dpop === 'required' || b.dpop === 'optional' || b.dpop === null
            ? (b.dpop as 'required' | null)
            : undefined,
      });
      deps.invalidateKey(id);
      auditAdmin(deps, request, 'keys.update', { tenant: rec.tenantId, key: id, fields: Object.keys(b) });
      return publicKeyView(rec);
    } catch (err) {
      return keyError(reply, err);
    }
  });
  app.post('/admin/v1/keys/:id/revoke', { preHandler: guard('keys') }, async (request, reply) => {
    const id = (request.params as { id: string }).id;
    try {
      const rec = await deps.keys.revoke(id);
      deps.invalidateKey(id);
      auditAdmin(deps, request, 'keys.revoke', { tenant: rec.tenantId, key: id });
      return publicKeyView(rec);
    } catch (err) {
      return keyError(reply, err);
    }
  });
  app.post('/admin/v1/keys/:id/rotate', { preHandler: guard('keys') }, async (request, reply) => {
    const id = (request.params as { id: string }).id;
    const b = (request.body ?? {}) as { grace?: unknown };
    try {
      const { record, key } = await deps.keys.rotate(
        id,
        typeof b.grace === 'string' || typeof b.grace === 'number' ? b.grace : '24h',
      );
      deps.invalidateKey(id);
      auditAdmin(deps, request, 'keys.rotate', { tenant: record.tenantId, key: id, grace: b.grace ?? '24h' });
      return { ...publicKeyView(record), key };
    } catch (err) {
      return keyError(reply, err);
    }
  });

  app.post('/admin/v1/keys/:id/totp', { preHandler: guard('keys') }, async (request, reply) => {
    const id = (request.params as { id: string }).id;
    try {
      const r = await deps.keys.enrollTotp(id);
      deps.invalidateKey(id);
      auditAdmin(deps, request, 'keys.totp.enroll', { key: id });
      return r;
    } catch (err) {
      return keyError(reply, err);
    }
  });

  // --- destructive tenant operations (step-up) -------------------------------------------------------
  const revokeAll = async (tenant: string) => {
    const keys = await deps.control.listKeys({ tenantId: tenant });
    const now = deps.clock.now();
    for (const k of keys) {
      if (!k.revokedAt) {
        await deps.control.updateKey(k.id, { revokedAt: now });
        deps.invalidateKey(k.id);
      }
    }
    return keys.filter((k) => !k.revokedAt).length;
  };
  app.post('/admin/v1/tenants/:id/revoke-all', { preHandler: guard('keys') }, async (request, reply) => {
    const id = (request.params as { id: string }).id;
    if (!(await deps.control.getTenant(id)))
      return sendAdminError(reply, refuse('SLUICE_ADMIN_NOT_FOUND', `no tenant "${id}"`));
    if (!(await stepUpOk(request, reply, deps.clock))) return reply;
    const revoked = await revokeAll(id);
    auditAdmin(deps, request, 'tenants.revoke-all', { tenant: id, revoked });
    return { tenant: id, revoked };
  });
  app.delete('/admin/v1/tenants/:id', { preHandler: guard('admin') }, async (request, reply) => {
    const id = (request.params as { id: string }).id;
    if (!(await deps.control.getTenant(id)))
      return sendAdminError(reply, refuse('SLUICE_ADMIN_NOT_FOUND', `no tenant "${id}"`));
    if (!(await stepUpOk(request, reply, deps.clock))) return reply;
    const revoked = await revokeAll(id);
    await deps.control.deleteTenant(id, deps.clock.now());
    auditAdmin(deps, request, 'tenants.delete', { tenant: id, revoked });
    return { tenant: id, deleted: true, revoked };
  });

  // --- admin users ------------------------------------------------------------------------------------
  app.get('/admin/v1/users', { preHandler: guard('admin') }, async () => ({
    data: (await deps.control.listAdminUsers()).map((u) => ({
      id: u.id,
      name: u.name,
      role: u.role,
      totp: !!u.totpSecret,
      createdAt: new Date(u.createdAt).toISOString(),
      disabledAt: u.disabledAt ? new Date(u.disabledAt).toISOString() : null,
    })),
  }));
  app.post('/admin/v1/users', { preHandler: guard('admin') }, async (request, reply) => {
    const b = (request.body ?? {}) as { name?: unknown; role?: unknown };
    if (
      typeof b.name !== 'string' ||
      !/^[A-Za-z0-9_.@-]{1,64}$/.test(b.name) ||
      !['admin', 'operator', 'auditor'].includes(b.role as string)
    ) {
      return sendAdminError(
        reply,
        refuse(
          'SLUICE_BAD_REQUEST',
          'name (1-64 letters, digits, _ . @ -) and role (admin|operator|auditor) are required',
        ),
      );
    }
    const token = `sa-${randomBytes(24).toString('base64url')}`;
    const user = {
      id: newId('adm'),
      name: b.name,
      role: b.role as AdminRole,
      tokenHash: hashAdminToken(deps.pepper, token),
      createdAt: deps.clock.now(),
    };
    await deps.control.createAdminUser(user);
    auditAdmin(deps, request, 'users.create', { user: user.id, name: user.name, role: user.role });
    return reply.code(201).send({ id: user.id, name: user.name, role: user.role, token });
  });
  app.post('/admin/v1/me/totp', { preHandler: guard('read') }, async (request, reply) => {
    const u = request.admin!;
    // Replacing an enrolled factor needs the current one, or a stolen token could reset it.
    if (u.totpSecret && !(await stepUpOk(request, reply, deps.clock))) return reply;
    const secret = newTotpSecret();
    await deps.control.updateAdminUser(u.id, { totpSecret: secret });
    auditAdmin(deps, request, 'users.totp.enroll', { user: u.id });
    return { secret, otpauthUrl: otpauthUrl(secret, `admin:${u.name}`) };
  });

  // --- usage ------------------------------------------------------------------------------------------
  app.get('/admin/v1/usage', { preHandler: guard('read') }, async (request, reply) => {
    const q = request.query as Record<string, string | undefined>;
    const groupBy = (q.groupBy ?? 'tenant') as 'key' | 'project' | 'tenant' | 'model';
    const bucket = (q.bucket ?? 'hour') as 'hour' | 'day';
    if (!['key', 'project', 'tenant', 'model'].includes(groupBy) || !['hour', 'day'].includes(bucket)) {
      return sendAdminError(
        reply,
        refuse('SLUICE_BAD_REQUEST', 'groupBy is key|project|tenant|model, bucket is hour|day'),
      );
    }
    const now = deps.clock.now();
    const since = q.since ? Date.parse(q.since) : now - 86_400_000;
    const until = q.until ? Date.parse(q.until) : now + 1;
    if (Number.isNaN(since) || Number.isNaN(until))
      return sendAdminError(reply, refuse('SLUICE_BAD_REQUEST', 'since/until must be ISO dates'));
    const rows = await deps.usage.query({ groupBy, bucket, since, until, tenantId: q.tenant, keyId: q.key });
    return { data: rows.map((r) => ({ ...r, bucketStart: new Date(r.bucketStart).toISOString() })) };
  });

  for (const p of deps.plugins ?? []) p(app, deps);
  return app;
}
