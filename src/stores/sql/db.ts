/**
 * Opens the control database: SQLite (`<dataDir>/sluice.db`, WAL) by default, PostgreSQL when a
 * `postgres://` url is given, both through Kysely, with the same migrations applied at start.
 */
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { Kysely, Migrator, PostgresDialect, type SqliteDatabase, SqliteDialect, sql } from 'kysely';
import type pg from 'pg';
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
  /**
   * The raw better-sqlite3 connection (SQLite only), for the hot batched writers: a cached prepared
   * statement run N times in one transaction costs a fraction of Kysely compiling a multi-row INSERT.
   */
  sqlite?: Database.Database;
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
  /** SQLite busy timeout when another process holds the write lock (default 250 ms). */
  busyTimeoutMs?: number;
  /**
   * Connection-level errors no query is waiting for (PostgreSQL restarted: 57P01 "terminating
   * connection due to unexpected postmaster exit"). Without a listener they would crash the process.
   */
  onConnectionError?: (err: Error) => void;
}

// int8 (20) and numeric (1700) arrive as strings from pg by default; every bigint Sluice stores is an
// epoch-ms timestamp, a seq or a token count, all far below 2^53.
const PG_INT8 = 20;
const PG_NUMERIC = 1700;
function pgTypes(types: typeof pg.types): pg.CustomTypesConfig {
  return {
    getTypeParser(oid: number, format?: 'text' | 'binary') {
      if (oid === PG_INT8 || oid === PG_NUMERIC) return (v: string) => Number(v);
      return types.getTypeParser(oid, format as 'text');
    },
  } as pg.CustomTypesConfig;
}

/** Prepared statements kept per connection (by SQL text, least recently used dropped first). */
const STATEMENT_CACHE = 256;

/**
 * The connection as Kysely's SQLite driver uses it (`prepare` and `close`), with its prepared
 * statements kept: the driver prepares every query it runs, and compiling the same SQL again was
 * most of a simple query's cost (every key created and looked up). Kysely's SQL text carries
 * placeholders, so a query shape is one entry whatever its values. A statement still busy (a
 * streamed query being iterated) is not handed out again: that call gets a fresh one.
 */
function cachedStatements(sqlite: Database.Database): SqliteDatabase {
  const kept = new Map<string, Database.Statement>();
  return {
    close: () => sqlite.close(),
    prepare(text: string) {
      let stmt = kept.get(text);
      if (stmt?.busy) return sqlite.prepare(text);
      if (stmt) kept.delete(text);
      else {
        stmt = sqlite.prepare(text);
        if (kept.size >= STATEMENT_CACHE) kept.delete(kept.keys().next().value as string);
      }
      kept.set(text, stmt);
      return stmt;
    },
  };
}

/**
 * One SQLite connection per file per process: better-sqlite3 waits for locks synchronously, so two
 * connections of one process on one file could block the event loop waiting for each other.
 * Handles opened on the same file share the connection; it closes with the last handle.
 */
const sqliteShared = new Map<
  string,
  { db: Kysely<SluiceDb>; refs: number; migrated?: Promise<void>; raw: Database.Database }
>();

export async function openDatabase(opts: OpenDatabaseOptions): Promise<SqlDatabase> {
  const handle =
    opts.url !== undefined && opts.url !== '' ? await openPostgres(opts.url, opts) : openSqlite(opts);
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

async function openPostgres(url: string, opts: OpenDatabaseOptions): Promise<SqlDatabase> {
  if (!/^postgres(ql)?:\/\//.test(url)) {
    throw new Error('database.url must start with postgres:// (leave it out to use SQLite in the data dir)');
  }
  // pg is loaded only when PostgreSQL is configured (an instance on SQLite never needs it).
  const { default: pgm } = await import('pg');
  const pool = new pgm.Pool({ connectionString: url, max: opts.poolSize ?? 10, types: pgTypes(pgm.types) });
  // A client's connection-level error (server restart, 57P01) must never crash the process, whether
  // the client is idle in the pool (pg-pool's own listener forwards to 'error' on the pool) or checked
  // out by Kysely between two statements of a transaction (pg-pool removes its listener then, so
  // every client gets a permanent one of ours). The failed client is discarded; the next query
  // opens a new connection.
  const report = (err: Error) => opts.onConnectionError?.(err);
  pool.on('error', report);
  pool.on('connect', (client) => {
    client.on('error', report);
  });
  const db = new Kysely<SluiceDb>({ dialect: new PostgresDialect({ pool }) });
  let closed: Promise<void> | undefined;
  return {
    db,
    dialect: 'postgres',
    // Kysely's Migrator holds a PostgreSQL advisory lock while it migrates: concurrent starts queue up.
    migrate: () => runMigrations(db),
    close: () => {
      closed ??= db.destroy();
      return closed;
    },
  };
}

function openSqlite(opts: OpenDatabaseOptions): SqlDatabase {
  const file = join(ensureDataDir(opts.dataDir), 'sluice.db');
  let shared = sqliteShared.get(file);
  if (!shared) {
    const sqlite = new Database(file);
    sqlite.pragma('journal_mode = WAL');
    sqlite.pragma(`busy_timeout = ${Math.max(0, Math.floor(opts.busyTimeoutMs ?? 250))}`);
    // NORMAL is durable against a process crash (kill -9) in WAL mode; only power loss can lose the last commits.
    sqlite.pragma('synchronous = NORMAL');
    shared = {
      db: new Kysely<SluiceDb>({ dialect: new SqliteDialect({ database: cachedStatements(sqlite) }) }),
      refs: 0,
      raw: sqlite,
    };
    sqliteShared.set(file, shared);
  }
  const entry = shared;
  entry.refs++;
  let closed: Promise<void> | undefined;
  return {
    db: entry.db,
    dialect: 'sqlite',
    sqlite: entry.raw,
    migrate: () => {
      // Once per connection; a failed attempt may be retried.
      entry.migrated ??= migrateSqlite(entry.db).catch((err) => {
        entry.migrated = undefined;
        throw err;
      });
      return entry.migrated;
    },
    close: () => {
      closed ??= (async () => {
        if (--entry.refs > 0) return;
        if (sqliteShared.get(file) === entry) sqliteShared.delete(file);
        await entry.db.destroy();
      })();
      return closed;
    },
  };
}

/**
 * Other processes may start on the same file at the same moment: BEGIN IMMEDIATE takes SQLite's write
 * lock (waiting up to busy_timeout) before the migrator reads which migrations ran, so they run once.
 */
async function migrateSqlite(db: Kysely<SluiceDb>): Promise<void> {
  await db.connection().execute(async (conn) => {
    await sql`begin immediate`.execute(conn);
    try {
      await runMigrations(conn, true);
      await sql`commit`.execute(conn);
    } catch (err) {
      await sql`rollback`.execute(conn).catch(() => {});
      throw err;
    }
  });
}

async function runMigrations(db: Kysely<SluiceDb>, inOuterTransaction = false): Promise<void> {
  const migrator = new Migrator({
    db,
    provider: { getMigrations: async () => migrations },
    migrationTableName: 'sluice_migration',
    migrationLockTableName: 'sluice_migration_lock',
    disableTransactions: inOuterTransaction,
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
