/**
 * The SQLite fast path for batched writers: one cached prepared statement per (connection, table),
 * run once per row inside one transaction. Row objects are bound by column name.
 */
import type Database from 'better-sqlite3';

type Insert = (rows: readonly Record<string, unknown>[]) => void;
const cache = new WeakMap<Database.Database, Map<string, Insert>>();

/** Returns a function inserting rows (objects keyed by column) in one transaction; `suffix` e.g. `ON CONFLICT DO NOTHING`. */
export function sqliteBatchInsert(
  db: Database.Database,
  table: string,
  columns: readonly string[],
  suffix = '',
): Insert {
  let perDb = cache.get(db);
  if (!perDb) {
    perDb = new Map();
    cache.set(db, perDb);
  }
  const id = `${table}|${columns.join(',')}|${suffix}`;
  let fn = perDb.get(id);
  if (!fn) {
    const stmt = db.prepare(
      `INSERT INTO ${table} (${columns.join(', ')}) VALUES (${columns.map((c) => `@${c}`).join(', ')}) ${suffix}`,
    );
    fn = db.transaction((rows: readonly Record<string, unknown>[]) => {
      for (const r of rows) stmt.run(r);
    }) as unknown as Insert;
    perDb.set(id, fn);
  }
  return fn;
}
