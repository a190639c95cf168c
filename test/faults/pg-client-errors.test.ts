/**
 * Regression (issue 21): PostgreSQL restarting under load crashed the gateway in 2 of 6 runs: a pg
 * client checked out by Kysely (between two statements of a transaction) emitted 'error' (57P01
 * "terminating connection ...") with no listener, and Node exits on an unhandled 'error' event.
 * Every pool client now has a permanent listener; the error is reported, the pool opens a new
 * connection for the next query.
 */
import { randomBytes } from 'node:crypto';
import { sql } from 'kysely';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDatabase, type SqlDatabase } from '../../src/stores/sql/db.js';
import { tempDir } from '../e2e/harness.js';

const ADMIN_URL = process.env.SLUICE_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const dbName = `sluice_pgerr_${randomBytes(6).toString('hex')}`;

async function pgAdmin(text: string, values: unknown[] = []): Promise<void> {
  const c = new pg.Client({ connectionString: ADMIN_URL });
  await c.connect();
  try {
    await c.query(text, values);
  } finally {
    await c.end();
  }
}

let handle: SqlDatabase | undefined;
beforeAll(async () => {
  await pgAdmin(`CREATE DATABASE ${dbName}`);
});
afterAll(async () => {
  await handle?.close();
  await pgAdmin(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`);
});

describe('pg clients: connection errors are handled', () => {
  it('a checked-out client whose backend is terminated reports the error instead of crashing', async () => {
    const url = new URL(ADMIN_URL);
    url.pathname = `/${dbName}`;
    const errors: (Error & { code?: string })[] = [];
    let reported: () => void = () => {};
    const seen = new Promise<void>((r) => {
      reported = r;
    });
    handle = await openDatabase({
      url: url.href,
      dataDir: tempDir('sluice-pgerr-'),
      onConnectionError: (err) => {
        errors.push(err);
        reported();
      },
    });
    // 1. Hold a client (as Kysely does inside a transaction), terminate its backend, wait for the event.
    await handle.db.connection().execute(async (conn) => {
      const { rows } = await sql<{ pid: number }>`select pg_backend_pid() as pid`.execute(conn);
      await pgAdmin('select pg_terminate_backend($1)', [rows[0]!.pid]);
      await seen;
    });
    expect(errors[0]?.code).toBe('57P01');
    // 2. The pool serves the next query on a fresh connection.
    const { rows } = await sql<{ one: number }>`select 1 as one`.execute(handle.db);
    expect(rows[0]!.one).toBe(1);
  });
});
