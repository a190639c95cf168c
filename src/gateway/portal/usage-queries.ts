/**
 * Aggregated reads for the developer portal, all scoped to one tenant and answered in SQL (GROUP BY
 * over the `usage_tenant_at` index): the browser gets at most a few thousand points, never rows.
 * Recommendations are computed from the same aggregates and the audit trail.
 */
import { type Kysely, sql } from 'kysely';
import { ERRORS, type ErrorCode } from '../../core/errors.js';
import type { SqlDatabase } from '../../stores/sql/db.js';

export type UsageGroup = 'key' | 'model' | 'endpoint';
export type UsageBucket = 'hour' | 'day';

const GROUP_COLUMN: Record<UsageGroup, string> = { key: 'key_id', model: 'model', endpoint: 'action' };
const BUCKET_MS: Record<UsageBucket, number> = { hour: 3_600_000, day: 86_400_000 };

export interface UsagePoint {
  group: string;
  bucketStart: number;
  requests: number;
  inputTokens: number;
  outputTokens: number;
  usd: number;
}

export interface Refusal {
  at: number;
  keyId: string | null;
  action: string;
  model: string | null;
  decision: string;
  reason: string;
  message: string;
}

export interface Recommendation {
  id: string;
  title: string;
  detail: string;
  /** The expected saving, in words and as figures. */
  saving: string;
  figures: Record<string, number>;
}

export class PortalQueries {
  private readonly db: Kysely<any>;

  constructor(database: SqlDatabase) {
    this.db = database.db as unknown as Kysely<any>;
  }

  async usage(q: {
    tenantId: string;
    groupBy: UsageGroup;
    bucket: UsageBucket;
    since: number;
    until: number;
  }): Promise<UsagePoint[]> {
    const col = sql.ref(GROUP_COLUMN[q.groupBy]);
    const ms = BUCKET_MS[q.bucket];
    const start = sql<number>`(at / ${sql.lit(ms)}) * ${sql.lit(ms)}`;
    const rows = await this.db
      .selectFrom('usage')
      .select([
        sql<string>`${col}`.as('grp'),
        start.as('bucket_start'),
        sql<number>`count(*)`.as('requests'),
        sql<number>`sum(input_tokens)`.as('input_tokens'),
        sql<number>`sum(output_tokens)`.as('output_tokens'),
        sql<number>`sum(usd)`.as('usd'),
      ])
      .where('tenant_id', '=', q.tenantId)
      .where('at', '>=', q.since)
      .where('at', '<', q.until)
      .groupBy([sql`${col}`, start])
      .orderBy(sql`bucket_start`)
      .limit(20_000)
      .execute();
    return rows.map((r) => ({
      group: String(r.grp),
      bucketStart: Number(r.bucket_start),
      requests: Number(r.requests),
      inputTokens: Number(r.input_tokens),
      outputTokens: Number(r.output_tokens),
      usd: Math.round(Number(r.usd) * 1e6) / 1e6,
    }));
  }

  /** Recent 429s and refusals of the tenant, newest first, with the catalogue's public message. */
  async refusals(tenantId: string, since: number, limit = 50): Promise<Refusal[]> {
    const rows = await this.db
      .selectFrom('audit_events')
      .select(['at', 'key_id', 'action', 'model', 'decision', 'reason'])
      .where('tenant_id', '=', tenantId)
      .where('at', '>=', since)
      .where('decision', 'in', ['throttled', 'refused'])
      .orderBy('at', 'desc')
      .limit(Math.min(limit, 500))
      .execute();
    return rows.map((r) => ({
      at: Number(r.at),
      keyId: r.key_id,
      action: r.action,
      model: r.model,
      decision: r.decision,
      reason: r.reason,
      message: (ERRORS as Record<string, { message: string }>)[r.reason as ErrorCode]?.message ?? r.reason,
    }));
  }

