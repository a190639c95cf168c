/**
 * ControlStore on SQLite or PostgreSQL (Kysely). Conflicting creates throw `code = 'CONFLICT'`;
 * updates of missing rows throw `code = 'NOT_FOUND'`; reads of missing rows return undefined.
 */
import type { Selectable } from 'kysely';
import type {
  AdminRole,
  AdminUser,
  ApiKeyRecord,
  ControlStore,
  KeyFilter,
  PolicyVersion,
  Project,
  Tenant,
} from '../../core/ports.js';
import {
  type AdminUsersTable,
  type ApiKeysTable,
  conflictError,
  fromJsonText,
  isUniqueViolation,
  notFoundError,
  type PolicyVersionsTable,
  type ProjectsTable,
  type SqlDatabase,
  type TenantsTable,
  toJsonText,
} from './db.js';

function tenantFromRow(r: Selectable<TenantsTable>): Tenant {
  return { id: r.id, name: r.name, tier: r.tier, createdAt: r.created_at, deletedAt: r.deleted_at };
}

function projectFromRow(r: Selectable<ProjectsTable>): Project {
  return {
    id: r.id,
    tenantId: r.tenant_id,
    name: r.name,
    scopes: fromJsonText<string[]>(r.scopes),
    models: fromJsonText<string[]>(r.models),
    createdAt: r.created_at,
  };
}

function keyFromRow(r: Selectable<ApiKeysTable>): ApiKeyRecord {
  return {
    id: r.id,
    hash: r.hash,
    prevHash: r.prev_hash,
    prevExpiresAt: r.prev_expires_at,
    tenantId: r.tenant_id,
    projectId: r.project_id,
    tier: r.tier,
    name: r.name,
    owner: r.owner,
    notes: r.notes,
    scopes: fromJsonText<string[]>(r.scopes),
    models: fromJsonText<string[]>(r.models),
    allowIps: fromJsonText<string[]>(r.allow_ips),
    denyIps: fromJsonText<string[]>(r.deny_ips),
    dpop: r.dpop as ApiKeyRecord['dpop'],
    totpSecret: r.totp_secret,
    expiresAt: r.expires_at,
    revokedAt: r.revoked_at,
    createdAt: r.created_at,
    lastUsedAt: r.last_used_at,
    lastUsedIp: r.last_used_ip,
  };
}

type KeyPatch = Partial<Omit<ApiKeyRecord, 'id' | 'createdAt'>>;

/** Column values for the fields present in a key patch (undefined fields are left alone, null clears). */
function keyColumns(p: KeyPatch): Partial<ApiKeysTable> {
  const out: Partial<ApiKeysTable> = {};
  const set = <K extends keyof ApiKeysTable>(k: K, v: ApiKeysTable[K] | undefined) => {
    if (v !== undefined) out[k] = v;
  };
  const json = (v: string[] | null | undefined) => (v === undefined ? undefined : toJsonText(v));
  set('hash', p.hash);
  set('prev_hash', p.prevHash);
  set('prev_expires_at', p.prevExpiresAt);
  set('tenant_id', p.tenantId);
  set('project_id', p.projectId);
  set('tier', p.tier);
  set('name', p.name);
  set('owner', p.owner);
  set('notes', p.notes);
  set('scopes', json(p.scopes));
  set('models', json(p.models));
  set('allow_ips', json(p.allowIps));
  set('deny_ips', json(p.denyIps));
  set('dpop', p.dpop);
  set('totp_secret', p.totpSecret);
  set('expires_at', p.expiresAt);
  set('revoked_at', p.revokedAt);
  set('last_used_at', p.lastUsedAt);
  set('last_used_ip', p.lastUsedIp);
  return out;
}

function policyFromRow(r: Selectable<PolicyVersionsTable>): PolicyVersion {
  return {
    version: r.version,
    hash: r.hash,
    source: r.source,
    author: r.author,
    message: r.message,
    createdAt: r.created_at,
  };
}

function adminFromRow(r: Selectable<AdminUsersTable>): AdminUser {
  return {
    id: r.id,
    name: r.name,
    role: r.role as AdminRole,
    tokenHash: r.token_hash,
    totpSecret: r.totp_secret,
    createdAt: r.created_at,
    disabledAt: r.disabled_at,
  };
}

/** Concurrent savePolicyVersion calls on PostgreSQL can pick the same number; the loser retries. */
const POLICY_VERSION_ATTEMPTS = 8;

export class SqlControlStore implements ControlStore {
  constructor(readonly sql: SqlDatabase) {}

  private get db() {
    return this.sql.db;
  }

  async migrate(): Promise<void> {
    await this.sql.migrate();
  }

