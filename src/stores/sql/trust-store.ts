/**
 * Trust over time in the control database (SQLite or PostgreSQL, migration `0008_trust`):
 * - `tenant_tiers`: a tenant's earned or pinned tier. Moves are compare-and-set on the tier read, so
 *   when several instances evaluate at once exactly one of them makes (and announces) each move;
 * - `key_rotations`: when a key's current secret was issued by a scheduled rotation and when its
 *   owner was last warned (a key without a row counts from its creation);
 * - the history a promotion rule reads: answered requests and spend (`usage`), refusals (`audit_events`).
 */
import { type Kysely, sql } from 'kysely';
import type { SqlDatabase } from './db.js';

interface TenantTiersTable {
  tenant_id: string;
  tier: string;
  pinned: number;
  since: number;
  reason: string;
  updated_at: number;
}

interface KeyRotationsTable {
  key_id: string;
  issued_at: number;
  warned_at: number | null;
}

interface TrustDb {
  tenant_tiers: TenantTiersTable;
  key_rotations: KeyRotationsTable;
  usage: { tenant_id: string; at: number; usd: number; status: number };
  audit_events: { tenant_id: string | null; at: number; decision: string };
}

export interface TenantTierRow {
  tenantId: string;
  tier: string;
  pinned: boolean;
  since: number;
  reason: string;
  updatedAt: number;
}

export interface KeyRotationRow {
  keyId: string;
  issuedAt: number;
  warnedAt: number | null;
}

const fromRow = (r: TenantTiersTable): TenantTierRow => ({
  tenantId: r.tenant_id,
  tier: r.tier,
  pinned: Number(r.pinned) === 1,
  since: Number(r.since),
  reason: r.reason,
  updatedAt: Number(r.updated_at),
});

export class SqlTrustStore {
  private readonly db: Kysely<TrustDb>;

  constructor(sqlDb: SqlDatabase) {
    this.db = sqlDb.db as unknown as Kysely<TrustDb>;
  }

  async tiers(): Promise<TenantTierRow[]> {
    return (await this.db.selectFrom('tenant_tiers').selectAll().execute()).map(fromRow);
  }

  async tier(tenantId: string): Promise<TenantTierRow | undefined> {
    const r = await this.db
      .selectFrom('tenant_tiers')
      .selectAll()
      .where('tenant_id', '=', tenantId)
      .executeTakeFirst();
    return r ? fromRow(r) : undefined;
  }

  /**
   * Moves a tenant from `expected` (undefined: no row yet) to `next`. Resolves true when this call made
   * the move, false when another writer got there first (nothing written).
   */
  async move(
    tenantId: string,
    expected: TenantTierRow | undefined,
    next: Omit<TenantTierRow, 'tenantId'>,
  ): Promise<boolean> {
    const row: TenantTiersTable = {
      tenant_id: tenantId,
      tier: next.tier,
      pinned: next.pinned ? 1 : 0,
      since: next.since,
      reason: next.reason.slice(0, 500),
      updated_at: next.updatedAt,
    };
    if (!expected) {
      const r = await this.db
        .insertInto('tenant_tiers')
        .values(row)
        .onConflict((oc) => oc.column('tenant_id').doNothing())
        .executeTakeFirst();
      return Number(r.numInsertedOrUpdatedRows ?? 0) === 1;
    }
    const { tenant_id: _t, ...rest } = row;
    const r = await this.db
      .updateTable('tenant_tiers')
      .set(rest)
      .where('tenant_id', '=', tenantId)
      .where('tier', '=', expected.tier)
      .where('updated_at', '=', expected.updatedAt)
      .executeTakeFirst();
    return Number(r.numUpdatedRows) === 1;
  }

  /** Drops the row: the tenant is back on its keys' tiers (the next evaluation starts from there). */
  async clear(tenantId: string): Promise<void> {
    await this.db.deleteFrom('tenant_tiers').where('tenant_id', '=', tenantId).execute();
  }

  async rotations(): Promise<KeyRotationRow[]> {
    const rows = await this.db.selectFrom('key_rotations').selectAll().execute();
    return rows.map((r) => ({
      keyId: r.key_id,
      issuedAt: Number(r.issued_at),
      warnedAt: r.warned_at === null ? null : Number(r.warned_at),
    }));
  }

  async setIssued(keyId: string, at: number): Promise<void> {
    await this.db
      .insertInto('key_rotations')
      .values({ key_id: keyId, issued_at: at, warned_at: null })
      .onConflict((oc) => oc.column('key_id').doUpdateSet({ issued_at: at, warned_at: null }))
      .execute();
  }

  /** Compare-and-set of a key's issue time (see {@link claimRotation}); `undo` reverses a claim that failed. */
  async claim(keyId: string, expected: number, at: number): Promise<boolean> {
    await this.db
      .insertInto('key_rotations')
      .values({ key_id: keyId, issued_at: expected, warned_at: null })
      .onConflict((oc) => oc.column('key_id').doNothing())
      .execute();
    const r = await this.db
      .updateTable('key_rotations')
      .set({ issued_at: at })
      .where('key_id', '=', keyId)
      .where('issued_at', '=', expected)
      .executeTakeFirst();
    return Number(r.numUpdatedRows) === 1;
  }

  async undo(keyId: string, expected: number, at: number): Promise<void> {
    await this.db
      .updateTable('key_rotations')
      .set({ issued_at: expected })
      .where('key_id', '=', keyId)
      .where('issued_at', '=', at)
      .execute();
  }

  /** Marks the warning sent; false when another instance already warned for this secret. */
  async markWarned(keyId: string, issuedAt: number, at: number): Promise<boolean> {
    const r = await this.db
      .insertInto('key_rotations')
      .values({ key_id: keyId, issued_at: issuedAt, warned_at: at })
      .onConflict((oc) =>
        oc.column('key_id').doUpdateSet({ warned_at: at }).where('key_rotations.warned_at', 'is', null),
      )
      .executeTakeFirst();
    return Number(r.numInsertedOrUpdatedRows ?? 0) === 1;
  }

  /** Forgets a warning whose delivery failed (the next pass warns again). */
  async clearWarned(keyId: string, at: number): Promise<void> {
    await this.db
      .updateTable('key_rotations')
      .set({ warned_at: null })
      .where('key_id', '=', keyId)
      .where('warned_at', '=', at)
      .execute();
  }

  /** Answered requests and spend of a tenant since `since`. */
  async usageSince(tenantId: string, since: number): Promise<{ requests: number; usd: number }> {
    const r = await this.db
      .selectFrom('usage')
      .select([sql<number>`count(*)`.as('n'), sql<number>`coalesce(sum(usd), 0)`.as('usd')])
      .where('tenant_id', '=', tenantId)
      .where('at', '>=', since)
      .where('status', '<', 400)
      .executeTakeFirst();
    return { requests: Number(r?.n ?? 0), usd: Number(r?.usd ?? 0) };
  }

  /** Refused or throttled requests of a tenant since `since` (from the audit trail). */
  async refusedSince(tenantId: string, since: number): Promise<number> {
    const r = await this.db
      .selectFrom('audit_events')
      .select(sql<number>`count(*)`.as('n'))
      .where('tenant_id', '=', tenantId)
      .where('at', '>=', since)
      .where('decision', 'in', ['refused', 'throttled'])
      .executeTakeFirst();
    return Number(r?.n ?? 0);
  }
}