  /**
   * Recommendations the recorded facts support: embeddings sent one by one (usage rows), the response
   * cache's hit rate and identical requests that missed it (audit), and limits that keep refusing
   * (audit). Others (max_tokens far above output, repeated system prompts, streams not read
   * incrementally, identical requests while the cache is off) need facts the ledger does not record.
   */
  async recommendations(tenantId: string, since: number, until: number): Promise<Recommendation[]> {
    const out: Recommendation[] = [];
    const days = Math.max(1, (until - since) / 86_400_000);
    const emb = await this.db
      .selectFrom('usage')
      .select([sql<number>`count(*)`.as('n'), sql<number>`avg(input_tokens)`.as('avg_in')])
      .where('tenant_id', '=', tenantId)
      .where('action', '=', 'embeddings.create')
      .where('at', '>=', since)
      .where('at', '<', until)
      .executeTakeFirst();
    const n = Number(emb?.n ?? 0);
    const avgIn = Number(emb?.avg_in ?? 0);
    // Small inputs sent one request each: the embeddings API takes up to 2048 inputs per call; 100 is a safe batch.
    if (n >= 50 && avgIn > 0 && avgIn < 512) {
      const batched = Math.ceil(n / 100);
      const perDay = Math.round((n - batched) / days);
      out.push({
        id: 'embeddings.batch',
        title: 'Batch your embeddings',
        detail: `${n} embeddings requests averaged ${Math.round(avgIn)} input tokens each. Send up to 100 inputs in one request.`,
        saving: `about ${perDay} fewer requests a day (${n} → ${batched} in this period), the same tokens`,
        figures: {
          requests: n,
          avgInputTokens: Math.round(avgIn),
          requestsAfter: batched,
          requestsSavedPerDay: perDay,
        },
      });
    }
    const cache = await this.cacheRecommendation(tenantId, since, until);
    if (cache) out.push(cache);
    const throttled = await this.db
      .selectFrom('audit_events')
      .select(['reason', sql<number>`count(*)`.as('n')])
      .where('tenant_id', '=', tenantId)
      .where('decision', '=', 'throttled')
      .where('at', '>=', since)
      .where('at', '<', until)
      .groupBy('reason')
      .execute();
    const total = throttled.reduce((s, r) => s + Number(r.n), 0);
    if (total >= 10) {
      out.push({
        id: 'limits.pressure',
        title: 'Requests keep hitting a limit',
        detail: `${total} requests were refused with 429 in this period. Honour Retry-After with backoff, spread bursts, or request a temporary exception below if this is a legitimate peak.`,
        saving: `${total} refused requests (${Math.round(total / days)} a day) would be served`,
        figures: { throttled: total, perDay: Math.round(total / days) },
      });
    }
    return out;
  }

  /**
   * The response cache as the tenant saw it (docs/cache.md): hits are usage rows with upstream
   * `cache`; cacheable misses are audit events with `cache: miss` and their key fingerprint. A miss
   * whose fingerprint was already seen in the period is an identical deterministic request that
   * could have been a hit (its entry had expired or been evicted, or the first answer was not
   * stored). Reads at most MAX_CACHE_ROWS audit rows, newest first.
   */
  async cacheRecommendation(tenantId: string, since: number, until: number): Promise<Recommendation | null> {
    const rows = await this.db
      .selectFrom('audit_events')
      .select(['reason', 'details'])
      .where('tenant_id', '=', tenantId)
      .where('at', '>=', since)
      .where('at', '<', until)
      .where('details', 'like', '%"cache":%')
      .orderBy('at', 'desc')
      .limit(MAX_CACHE_ROWS)
      .execute();
    let hits = 0;
    let misses = 0;
    let saved = 0;
    let repeats = 0;
    const seen = new Set<string>();
    for (const r of rows) {
      const d = String(r.details ?? '');
      if (d.includes('"cache":"hit"')) {
        hits++;
        saved += Number(/"savedTokens":(\d+)/.exec(d)?.[1] ?? 0);
      } else if (d.includes('"cache":"miss"')) {
        misses++;
        const fp = /"fp":"([0-9a-f]+)"/.exec(d)?.[1];
        if (fp) {
          if (seen.has(fp)) repeats++;
          else seen.add(fp);
        }
      }
    }
    const total = hits + misses;
    if (total < 20) return null;
    const rate = hits / total;
    const pct = Math.round(rate * 1000) / 10;
    const perHit = hits > 0 ? Math.round(saved / hits) : 0;
    const detail =
      `Your cache hit rate is ${pct}%: ${hits} of ${total} cacheable requests were answered from the cache, ` +
      `saving ${saved} upstream tokens.` +
      (repeats > 0
        ? ` ${repeats} identical deterministic requests could have been cache hits but missed (their entry had expired or been evicted): ask your operator for a longer cache ttl, or send repeats sooner.`
        : '');
    return {
      id: 'cache.hit_rate',
      title: repeats > 0 ? 'Identical requests missed the cache' : 'Response cache',
      detail,
      saving:
        repeats > 0
          ? `${repeats} more requests answered from the cache (hit rate ${pct}% → ${Math.round(((hits + repeats) / total) * 1000) / 10}%)${perHit ? `, about ${repeats * perHit} upstream tokens` : ''}`
          : `${saved} upstream tokens saved so far (${hits} hits)`,
      figures: { hits, misses, hitRate: rate, tokensSaved: saved, repeatedMisses: repeats },
    };
  }
}

/** Audit rows read for the cache recommendation: bounded work per page load. */
const MAX_CACHE_ROWS = 50_000;
