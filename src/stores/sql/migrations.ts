/**
 * The schema, as an ordered list of migrations that run unchanged on SQLite and PostgreSQL.
 * Timestamps are epoch milliseconds (bigint); arrays and objects are JSON text.
 * To extend: append a new entry with the next number; never edit a released one.
 */
import type { Kysely, Migration } from 'kysely';

// Migrations are written against the schema as it was then, not the current SluiceDb.
type AnyDb = Kysely<any>;

const m0001_control: Migration = {
  async up(db: AnyDb) {
    await db.schema
      .createTable('tenants')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('name', 'text', (c) => c.notNull())
      .addColumn('tier', 'text')
      .addColumn('created_at', 'bigint', (c) => c.notNull())
      .addColumn('deleted_at', 'bigint')
      .execute();
    await db.schema
      .createTable('projects')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('tenant_id', 'text', (c) => c.notNull())
      .addColumn('name', 'text', (c) => c.notNull())
      .addColumn('scopes', 'text')
      .addColumn('models', 'text')
      .addColumn('created_at', 'bigint', (c) => c.notNull())
      .execute();
    await db.schema.createIndex('projects_tenant').on('projects').column('tenant_id').execute();
    await db.schema
      .createTable('api_keys')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('hash', 'text', (c) => c.notNull())
      .addColumn('prev_hash', 'text')
      .addColumn('prev_expires_at', 'bigint')
      .addColumn('tenant_id', 'text', (c) => c.notNull())
      .addColumn('project_id', 'text')
      .addColumn('tier', 'text', (c) => c.notNull())
      .addColumn('name', 'text')
      .addColumn('owner', 'text')
      .addColumn('notes', 'text')
      .addColumn('scopes', 'text')
      .addColumn('models', 'text')
      .addColumn('allow_ips', 'text')
      .addColumn('deny_ips', 'text')
      .addColumn('dpop', 'text')
      .addColumn('totp_secret', 'text')
      .addColumn('expires_at', 'bigint')
      .addColumn('revoked_at', 'bigint')
      .addColumn('created_at', 'bigint', (c) => c.notNull())
      .addColumn('last_used_at', 'bigint')
      .addColumn('last_used_ip', 'text')
      .execute();
    await db.schema
      .createIndex('api_keys_tenant')
      .on('api_keys')
      .columns(['tenant_id', 'created_at'])
      .execute();
    await db.schema.createIndex('api_keys_project').on('api_keys').column('project_id').execute();
    await db.schema
      .createTable('policy_versions')
      .addColumn('version', 'integer', (c) => c.primaryKey())
      .addColumn('hash', 'text', (c) => c.notNull())
      .addColumn('source', 'text', (c) => c.notNull())
      .addColumn('author', 'text', (c) => c.notNull())
      .addColumn('message', 'text', (c) => c.notNull())
      .addColumn('created_at', 'bigint', (c) => c.notNull())
      .execute();
    await db.schema
      .createTable('admin_users')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('name', 'text', (c) => c.notNull())
      .addColumn('role', 'text', (c) => c.notNull())
      .addColumn('token_hash', 'text', (c) => c.notNull().unique())
      .addColumn('totp_secret', 'text')
      .addColumn('created_at', 'bigint', (c) => c.notNull())
      .addColumn('disabled_at', 'bigint')
      .execute();
  },
};

const m0002_usage_audit: Migration = {
  async up(db: AnyDb) {
    await db.schema
      .createTable('usage')
      .addColumn('request_id', 'text', (c) => c.primaryKey())
      .addColumn('at', 'bigint', (c) => c.notNull())
      .addColumn('key_id', 'text', (c) => c.notNull())
      .addColumn('tenant_id', 'text', (c) => c.notNull())
      .addColumn('project_id', 'text')
      .addColumn('model', 'text', (c) => c.notNull())
      .addColumn('action', 'text', (c) => c.notNull())
      .addColumn('upstream', 'text', (c) => c.notNull())
      .addColumn('input_tokens', 'bigint', (c) => c.notNull())
      .addColumn('output_tokens', 'bigint', (c) => c.notNull())
      .addColumn('images', 'bigint', (c) => c.notNull())
      .addColumn('usd', 'double precision', (c) => c.notNull())
      .addColumn('status', 'integer', (c) => c.notNull())
      .addColumn('latency_ms', 'double precision', (c) => c.notNull())
      .execute();
    await db.schema.createIndex('usage_at').on('usage').column('at').execute();
    await db.schema.createIndex('usage_key_at').on('usage').columns(['key_id', 'at']).execute();
    await db.schema.createIndex('usage_tenant_at').on('usage').columns(['tenant_id', 'at']).execute();

    await db.schema
      .createTable('audit_events')
      .addColumn('instance', 'text', (c) => c.notNull())
      .addColumn('seq', 'bigint', (c) => c.notNull())
      .addColumn('at', 'bigint', (c) => c.notNull())
      .addColumn('request_id', 'text')
      .addColumn('key_id', 'text')
      .addColumn('tenant_id', 'text')
      .addColumn('project_id', 'text')
      .addColumn('client_ip', 'text')
      .addColumn('country', 'text')
      .addColumn('user_agent', 'text')
      .addColumn('action', 'text', (c) => c.notNull())
      .addColumn('model', 'text')
      .addColumn('decision', 'text', (c) => c.notNull())
      .addColumn('reason', 'text', (c) => c.notNull())
      .addColumn('policy_version', 'bigint')
      .addColumn('details', 'text')
      .addColumn('prev_hash', 'text', (c) => c.notNull())
      .addColumn('hash', 'text', (c) => c.notNull())
      .addPrimaryKeyConstraint('audit_events_pk', ['instance', 'seq'])
      .execute();
    await db.schema.createIndex('audit_events_at').on('audit_events').column('at').execute();
    await db.schema.createIndex('audit_events_key').on('audit_events').columns(['key_id', 'at']).execute();
    await db.schema
      .createIndex('audit_events_tenant')
      .on('audit_events')
      .columns(['tenant_id', 'at'])
      .execute();

    await db.schema
      .createTable('audit_checkpoints')
      .addColumn('instance', 'text', (c) => c.notNull())
      .addColumn('kind', 'text', (c) => c.notNull())
      .addColumn('seq', 'bigint', (c) => c.notNull())
      .addColumn('hash', 'text', (c) => c.notNull())
      .addColumn('at', 'bigint', (c) => c.notNull())
      .addColumn('key_id', 'text')
      .addColumn('signature', 'text', (c) => c.notNull())
      .addPrimaryKeyConstraint('audit_checkpoints_pk', ['instance', 'kind', 'seq'])
      .execute();
  },
};

