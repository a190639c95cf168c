/**
 * Abuse cases in the control database (SQLite or PostgreSQL, migration `0007_cases`). The engine
 * writes every transition through (an upsert that never goes back in time: a row is only replaced
 * by one with a later or equal `updated_at`, and a closed case is never re-opened by a live write), loads the live ones at start, and polls
 * `changedSince` so a release or an extension made on another instance (or by the CLI) applies here.
 */
import type { Kysely } from 'kysely';
import type { AbuseCase, CaseStatus } from '../../abuse/engine.js';
import type { SqlDatabase } from './db.js';

interface CasesTable {
  id: string;
  kind: string;
  status: string;
  tenant_id: string | null;
  key_id: string | null;
  detector: string;
  capability: string;
  created_at: number;
  updated_at: number;
  expires_at: number | null;
  /** The whole case as JSON (evidence, notes). */
  data: string;
}

interface CaseDb {
  abuse_cases: CasesTable;
}

export interface CaseFilter {
  status?: CaseStatus;
  tenantId?: string;
  keyId?: string;
  limit?: number;
}

function toRow(c: AbuseCase): CasesTable {
  return {
    id: c.id,
    kind: c.kind,
    status: c.status,
    tenant_id: c.subject.tenantId ?? null,
    key_id: c.subject.keyId ?? null,
    detector: c.detector,
    capability: c.capability,
    created_at: c.createdAt,
    updated_at: c.updatedAt,
    expires_at: c.expiresAt,
    data: JSON.stringify(c),
  };
}

function fromRow(row: CasesTable): AbuseCase {
  const c = JSON.parse(row.data) as AbuseCase;
  // The columns are authoritative (the CLI and other instances update them together with data).
  c.status = row.status as CaseStatus;
  c.updatedAt = Number(row.updated_at);
  c.expiresAt = row.expires_at === null ? null : Number(row.expires_at);
  return c;
}

export class SqlCaseStore {
  private readonly db: Kysely<CaseDb>;

  constructor(sql: SqlDatabase) {
    this.db = sql.db as unknown as Kysely<CaseDb>;
  }

  /** Inserts or replaces, unless the stored row is newer (a late write never undoes a later one). */
  async save(c: AbuseCase): Promise<void> {
    const row = toRow(c);
    const { id: _id, created_at: _c, ...rest } = row;
    await this.db
      .insertInto('abuse_cases')
      .values(row)
      .onConflict((oc) => {
        const u = oc.column('id').doUpdateSet(rest).where('abuse_cases.updated_at', '<=', row.updated_at);
        // A live write (new evidence, a note) never re-opens a case a reviewer closed meanwhile.
        return row.status === 'open' || row.status === 'confirmed'
          ? u.where('abuse_cases.status', 'in', ['open', 'confirmed'])
          : u;
      })
      .execute();
  }

  async get(id: string): Promise<AbuseCase | undefined> {
    const row = await this.db.selectFrom('abuse_cases').selectAll().where('id', '=', id).executeTakeFirst();
    return row ? fromRow(row) : undefined;
  }

  /** Newest first. */
  async list(f: CaseFilter = {}): Promise<AbuseCase[]> {
    let q = this.db.selectFrom('abuse_cases').selectAll();
    if (f.status !== undefined) q = q.where('status', '=', f.status);
    if (f.tenantId !== undefined) q = q.where('tenant_id', '=', f.tenantId);
    if (f.keyId !== undefined) q = q.where('key_id', '=', f.keyId);
    const rows = await q
      .orderBy('created_at', 'desc')
      .orderBy('id', 'desc')
      .limit(Math.min(f.limit ?? 200, 5000))
      .execute();
    return rows.map(fromRow);
  }

  /** Cases still in force at `now` (open or confirmed, not past expiry), and open flags. */
  async live(now: number, limit = 100_000): Promise<AbuseCase[]> {
    const rows = await this.db
      .selectFrom('abuse_cases')
      .selectAll()
      .where('status', 'in', ['open', 'confirmed'])
      .where((eb) => eb.or([eb('expires_at', 'is', null), eb('expires_at', '>', now)]))
      .orderBy('updated_at', 'asc')
      .limit(limit)
      .execute();
    return rows.map(fromRow);
  }

  /** Cases written at or after `since` (by `updated_at`), oldest change first. */
  async changedSince(since: number, limit = 1000): Promise<AbuseCase[]> {
    const rows = await this.db
      .selectFrom('abuse_cases')
      .selectAll()
      .where('updated_at', '>=', since)
      .orderBy('updated_at', 'asc')
      .limit(limit)
      .execute();
    return rows.map(fromRow);
  }
}
