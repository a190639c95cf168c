/**
 * Sign-in for the admin console: a username and password per admin user (scrypt, in the
 * `admin_passwords` table of migration 0005) exchanged for a short-lived session cookie
 * (HttpOnly, SameSite=Strict) that the management plane accepts in place of an admin token, with a
 * CSRF token required on every write. The session carries the user's role: the same guards apply.
 *
 *   POST   /console/session  {username, password}  → cookie + {csrfToken, user, role}
 *   DELETE /console/session
 *   GET    /console/session  → who is signed in (or 401)
 *   POST   /admin/v1/me/password  {password}  sets the caller's own console password (any role)
 */
import { randomBytes, scrypt, timingSafeEqual } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Kysely } from 'kysely';
import { type Refusal, refuse } from '../core/errors.js';
import type { AdminUser, AuditSink, Clock, ControlStore } from '../core/ports.js';
import { cookieValue } from '../gateway/portal/routes.js';
import type { SqlDatabase } from '../stores/sql/db.js';
import { type AdminDeps, auditAdmin, guard, sendAdminError } from './app.js';

/** 8 hours: one working day at the console. */
export const CONSOLE_SESSION_MS = 8 * 3_600_000;
const COOKIE = 'sluice_console';
const MAX_SESSIONS = 1000;
/** scrypt N=2^15, r=8, p=1: ~50 ms a check, 32 MiB, the OWASP minimum for scrypt. */
const SCRYPT = { N: 1 << 15, r: 8, p: 1, maxmem: 64 * 1024 * 1024 };

interface PasswordsTable {
  user_id: string;
  username: string;
  hash: string;
  created_at: number;
}

function scryptAsync(password: string, salt: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) =>
    scrypt(password, salt, 32, SCRYPT, (err, key) => (err ? reject(err) : resolve(key))),
  );
}

export async function hashPassword(password: string): Promise<string> {
  const salt = randomBytes(16);
  const key = await scryptAsync(password, salt);
  return `scrypt$${SCRYPT.N}$${salt.toString('base64url')}$${key.toString('base64url')}`;
}

export async function verifyPassword(password: string, stored: string): Promise<boolean> {
  const [alg, n, salt, key] = stored.split('$');
  if (alg !== 'scrypt' || Number(n) !== SCRYPT.N || !salt || !key) return false;
  const got = await scryptAsync(password, Buffer.from(salt, 'base64url'));
  const want = Buffer.from(key, 'base64url');
  return got.length === want.length && timingSafeEqual(got, want);
}

interface Session {
  userId: string;
  csrf: string;
  expiresAt: number;
}

export class ConsoleAuth {
  private readonly db: Kysely<{ admin_passwords: PasswordsTable }>;
  private readonly sessions = new Map<string, Session>();
  /** A wrong password costs the same scrypt as a right one, also for unknown users. */
  private readonly dummy = hashPassword(randomBytes(16).toString('hex'));

  constructor(
    sql: SqlDatabase,
    private readonly control: ControlStore,
    private readonly clock: Clock,
    private readonly audit: AuditSink,
  ) {
    this.db = sql.db as unknown as Kysely<{ admin_passwords: PasswordsTable }>;
  }

  async setPassword(user: AdminUser, password: string): Promise<void> {
    const hash = await hashPassword(password);
    await this.db.deleteFrom('admin_passwords').where('user_id', '=', user.id).execute();
    await this.db
      .insertInto('admin_passwords')
      .values({ user_id: user.id, username: user.name, hash, created_at: this.clock.now() })
      .execute();
  }

  /**
   * First start: when no admin user has a password yet, gives the first `admin` one, written once to
   * `<dataDir>/console-password` (0600). Returns the file, or null when nothing was created.
   */
  async bootstrap(dataDir: string): Promise<string | null> {
    const any = await this.db.selectFrom('admin_passwords').select('user_id').limit(1).executeTakeFirst();
    if (any) return null;
    const admin = (await this.control.listAdminUsers()).find((u) => u.role === 'admin' && !u.disabledAt);
    if (!admin) return null;
    const password = randomBytes(18).toString('base64url');
    await this.setPassword(admin, password);
    const file = join(dataDir, 'console-password');
    writeFileSync(file, `username: ${admin.name}\npassword: ${password}\n`, { mode: 0o600 });
    return file;
  }

