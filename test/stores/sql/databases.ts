/**
 * Test databases for the SQL stores: a temp-dir SQLite file, and a uniquely named PostgreSQL
 * database created through the `test` database and dropped afterwards.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { openDatabase, type SqlDatabase } from '../../../src/stores/sql/db.js';

const PG_ADMIN_URL = process.env.SLUICE_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

export interface TestDatabase {
  name: 'sqlite' | 'postgres';
  /** Opens (and migrates) a new handle on the same database. */
  open(): Promise<SqlDatabase>;
  /** Raw SQL against the database, for tamper tests. */
  exec(text: string, params?: unknown[]): Promise<void>;
  cleanup(): Promise<void>;
}

export function sqliteDatabase(): TestDatabase {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-sql-'));
  const handles: SqlDatabase[] = [];
  return {
    name: 'sqlite',
    async open() {
      const h = await openDatabase({ dataDir: dir });
      handles.push(h);
      return h;
    },
    async exec(text, params = []) {
      const { default: Database } = await import('better-sqlite3');
      const db = new Database(join(dir, 'sluice.db'));
      try {
        db.prepare(text.replace(/\$\d+/g, '?')).run(...(params as unknown[]));
      } finally {
        db.close();
      }
    },
    async cleanup() {
      await Promise.all(handles.map((h) => h.close()));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export function postgresDatabase(): TestDatabase {
  const dbName = `sluice_t_${randomBytes(6).toString('hex')}`;
  const url = new URL(PG_ADMIN_URL);
  url.pathname = `/${dbName}`;
  const handles: SqlDatabase[] = [];
  let created: Promise<unknown> | undefined;
  const admin = async <T>(fn: (c: pg.Client) => Promise<T>): Promise<T> => {
    const c = new pg.Client({ connectionString: PG_ADMIN_URL });
    await c.connect();
    try {
      return await fn(c);
    } finally {
      await c.end();
    }
  };
  return {
    name: 'postgres',
    async open() {
      created ??= admin((c) => c.query(`CREATE DATABASE ${dbName}`));
      await created;
      const h = await openDatabase({ url: url.toString(), dataDir: tmpdir(), poolSize: 4 });
      handles.push(h);
      return h;
    },
    async exec(text, params = []) {
      const c = new pg.Client({ connectionString: url.toString() });
      await c.connect();
      try {
        await c.query(text, params);
      } finally {
        await c.end();
      }
    },
    async cleanup() {
      await Promise.all(handles.map((h) => h.close()));
      if (created) await admin((c) => c.query(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`));
    },
  };
}

/** Both dialects, for `describe.each`. */
export const DIALECTS: { name: string; make: () => TestDatabase }[] = [
  { name: 'sqlite', make: sqliteDatabase },
  { name: 'postgres', make: postgresDatabase },
];
