/**
 * Exception records in the control database (SQLite or PostgreSQL, migration `0005_exceptions`).
 * Decisions are compare-and-set on the stored status, so two operators approving and denying the
 * same request at once cannot both win.
 */
import type { Kysely } from 'kysely';
import type { ExceptionGrant, ExceptionRecord, ExceptionStatus } from '../../core/exceptions/model.js';
import type { SqlDatabase } from './db.js';

interface ExceptionsTable {
  id: string;
  tenant_id: string;
  key_id: string | null;
  requested_by: string;
  justification: string;
  requested: string;
  granted: string | null;
  duration_ms: number;
  status: string;
  created_at: number;
  request_expires_at: number;
  decided_at: number | null;
  decided_by: string | null;
  note: string | null;
  expires_at: number | null;
  updated_at: number;
}

interface ExceptionDb {
  exceptions: ExceptionsTable;
}

export interface ExceptionFilter {
  tenantId?: string;
  keyId?: string;
  /** Stored status (derived expiry is applied by the caller). */
  status?: ExceptionStatus;
  limit?: number;
}

function toRow(r: ExceptionRecord): ExceptionsTable {
  return {
    id: r.id,
    tenant_id: r.tenantId,
    key_id: r.keyId,
    requested_by: r.requestedBy,
    justification: r.justification,
    requested: JSON.stringify(r.requested),
    granted: r.granted === null ? null : JSON.stringify(r.granted),
    duration_ms: r.durationMs,
    status: r.status,
    created_at: r.createdAt,
    request_expires_at: r.requestExpiresAt,
    decided_at: r.decidedAt,
    decided_by: r.decidedBy,
    note: r.note,
    expires_at: r.expiresAt,
    updated_at: r.updatedAt,
  };
}

function fromRow(row: ExceptionsTable): ExceptionRecord {
  const n = (v: number | null) => (v === null ? null : Number(v));
  return {
    id: row.id,
    tenantId: row.tenant_id,
    keyId: row.key_id,
    requestedBy: row.requested_by,
    justification: row.justification,
    requested: JSON.parse(row.requested) as ExceptionGrant,
    granted: row.granted === null ? null : (JSON.parse(row.granted) as ExceptionGrant),
    durationMs: Number(row.duration_ms),
    status: row.status as ExceptionStatus,
    createdAt: Number(row.created_at),
    requestExpiresAt: Number(row.request_expires_at),
    decidedAt: n(row.decided_at),
    decidedBy: row.decided_by,
    note: row.note,
    expiresAt: n(row.expires_at),
    updatedAt: Number(row.updated_at),
  };
}

export class SqlExceptionStore {
  private readonly db: Kysely<ExceptionDb>;

  constructor(sql: SqlDatabase) {
    this.db = sql.db as unknown as Kysely<ExceptionDb>;
  }

  async create(r: ExceptionRecord): Promise<void> {
    await this.db.insertInto('exceptions').values(toRow(r)).execute();
  }

  async get(id: string): Promise<ExceptionRecord | undefined> {
    const row = await this.db.selectFrom('exceptions').selectAll().where('id', '=', id).executeTakeFirst();
    return row ? fromRow(row) : undefined;
  }

  /** Newest first. */
  async list(f: ExceptionFilter = {}): Promise<ExceptionRecord[]> {
    let q = this.db.selectFrom('exceptions').selectAll();
    if (f.tenantId !== undefined) q = q.where('tenant_id', '=', f.tenantId);
    if (f.keyId !== undefined)
      q = q.where((eb) => eb.or([eb('key_id', '=', f.keyId!), eb('key_id', 'is', null)]));
    if (f.status !== undefined) q = q.where('status', '=', f.status);
    const rows = await q
      .orderBy('created_at', 'desc')
      .orderBy('id', 'desc')
      .limit(Math.min(f.limit ?? 200, 1000))
      .execute();
    return rows.map(fromRow);
  }

  /** Approved records that have not ended by `now` (what the overlay loads). */
  async active(now: number): Promise<ExceptionRecord[]> {
    const rows = await this.db
      .selectFrom('exceptions')
      .selectAll()
      .where('status', '=', 'approved')
      .where('expires_at', '>', now)
      .execute();
    return rows.map(fromRow);
  }

  /**
   * Stores `next` if the stored status is still `expected`; returns false when another writer got
   * there first (nothing written).
   */
  async replace(next: ExceptionRecord, expected: ExceptionStatus): Promise<boolean> {
    const row = toRow(next);
    const { id: _id, created_at: _c, ...rest } = row;
    const r = await this.db
      .updateTable('exceptions')
      .set(rest)
      .where('id', '=', next.id)
      .where('status', '=', expected)
      .executeTakeFirst();
    return Number(r.numUpdatedRows) === 1;
  }

  /** Records still stored as pending or approved whose time has passed (for the sweep). */
  async lapsed(now: number, limit = 500): Promise<ExceptionRecord[]> {
    const rows = await this.db
      .selectFrom('exceptions')
      .selectAll()
      .where((eb) =>
        eb.or([
          eb.and([eb('status', '=', 'pending'), eb('request_expires_at', '<=', now)]),
          eb.and([eb('status', '=', 'approved'), eb('expires_at', '<=', now)]),
        ]),
      )
      .limit(limit)
      .execute();
    return rows.map(fromRow);
  }
}
