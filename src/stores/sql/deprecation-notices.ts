/**
 * Which tenants have been told of which deprecation (table `deprecation_notices`, migration 0010).
 * `claim` is the once-only step: the first caller for an (entry, tenant) pair, on any instance,
 * gets true; everyone after gets false.
 */
import type { Kysely } from 'kysely';
import type { SqlDatabase } from './db.js';

interface NoticesDb {
  deprecation_notices: { entry: string; tenant_id: string; notified_at: number };
}

export class SqlDeprecationNotices {
  private readonly db: Kysely<NoticesDb>;

  constructor(sql: SqlDatabase) {
    this.db = sql.db as unknown as Kysely<NoticesDb>;
  }

  /** True when this call recorded the notice (nobody had), false when it was recorded before. */
  async claim(entry: string, tenantId: string, now: number): Promise<boolean> {
    const r = await this.db
      .insertInto('deprecation_notices')
      .values({ entry, tenant_id: tenantId, notified_at: now })
      .onConflict((oc) => oc.columns(['entry', 'tenant_id']).doNothing())
      .executeTakeFirst();
    return Number(r.numInsertedOrUpdatedRows ?? 0n) > 0;
  }
}