/**
 * Usage rows without a primary key on the random request id: inserting into a B-tree keyed by UUIDs
 * cost ~3x the rest of the row (13 µs against 4 µs per row on SQLite, measured); rows are appended
 * in rowid/heap order instead. A batch is written in one transaction, so a retried batch cannot double count.
 */
const m0003_usage_append: Migration = {
  async up(db: AnyDb) {
    await db.schema
      .createTable('usage_v2')
      .addColumn('request_id', 'text')
      .addColumn('at', 'bigint', (c) => c.notNull())
      .addColumn('key_id', 'text', (c) => c.notNull())
      .addColumn('tenant_id', 'text', (c) => c.notNull())
      .addColumn('project_id', 'text')
      .addColumn('model', 'text', (c) => c.notNull())
      .addColumn('action', 'text', (c) => c.notNull())
      .addColumn('upstream', 'text', (c) => c.notNull())
      .addColumn('input_tokens', 'bigint', (c) => c.notNull())
      .addColumn('output_tokens', 'bigint', (c) => c.notNull())
      .addColumn('images', 'bigint', (c) => c.notNull())
      .addColumn('usd', 'double precision', (c) => c.notNull())
      .addColumn('status', 'integer', (c) => c.notNull())
      .addColumn('latency_ms', 'double precision', (c) => c.notNull())
      .execute();
    await db
      .insertInto('usage_v2')
      .columns([
        'request_id',
        'at',
        'key_id',
        'tenant_id',
        'project_id',
        'model',
        'action',
        'upstream',
        'input_tokens',
        'output_tokens',
        'images',
        'usd',
        'status',
        'latency_ms',
      ])
      .expression(
        db
          .selectFrom('usage')
          .select([
            'request_id',
            'at',
            'key_id',
            'tenant_id',
            'project_id',
            'model',
            'action',
            'upstream',
            'input_tokens',
            'output_tokens',
            'images',
            'usd',
            'status',
            'latency_ms',
          ]),
      )
      .execute();
    await db.schema.dropTable('usage').execute();
    await db.schema.alterTable('usage_v2').renameTo('usage').execute();
    await db.schema.createIndex('usage_at').on('usage').column('at').execute();
    await db.schema.createIndex('usage_key_at').on('usage').columns(['key_id', 'at']).execute();
    await db.schema.createIndex('usage_tenant_at').on('usage').columns(['tenant_id', 'at']).execute();
  },
};

/** Exception requests (issue 13), and admin users' console passwords (scrypt), beside admin_users. */
const m0005_exceptions: Migration = {
  async up(db: AnyDb) {
    await db.schema
      .createTable('exceptions')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('tenant_id', 'text', (c) => c.notNull())
      .addColumn('key_id', 'text')
      .addColumn('requested_by', 'text', (c) => c.notNull())
      .addColumn('justification', 'text', (c) => c.notNull())
      .addColumn('requested', 'text', (c) => c.notNull())
      .addColumn('granted', 'text')
      .addColumn('duration_ms', 'bigint', (c) => c.notNull())
      .addColumn('status', 'text', (c) => c.notNull())
      .addColumn('created_at', 'bigint', (c) => c.notNull())
      .addColumn('request_expires_at', 'bigint', (c) => c.notNull())
      .addColumn('decided_at', 'bigint')
      .addColumn('decided_by', 'text')
      .addColumn('note', 'text')
      .addColumn('expires_at', 'bigint')
      .addColumn('updated_at', 'bigint', (c) => c.notNull())
      .execute();
    await db.schema
      .createIndex('exceptions_tenant')
      .on('exceptions')
      .columns(['tenant_id', 'created_at'])
      .execute();
    await db.schema
      .createIndex('exceptions_status')
      .on('exceptions')
      .columns(['status', 'expires_at'])
      .execute();
    await db.schema
      .createTable('admin_passwords')
      .addColumn('user_id', 'text', (c) => c.primaryKey())
      .addColumn('username', 'text', (c) => c.notNull().unique())
      .addColumn('hash', 'text', (c) => c.notNull())
      .addColumn('created_at', 'bigint', (c) => c.notNull())
      .execute();
  },
};