  async #insert<T>(what: string, run: () => Promise<T>): Promise<T> {
    try {
      return await run();
    } catch (err) {
      if (isUniqueViolation(err)) throw conflictError(`${what} already exists`);
      throw err;
    }
  }

  // --- tenants -------------------------------------------------------------------------------

  async createTenant(t: Tenant): Promise<void> {
    await this.#insert(`tenant ${t.id}`, () =>
      this.db
        .insertInto('tenants')
        .values({
          id: t.id,
          name: t.name,
          tier: t.tier ?? null,
          created_at: t.createdAt,
          deleted_at: t.deletedAt ?? null,
        })
        .execute(),
    );
  }

  async getTenant(id: string): Promise<Tenant | undefined> {
    const r = await this.db.selectFrom('tenants').selectAll().where('id', '=', id).executeTakeFirst();
    return r && tenantFromRow(r);
  }

  /** Every tenant, deleted ones included (they carry `deletedAt`), oldest first. */
  async listTenants(): Promise<Tenant[]> {
    const rows = await this.db
      .selectFrom('tenants')
      .selectAll()
      .orderBy('created_at')
      .orderBy('id')
      .execute();
    return rows.map(tenantFromRow);
  }

  /** Soft delete: sets `deletedAt` once (a second delete keeps the first time). NOT_FOUND if missing. */
  async deleteTenant(id: string, at: number): Promise<void> {
    const r = await this.db
      .updateTable('tenants')
      .set((eb) => ({ deleted_at: eb.fn.coalesce('deleted_at', eb.val(at)) }))
      .where('id', '=', id)
      .executeTakeFirst();
    if (Number(r.numUpdatedRows) === 0) throw notFoundError(`tenant ${id} not found`);
  }

  // --- projects ------------------------------------------------------------------------------

  async createProject(p: Project): Promise<void> {
    await this.#insert(`project ${p.id}`, () =>
      this.db
        .insertInto('projects')
        .values({
          id: p.id,
          tenant_id: p.tenantId,
          name: p.name,
          scopes: toJsonText(p.scopes),
          models: toJsonText(p.models),
          created_at: p.createdAt,
        })
        .execute(),
    );
  }

  async getProject(id: string): Promise<Project | undefined> {
    const r = await this.db.selectFrom('projects').selectAll().where('id', '=', id).executeTakeFirst();
    return r && projectFromRow(r);
  }

  async listProjects(tenantId?: string): Promise<Project[]> {
    let q = this.db.selectFrom('projects').selectAll();
    if (tenantId !== undefined) q = q.where('tenant_id', '=', tenantId);
    const rows = await q.orderBy('created_at').orderBy('id').execute();
    return rows.map(projectFromRow);
  }

  // --- keys ----------------------------------------------------------------------------------

  async createKey(k: ApiKeyRecord): Promise<void> {
    const cols = keyColumns(k);
    await this.#insert(`key ${k.id}`, () =>
      this.db
        .insertInto('api_keys')
        .values({
          prev_hash: null,
          prev_expires_at: null,
          project_id: null,
          name: null,
          owner: null,
          notes: null,
          scopes: null,
          models: null,
          allow_ips: null,
          deny_ips: null,
          dpop: null,
          totp_secret: null,
          expires_at: null,
          revoked_at: null,
          last_used_at: null,
          last_used_ip: null,
          ...cols,
          id: k.id,
          hash: k.hash,
          tenant_id: k.tenantId,
          tier: k.tier,
          created_at: k.createdAt,
        })
        .execute(),
    );
  }

  async getKey(id: string): Promise<ApiKeyRecord | undefined> {
    const r = await this.db.selectFrom('api_keys').selectAll().where('id', '=', id).executeTakeFirst();
    return r && keyFromRow(r);
  }

  /** Keys oldest first; revoked keys only with `includeRevoked`. */
  async listKeys(filter: KeyFilter = {}): Promise<ApiKeyRecord[]> {
    let q = this.db.selectFrom('api_keys').selectAll();
    if (filter.tenantId !== undefined) q = q.where('tenant_id', '=', filter.tenantId);
    if (filter.projectId !== undefined) q = q.where('project_id', '=', filter.projectId);
    if (!filter.includeRevoked) q = q.where('revoked_at', 'is', null);
    const rows = await q.orderBy('created_at').orderBy('id').execute();
    return rows.map(keyFromRow);
  }

  /** Sets the fields present in `patch` (null clears). NOT_FOUND if the key does not exist. */
  async updateKey(id: string, patch: KeyPatch): Promise<void> {
    const cols = keyColumns(patch);
    if (Object.keys(cols).length === 0) {
      if (!(await this.getKey(id))) throw notFoundError(`key ${id} not found`);
      return;
    }
    const r = await this.db.updateTable('api_keys').set(cols).where('id', '=', id).executeTakeFirst();
    if (Number(r.numUpdatedRows) === 0) throw notFoundError(`key ${id} not found`);
  }

  /**
   * One transaction for the whole batch. Keeps the latest time per key and never moves
   * `lastUsedAt` backwards (touches from several instances may arrive out of order). Unknown ids are ignored.
   */
  async touchKeys(touches: { id: string; at: number; ip: string | null }[]): Promise<void> {
    if (touches.length === 0) return;
    const latest = new Map<string, { at: number; ip: string | null }>();
    for (const t of touches) {
      const cur = latest.get(t.id);
      if (!cur || t.at >= cur.at) latest.set(t.id, { at: t.at, ip: t.ip });
    }
    await this.db.transaction().execute(async (tx) => {
      for (const [id, t] of latest) {
        await tx
          .updateTable('api_keys')
          .set({ last_used_at: t.at, last_used_ip: t.ip })
          .where('id', '=', id)
          .where((eb) => eb.or([eb('last_used_at', 'is', null), eb('last_used_at', '<=', t.at)]))
          .execute();
      }
    });
  }

  // --- policy versions -----------------------------------------------------------------------

  /** Numbers versions 1, 2, ... in commit order, also across instances sharing PostgreSQL. */
  async savePolicyVersion(v: Omit<PolicyVersion, 'version'>): Promise<PolicyVersion> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.db.transaction().execute(async (tx) => {
          const top = await tx
            .selectFrom('policy_versions')
            .select((eb) => eb.fn.max('version').as('v'))
            .executeTakeFirst();
          const version = Number(top?.v ?? 0) + 1;
          const row = {
            version,
            hash: v.hash,
            source: v.source,
            author: v.author,
            message: v.message,
            created_at: v.createdAt,
          };
          await tx.insertInto('policy_versions').values(row).execute();
          return policyFromRow(row);
        });
      } catch (err) {
        if (!isUniqueViolation(err) || attempt >= POLICY_VERSION_ATTEMPTS) throw err;
      }
    }
  }

  async getPolicyVersion(version: number): Promise<PolicyVersion | undefined> {
    const r = await this.db
      .selectFrom('policy_versions')
      .selectAll()
      .where('version', '=', version)
      .executeTakeFirst();
    return r && policyFromRow(r);
  }

  async latestPolicyVersion(): Promise<PolicyVersion | undefined> {
    const r = await this.db
      .selectFrom('policy_versions')
      .selectAll()
      .orderBy('version', 'desc')
      .limit(1)
      .executeTakeFirst();
    return r && policyFromRow(r);
  }

  /** Oldest first, without the source text. */
  async listPolicyVersions(): Promise<Omit<PolicyVersion, 'source'>[]> {
    const rows = await this.db
      .selectFrom('policy_versions')
      .select(['version', 'hash', 'author', 'message', 'created_at'])
      .orderBy('version')
      .execute();
    return rows.map((r) => ({
      version: r.version,
      hash: r.hash,
      author: r.author,
      message: r.message,
      createdAt: r.created_at,
    }));
  }

  // --- admin users ---------------------------------------------------------------------------

  /** CONFLICT when the id or the token hash is taken. */
  async createAdminUser(u: AdminUser): Promise<void> {
    await this.#insert(`admin user ${u.id}`, () =>
      this.db
        .insertInto('admin_users')
        .values({
          id: u.id,
          name: u.name,
          role: u.role,
          token_hash: u.tokenHash,
          totp_secret: u.totpSecret ?? null,
          created_at: u.createdAt,
          disabled_at: u.disabledAt ?? null,
        })
        .execute(),
    );
  }

  async getAdminUserByTokenHash(hash: string): Promise<AdminUser | undefined> {
    const r = await this.db
      .selectFrom('admin_users')
      .selectAll()
      .where('token_hash', '=', hash)
      .executeTakeFirst();
    return r && adminFromRow(r);
  }

  async listAdminUsers(): Promise<AdminUser[]> {
    const rows = await this.db
      .selectFrom('admin_users')
      .selectAll()
      .orderBy('created_at')
      .orderBy('id')
      .execute();
    return rows.map(adminFromRow);
  }

  async updateAdminUser(
    id: string,
    patch: { totpSecret?: string | null; disabledAt?: number | null; tokenHash?: string },
  ): Promise<void> {
    const set: { totp_secret?: string | null; disabled_at?: number | null; token_hash?: string } = {};
    if (patch.tokenHash !== undefined) set.token_hash = patch.tokenHash;
    if (patch.totpSecret !== undefined) set.totp_secret = patch.totpSecret;
    if (patch.disabledAt !== undefined) set.disabled_at = patch.disabledAt;
    if (Object.keys(set).length === 0) return;
    const r = await this.db.updateTable('admin_users').set(set).where('id', '=', id).executeTakeFirst();
    if (Number(r.numUpdatedRows) === 0) throw notFoundError(`admin user ${id} not found`);
  }

  /** Closes the shared database handle (the usage ledger and audit store on it stop working too). */
  async close(): Promise<void> {
    await this.sql.close();
  }
}
