import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sql } from 'kysely';
import { afterAll, describe, expect, it } from 'vitest';
import { openDatabase } from '../../../src/stores/sql/db.js';
import { migrations } from '../../../src/stores/sql/migrations.js';
import { postgresDatabase, sqliteDatabase } from './databases.js';

describe('openDatabase', () => {
  const dirs: string[] = [];
  afterAll(() => {
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  it('opens SQLite in the data dir in WAL mode, migrated', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sluice-db-'));
    dirs.push(dir);
    const h = await openDatabase({ dataDir: join(dir, 'nested') });
    expect(h.dialect).toBe('sqlite');
    const mode = await sql<{ journal_mode: string }>`pragma journal_mode`.execute(h.db);
    expect(mode.rows[0]?.journal_mode).toBe('wal');
    const busy = await sql<{ timeout: number }>`pragma busy_timeout`.execute(h.db);
    expect(busy.rows[0]?.timeout).toBe(250);
    expect(await h.db.selectFrom('tenants').selectAll().execute()).toEqual([]);
    await h.close();
    await h.close(); // idempotent
    // Reopening an existing database runs no migration twice.
    const again = await openDatabase({ dataDir: join(dir, 'nested') });
    await again.migrate();
    await again.close();
  });

  it('refuses a url that is not PostgreSQL', async () => {
    await expect(openDatabase({ url: 'mysql://x', dataDir: tmpdir() })).rejects.toThrow(/postgres:\/\//);
  });

  it('several instances starting at once on one fresh PostgreSQL database all migrate cleanly', async () => {
    const pg = postgresDatabase();
    try {
      const handles = await Promise.all([pg.open(), pg.open(), pg.open()]);
      expect(handles.every((h) => h.dialect === 'postgres')).toBe(true);
      const applied = await sql<{ name: string }>`select name from sluice_migration order by name`.execute(
        handles[0]!.db,
      );
      // Every migration the code knows, applied once, in name order.
      expect(applied.rows.map((r) => r.name)).toEqual(Object.keys(migrations).sort());
      expect(applied.rows.map((r) => r.name).slice(0, 3)).toEqual([
        '0001_control',
        '0002_usage_audit',
        '0003_usage_append',
      ]);
      await handles[1]!.db
        .insertInto('tenants')
        .values({ id: 't', name: 'n', tier: null, created_at: 1, deleted_at: null })
        .execute();
      expect(
        (await handles[2]!.db.selectFrom('tenants').select('created_at').executeTakeFirst())?.created_at,
      ).toBe(1);
    } finally {
      await pg.cleanup();
    }
  });

  it('two SQLite handles on one file share data', async () => {
    const s = sqliteDatabase();
    try {
      const [a, b] = await Promise.all([s.open(), s.open()]);
      await a!.db
        .insertInto('tenants')
        .values({ id: 't', name: 'n', tier: null, created_at: 1, deleted_at: null })
        .execute();
      expect(await b!.db.selectFrom('tenants').select('id').execute()).toEqual([{ id: 't' }]);
    } finally {
      await s.cleanup();
    }
  });
});
