/**
 * The SQLite connection keeps Kysely's prepared statements (db.ts `cachedStatements`): a query run
 * again reuses its statement and still sees every write, errors stay the database's, and a streamed
 * query (its statement iterated, or left early) leaves the statement usable.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { openDatabase } from '../../../src/stores/sql/db.js';

describe('SQLite prepared statements kept per connection', () => {
  const dirs: string[] = [];
  afterAll(() => {
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  it('answers the same query again with what was written since, after streams too', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sluice-stmt-'));
    dirs.push(dir);
    const h = await openDatabase({ dataDir: dir });
    try {
      const names = () =>
        h.db
          .selectFrom('tenants')
          .select('id')
          .orderBy('id')
          .execute()
          .then((rows) => rows.map((r) => r.id));
      const add = (id: string) =>
        h.db
          .insertInto('tenants')
          .values({ id, name: id, tier: null, created_at: 1, deleted_at: null })
          .execute();
      expect(await names()).toEqual([]);
      await add('a');
      expect(await names()).toEqual(['a']);
      await add('b');
      expect(await names()).toEqual(['a', 'b']);
      // The same insert statement again, with a value that breaks the key: the error is the database's.
      await expect(add('a')).rejects.toThrow(/UNIQUE/);
      await add('c');
      // A streamed select (its statement is iterated) and then the same query run whole: the cached
      // statement serves both, each from its start.
      const stream = () => h.db.selectFrom('tenants').select('id').orderBy('id').stream();
      for (let round = 0; round < 2; round++) {
        const seen: string[] = [];
        for await (const row of stream()) seen.push(row.id);
        expect(seen).toEqual(['a', 'b', 'c']);
        expect(await names()).toEqual(['a', 'b', 'c']);
      }
      // A stream left early (its statement reset when the iterator is returned) does not hold it.
      for await (const row of stream()) {
        expect(row.id).toBe('a');
        break;
      }
      expect(await names()).toEqual(['a', 'b', 'c']);
    } finally {
      await h.close();
    }
  });
});