/** Migration `0006_signing_keys`: shared signing keys and one-time-use marks. */
const m0006_signing_keys: Migration = {
  async up(db: AnyDb) {
    await db.schema
      .createTable('signing_keys')
      .addColumn('kid', 'text', (c) => c.primaryKey())
      // Unique: two instances rotating at once cannot both add the next generation.
      .addColumn('generation', 'bigint', (c) => c.notNull().unique())
      .addColumn('alg', 'text', (c) => c.notNull())
      .addColumn('created_at', 'bigint', (c) => c.notNull())
      .addColumn('retired_at', 'bigint')
      .addColumn('private_jwk', 'text', (c) => c.notNull())
      .addColumn('public_jwk', 'text', (c) => c.notNull())
      .execute();
    await db.schema
      .createTable('auth_replay')
      .addColumn('key', 'text', (c) => c.primaryKey())
      .addColumn('value', 'bigint', (c) => c.notNull())
      .addColumn('expires_at', 'bigint', (c) => c.notNull())
      .execute();
    await db.schema.createIndex('auth_replay_expires').on('auth_replay').column('expires_at').execute();
  },
};

/** Abuse cases for review (issue 11): the whole case as JSON, with the columns a query needs. */
const m0007_cases: Migration = {
  async up(db: AnyDb) {
    await db.schema
      .createTable('abuse_cases')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('kind', 'text', (c) => c.notNull())
      .addColumn('status', 'text', (c) => c.notNull())
      .addColumn('tenant_id', 'text')
      .addColumn('key_id', 'text')
      .addColumn('detector', 'text', (c) => c.notNull())
      .addColumn('capability', 'text', (c) => c.notNull())
      .addColumn('created_at', 'bigint', (c) => c.notNull())
      .addColumn('updated_at', 'bigint', (c) => c.notNull())
      .addColumn('expires_at', 'bigint')
      .addColumn('data', 'text', (c) => c.notNull())
      .execute();
    await db.schema.createIndex('abuse_cases_updated').on('abuse_cases').column('updated_at').execute();
    await db.schema
      .createIndex('abuse_cases_status')
      .on('abuse_cases')
      .columns(['status', 'expires_at'])
      .execute();
  },
};

/** Earned tiers and key rotation state (issue 20): src/stores/sql/trust-store.ts. */
const m0008_trust: Migration = {
  async up(db: AnyDb) {
    await db.schema
      .createTable('tenant_tiers')
      .addColumn('tenant_id', 'text', (c) => c.primaryKey())
      .addColumn('tier', 'text', (c) => c.notNull())
      .addColumn('pinned', 'integer', (c) => c.notNull())
      .addColumn('since', 'bigint', (c) => c.notNull())
      .addColumn('reason', 'text', (c) => c.notNull())
      .addColumn('updated_at', 'bigint', (c) => c.notNull())
      .execute();
    await db.schema
      .createTable('key_rotations')
      .addColumn('key_id', 'text', (c) => c.primaryKey())
      .addColumn('issued_at', 'bigint', (c) => c.notNull())
      .addColumn('warned_at', 'bigint')
      .execute();
  },
};

/** Every migration, by name; names sort in the order they apply. */
/**
 * Deprecation notices (issue 19): one row per (deprecation entry, tenant) told, so each affected
 * tenant hears of a deprecation once, across instances and restarts.
 */
const m0010_deprecation_notices: Migration = {
  async up(db: AnyDb) {
    await db.schema
      .createTable('deprecation_notices')
      .addColumn('entry', 'text', (c) => c.notNull())
      .addColumn('tenant_id', 'text', (c) => c.notNull())
      .addColumn('notified_at', 'bigint', (c) => c.notNull())
      .addPrimaryKeyConstraint('deprecation_notices_pk', ['entry', 'tenant_id'])
      .execute();
  },
};

/** Every migration, by name; names sort in the order they apply. */
export const migrations: Record<string, Migration> = {
  '0001_control': m0001_control,
  '0002_usage_audit': m0002_usage_audit,
  '0003_usage_append': m0003_usage_append,
  '0005_exceptions': m0005_exceptions,
  '0006_signing_keys': m0006_signing_keys,
  '0007_cases': m0007_cases,
  '0008_trust': m0008_trust,
  '0010_deprecation_notices': m0010_deprecation_notices,
};
