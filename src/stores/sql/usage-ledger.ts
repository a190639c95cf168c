/**
 * The usage ledger on SQLite or PostgreSQL. One row per request; queries aggregate by key, project,
 * tenant or model into UTC hour or day buckets with plain SQL that runs unchanged on both dialects.
 */
import { type RawBuilder, sql } from 'kysely';
import type { UsageLedger, UsageQuery, UsageRecord, UsageRow } from '../../core/ports.js';
import type { SqlDatabase } from './db.js';
import { sqliteBatchInsert } from './sqlite-batch.js';

const BUCKET_MS = { hour: 3_600_000, day: 86_400_000 } as const;

const GROUP_COLUMN: Record<UsageQuery['groupBy'], RawBuilder<string>> = {
  key: sql<string>`key_id`,
  // Requests without a project are grouped under ''.
  project: sql<string>`coalesce(project_id, '')`,
  tenant: sql<string>`tenant_id`,
  model: sql<string>`model`,
};

/** Rows per INSERT: stays under SQLite's 32766 bound-parameter limit (14 columns). */
const INSERT_CHUNK = 500;

export class SqlUsageLedger implements UsageLedger {
  constructor(readonly sql: SqlDatabase) {}

  /** Stores all rows in one transaction (all or none), appended: one row per call of `record` per request. */
  async record(rows: UsageRecord[]): Promise<void> {
    if (rows.length === 0) return;
    const values = rows.map((r) => ({
      request_id: r.requestId,
      at: Math.floor(r.at),
      key_id: r.keyId,
      tenant_id: r.tenantId,
      project_id: r.projectId ?? null,
      model: r.model,
      action: r.action,
      upstream: r.upstream,
      input_tokens: Math.round(r.inputTokens),
      output_tokens: Math.round(r.outputTokens),
      images: Math.round(r.images),
      usd: r.usd,
      status: Math.round(r.status),
      latency_ms: r.latencyMs,
    }));
    const raw = this.sql.sqlite;
    if (raw) {
      sqliteBatchInsert(raw, 'usage', Object.keys(values[0]!))(values);
      return;
    }
    await this.sql.db.transaction().execute(async (tx) => {
      for (let i = 0; i < values.length; i += INSERT_CHUNK) {
        await tx
          .insertInto('usage')
          .values(values.slice(i, i + INSERT_CHUNK))
          .execute();
      }
    });
  }

  /** Totals per group and bucket for `since <= at < until`, ordered by bucket then group. */
  async query(q: UsageQuery): Promise<UsageRow[]> {
    const ms = BUCKET_MS[q.bucket];
    const group = GROUP_COLUMN[q.groupBy];
    const bucket = sql<number>`(at - (at % ${sql.lit(ms)}))`;
    let query = this.sql.db
      .selectFrom('usage')
      .select([
        group.as('grp'),
        bucket.as('bucket_start'),
        sql<number>`count(*)`.as('requests'),
        sql<number>`sum(input_tokens)`.as('input_tokens'),
        sql<number>`sum(output_tokens)`.as('output_tokens'),
        sql<number>`sum(images)`.as('images'),
        sql<number>`sum(usd)`.as('usd'),
      ])
      .where('at', '>=', q.since)
      .where('at', '<', q.until);
    if (q.tenantId !== undefined) query = query.where('tenant_id', '=', q.tenantId);
    if (q.keyId !== undefined) query = query.where('key_id', '=', q.keyId);
    const rows = await query.groupBy([sql`1`, sql`2`]).orderBy(sql`2`).orderBy(sql`1`).execute();
    return rows.map((r) => ({
      group: String(r.grp),
      bucketStart: Number(r.bucket_start),
      requests: Number(r.requests),
      inputTokens: Number(r.input_tokens),
      outputTokens: Number(r.output_tokens),
      images: Number(r.images),
      usd: Number(r.usd),
    }));
  }
}