  /** For the management plane's authentication hook: the session's user, a refusal, or undefined (no session). */
  resolve = async (request: FastifyRequest): Promise<AdminUser | Refusal | undefined> => {
    const id = cookieValue(request.headers.cookie, COOKIE);
    if (!id) return undefined;
    const s = this.sessions.get(id);
    if (!s || s.expiresAt <= this.clock.now()) {
      if (s) this.sessions.delete(id);
      return undefined;
    }
    if (request.method !== 'GET' && request.method !== 'HEAD') {
      const sent = request.headers['x-csrf-token'];
      const a = Buffer.from(typeof sent === 'string' ? sent : '');
      const b = Buffer.from(s.csrf);
      if (a.length !== b.length || !timingSafeEqual(a, b)) return refuse('SLUICE_CSRF_FAILED');
    }
    const user = (await this.control.listAdminUsers()).find((u) => u.id === s.userId);
    if (!user || user.disabledAt) {
      this.sessions.delete(id);
      return undefined;
    }
    return user;
  };

  routes = (app: FastifyInstance, deps: AdminDeps) => {
    app.post('/admin/v1/me/password', { preHandler: guard('read') }, async (request, reply) => {
      const b = (request.body ?? {}) as { password?: unknown };
      if (typeof b.password !== 'string' || b.password.length < 12 || b.password.length > 1024)
        return sendAdminError(
          reply,
          refuse('SLUICE_BAD_REQUEST', '"password" must be 12 to 1024 characters'),
        );
      await this.setPassword(request.admin!, b.password);
      auditAdmin(deps, request, 'users.password', { user: request.admin!.id });
      return reply.code(204).send();
    });
    app.post('/console/session', async (request, reply) => {
      const b = (request.body ?? {}) as { username?: unknown; password?: unknown };
      if (typeof b.username !== 'string' || typeof b.password !== 'string' || b.password.length > 1024)
        return sendAdminError(reply, refuse('SLUICE_BAD_REQUEST', '"username" and "password" are required'));
      const row = await this.db
        .selectFrom('admin_passwords')
        .selectAll()
        .where('username', '=', b.username)
        .executeTakeFirst();
      const ok = await verifyPassword(b.password, row?.hash ?? (await this.dummy));
      const user =
        ok && row ? (await this.control.listAdminUsers()).find((u) => u.id === row.user_id) : undefined;
      this.audit.emit({
        at: this.clock.now(),
        requestId: request.id,
        keyId: null,
        tenantId: null,
        projectId: null,
        clientIp: request.ip,
        country: null,
        userAgent: (request.headers['user-agent'] as string | undefined)?.slice(0, 256) ?? null,
        action: 'admin.console.signin',
        model: null,
        decision: 'admin',
        reason: user && !user.disabledAt ? 'ok' : 'SLUICE_ADMIN_LOGIN_FAILED',
        policyVersion: null,
        details: { username: b.username.slice(0, 64) },
      });
      if (!user || user.disabledAt) return sendAdminError(reply, refuse('SLUICE_ADMIN_LOGIN_FAILED'));
      const now = this.clock.now();
      if (this.sessions.size >= MAX_SESSIONS) {
        for (const [k, s] of this.sessions) if (s.expiresAt <= now) this.sessions.delete(k);
        if (this.sessions.size >= MAX_SESSIONS)
          this.sessions.delete(this.sessions.keys().next().value as string);
      }
      const id = randomBytes(32).toString('base64url');
      const csrf = randomBytes(24).toString('base64url');
      this.sessions.set(id, { userId: user.id, csrf, expiresAt: now + CONSOLE_SESSION_MS });
      const secure = request.protocol === 'https' ? '; Secure' : '';
      reply.header(
        'set-cookie',
        `${COOKIE}=${id}; Path=/; HttpOnly; SameSite=Strict; Max-Age=${CONSOLE_SESSION_MS / 1000}${secure}`,
      );
      return { csrfToken: csrf, user: user.name, role: user.role };
    });
    // Lets a reloaded page pick its session up again. Same-origin only (no CORS), so the CSRF token stays private.
    app.get('/console/session', async (request, reply) => {
      const id = cookieValue(request.headers.cookie, COOKIE);
      const s = id ? this.sessions.get(id) : undefined;
      const user = s ? await this.resolve(request) : undefined;
      if (!s || !user || 'code' in user) return sendAdminError(reply, refuse('SLUICE_SESSION_INVALID'));
      reply.header('cache-control', 'no-store');
      return { csrfToken: s.csrf, user: user.name, role: user.role };
    });
    app.delete('/console/session', async (request, reply) => {
      const id = cookieValue(request.headers.cookie, COOKIE);
      const r = await this.resolve(request);
      if (r && 'code' in r) return sendAdminError(reply, r);
      if (id) this.sessions.delete(id);
      reply.header('set-cookie', `${COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0`);
      return reply.code(204).send();
    });
  };
}
