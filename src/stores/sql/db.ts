/**
 * Opens the control database: SQLite (`<dataDir>/sluice.db`, WAL) by default, PostgreSQL when a
 * `postgres://` url is given, both through Kysely, with the same migrations applied at start.
 */
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { Kysely, Migrator, PostgresDialect, SqliteDialect } from 'kysely';
import pg from 'pg';
import { ensureDataDir } from '../data-dir.js';
import { migrations } from './migrations.js';

export interface TenantsTable {
  id: string;
  name: string;
  tier: string | null;
  created_at: number;
  deleted_at: number | null;
}

export interface ProjectsTable {
  id: string;
  tenant_id: string;
  name: string;
  scopes: string | null;
  models: string | null;
  created_at: number;
}

export interface ApiKeysTable {
  id: string;
  hash: string;
  prev_hash: string | null;
  prev_expires_at: number | null;
  tenant_id: string;
  project_id: string | null;
  tier: string;
  name: string | null;
  owner: string | null;
  notes: string | null;
  scopes: string | null;
  models: string | null;
  allow_ips: string | null;
  deny_ips: string | null;
  dpop: string | null;
  totp_secret: string | null;
  expires_at: number | null;
  revoked_at: number | null;
  created_at: number;
  last_used_at: number | null;
  last_used_ip: string | null;
}

export interface PolicyVersionsTable {
  version: number;
  hash: string;
  source: string;
  author: string;
  message: string;
  created_at: number;
}

export interface AdminUsersTable {
  id: string;
  name: string;
  role: string;
  token_hash: string;
  totp_secret: string | null;
  created_at: number;
  disabled_at: number | null;
}

export interface UsageTable {
  request_id: string;
  at: number;
  key_id: string;
  tenant_id: string;
  project_id: string | null;
  model: string;
  action: string;
  upstream: string;
  input_tokens: number;
  output_tokens: number;
  images: number;
  usd: number;
  status: number;
  latency_ms: number;
}

export interface AuditEventsTable {
  instance: string;
  seq: number;
  at: number;
  request_id: string | null;
  key_id: string | null;
  tenant_id: string | null;
  project_id: string | null;
  client_ip: string | null;
  country: string | null;
  user_agent: string | null;
  action: string;
  model: string | null;
  decision: string;
  reason: string;
  policy_version: number | null;
  details: string | null;
  prev_hash: string;
  hash: string;
}

export interface AuditCheckpointsTable {
  instance: string;
  kind: string;
  seq: number;
  hash: string;
  at: number;
  key_id: string | null;
  signature: string;
}

/** The Kysely schema of the control database. */
export interface SluiceDb {
  tenants: TenantsTable;
  projects: ProjectsTable;
  api_keys: ApiKeysTable;
  policy_versions: PolicyVersionsTable;
  admin_users: AdminUsersTable;
  usage: UsageTable;
  audit_events: AuditEventsTable;
  audit_checkpoints: AuditCheckpointsTable;
}

export type SqlDialectName = 'sqlite' | 'postgres';

/**
 * An open database. `migrate` is idempotent and safe to run from several instances at once
 * (PostgreSQL: advisory lock; SQLite: one write transaction). `close` is idempotent.
 */
export interface SqlDatabase {
  db: Kysely<SluiceDb>;
  dialect: SqlDialectName;
  migrate(): Promise<void>;
  close(): Promise<void>;
}

export interface OpenDatabaseOptions {
  /** `postgres://...` or `postgresql://...`; absent means SQLite in `dataDir`. */
  url?: string;
  dataDir: string;
  /** Apply migrations before returning (default true). */
  migrate?: boolean;
  /** PostgreSQL pool size (default 10). */
  poolSize?: number;
  /** SQLite busy timeout when another process holds the write lock (default 5000 ms). */
  busyTimeoutMs?: number;
}

// int8 (20) and numeric (1700) arrive as strings from pg by default; every bigint Sluice stores is an
// epoch-ms timestamp, a seq or a token count, all far below 2^53.
const PG_INT8 = 20;
const PG_NUMERIC = 1700;
const pgTypes = {
  getTypeParser(oid: number, format?: 'text' | 'binary') {
    if (oid === PG_INT8 || oid === PG_NUMERIC) return (v: string) => Number(v);
    return pg.types.getTypeParser(oid, format as 'text');
  },
} as pg.CustomTypesConfig;

export async function openDatabase(opts: OpenDatabaseOptions): Promise<SqlDatabase> {
  let db: Kysely<SluiceDb>;
  let dialect: SqlDialectName;
  if (opts.url !== undefined && opts.url !== '') {
    if (!/^postgres(ql)?:\/\//.test(opts.url)) {
      throw new Error(
        'database.url must start with postgres:// (leave it out to use SQLite in the data dir)',
      );
    }
    const pool = new pg.Pool({ connectionString: opts.url, max: opts.poolSize ?? 10, types: pgTypes });
    // An idle client's error (server restart) must not crash the process; the next query reconnects.
    pool.on('error', () => {});
    db = new Kysely<SluiceDb>({ dialect: new PostgresDialect({ pool }) });
    dialect = 'postgres';
  } else {
    const file = join(ensureDataDir(opts.dataDir), 'sluice.db');
    const sqlite = new Database(file);
    sqlite.pragma('journal_mode = WAL');
    sqlite.pragma(`busy_timeout = ${Math.max(0, Math.floor(opts.busyTimeoutMs ?? 5000))}`);
    // NORMAL is durable against a process crash (kill -9) in WAL mode; only power loss can lose the last commits.
    sqlite.pragma('synchronous = NORMAL');
    db = new Kysely<SluiceDb>({ dialect: new SqliteDialect({ database: sqlite }) });
    dialect = 'sqlite';
  }
  let closed: Promise<void> | undefined;
  const handle: SqlDatabase = {
    db,
    dialect,
    migrate: () => runMigrations(db),
    close: () => {
      closed ??= db.destroy();
      return closed;
    },
  };
  if (opts.migrate !== false) {
    try {
      await handle.migrate();
    } catch (err) {
      await handle.close();
      throw err;
    }
  }
  return handle;
}

async function runMigrations(db: Kysely<SluiceDb>): Promise<void> {
  const migrator = new Migrator({
    db,
    provider: { getMigrations: async () => migrations },
    migrationTableName: 'sluice_migration',
    migrationLockTableName: 'sluice_migration_lock',
  });
  const { error, results } = await migrator.migrateToLatest();
  if (error) {
    const failed = results?.find((r) => r.status === 'Error')?.migrationName;
    throw new Error(
      `database migration ${failed ?? ''} failed: ${(error as Error).message ?? String(error)}`,
      {
        cause: error,
      },
    );
  }
}

/** An Error with `code = 'CONFLICT'`, as the store ports promise for conflicting writes. */
export function conflictError(message: string): Error {
  return Object.assign(new Error(message), { code: 'CONFLICT' });
}

/** An Error with `code = 'NOT_FOUND'`, for updates of rows that do not exist. */
export function notFoundError(message: string): Error {
  return Object.assign(new Error(message), { code: 'NOT_FOUND' });
}

/** True for a primary-key or unique violation on either dialect. */
export function isUniqueViolation(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return code === '23505' || code === 'SQLITE_CONSTRAINT_PRIMARYKEY' || code === 'SQLITE_CONSTRAINT_UNIQUE';
}

export function toJsonText(v: unknown[] | null | undefined): string | null {
  return v === null || v === undefined ? null : JSON.stringify(v);
}

export function fromJsonText<T>(v: string | null): T | null {
  return v === null ? null : (JSON.parse(v) as T);
}
