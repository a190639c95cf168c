/**
 * Audit events and their signed checkpoints on SQLite or PostgreSQL. Rows are only ever inserted,
 * except by `prune`, which deletes old events and records a signed 'prune' checkpoint in the same
 * transaction so that verification still works afterwards.
 */
import type { Selectable } from 'kysely';
import type { AuditCheckpoint, AuditCheckpointStore, CheckpointSigner } from '../../core/audit/checkpoint.js';
import { makeCheckpoint } from '../../core/audit/checkpoint.js';
import type { AuditDecision, AuditEvent } from '../../core/ports.js';
import {
  type AuditCheckpointsTable,
  type AuditEventsTable,
  conflictError,
  isUniqueViolation,
  type SqlDatabase,
} from './db.js';
import { sqliteBatchInsert } from './sqlite-batch.js';

const AUDIT_COLUMNS = [
  'instance',
  'seq',
  'at',
  'request_id',
  'key_id',
  'tenant_id',
  'project_id',
  'client_ip',
  'country',
  'user_agent',
  'action',
  'model',
  'decision',
  'reason',
  'policy_version',
  'details',
  'prev_hash',
  'hash',
] as const;

function eventToRow(e: AuditEvent): AuditEventsTable {
  return {
    instance: e.instance,
    seq: e.seq,
    at: e.at,
    request_id: e.requestId,
    key_id: e.keyId,
    tenant_id: e.tenantId,
    project_id: e.projectId,
    client_ip: e.clientIp,
    country: e.country,
    user_agent: e.userAgent,
    action: e.action,
    model: e.model,
    decision: e.decision,
    reason: e.reason,
    policy_version: e.policyVersion,
    // Plain JSON here (not canonical): the hash is over the parsed value, whatever the key order.
    details: e.details === null ? null : JSON.stringify(e.details),
    prev_hash: e.prevHash,
    hash: e.hash,
  };
}

function eventFromRow(r: Selectable<AuditEventsTable>): AuditEvent {
  return {
    seq: Number(r.seq),
    instance: r.instance,
    at: Number(r.at),
    requestId: r.request_id,
    keyId: r.key_id,
    tenantId: r.tenant_id,
    projectId: r.project_id,
    clientIp: r.client_ip,
    country: r.country,
    userAgent: r.user_agent,
    action: r.action,
    model: r.model,
    decision: r.decision as AuditDecision,
    reason: r.reason,
    policyVersion: r.policy_version === null ? null : Number(r.policy_version),
    details: r.details === null ? null : (JSON.parse(r.details) as Record<string, unknown>),
    prevHash: r.prev_hash,
    hash: r.hash,
  };
}

function checkpointFromRow(r: Selectable<AuditCheckpointsTable>): AuditCheckpoint {
  return {
    instance: r.instance,
    kind: r.kind as AuditCheckpoint['kind'],
    seq: Number(r.seq),
    hash: r.hash,
    at: Number(r.at),
    keyId: r.key_id,
    signature: r.signature,
  };
}

/**
 * Rows per INSERT. Small on purpose: better-sqlite3 runs each statement synchronously, and the
 * event loop is yielded between statements, so a large batch never stalls requests for more than
 * a fraction of a millisecond. (Also far below SQLite's bound-parameter limit.)
 */
const INSERT_CHUNK = 64;

const yieldToLoop = () => new Promise<void>((resolve) => setImmediate(resolve));

export interface AuditReadOptions {
  instance?: string;
  /** `at >= since` */
  since?: number;
  /** `at < until` */
  until?: number;
  /** `seq > afterSeq` (use with `instance` to page through a chain). */
  afterSeq?: number;
  limit?: number;
  /**
   * Without `instance`: continue after this event in (at, instance, seq) order, to page through
   * all instances by time (e.g. a SIEM export). Pass the last event of the previous page.
   */
  after?: { at: number; instance: string; seq: number };
}

export interface PruneResult {
  instance: string;
  /** First seq kept (it chains from the recorded checkpoint hash). */
  firstSeq: number;
  deleted: number;
}

export interface SqlAuditStoreOptions {
  /** Signs the checkpoints `prune` records; prune throws without it. */
  signer?: CheckpointSigner;
}

export class SqlAuditStore implements AuditCheckpointStore {
  readonly #signer: CheckpointSigner | undefined;

  constructor(
    readonly sql: SqlDatabase,
    opts: SqlAuditStoreOptions = {},
  ) {
    this.#signer = opts.signer;
  }

  private get db() {
    return this.sql.db;
  }

  /**
   * Inserts the events, and the checkpoint when given, in one transaction. Idempotent for a retried
   * batch whose rows are already stored with the same hashes; CONFLICT when a stored event differs.
   */
  async append(events: AuditEvent[], checkpoint?: AuditCheckpoint): Promise<void> {
    if (events.length === 0 && !checkpoint) return;
    const rows = events.map(eventToRow);
    try {
      const raw = this.sql.sqlite;
      if (raw) {
        // One transaction, one cached statement per table: the hot path of the audit writer.
        raw.transaction(() => {
          if (rows.length)
            sqliteBatchInsert(
              raw,
              'audit_events',
              AUDIT_COLUMNS,
            )(rows as unknown as Record<string, unknown>[]);
          if (checkpoint) {
            const cp = checkpointToRow(checkpoint);
            sqliteBatchInsert(
              raw,
              'audit_checkpoints',
              Object.keys(cp),
            )([cp as unknown as Record<string, unknown>]);
          }
        })();
        return;
      }
      await this.db.transaction().execute(async (tx) => {
        for (let i = 0; i < rows.length; i += INSERT_CHUNK) {
          if (i > 0) await yieldToLoop();
          await tx
            .insertInto('audit_events')
            .values(rows.slice(i, i + INSERT_CHUNK))
            .execute();
        }
        if (checkpoint)
          await tx.insertInto('audit_checkpoints').values(checkpointToRow(checkpoint)).execute();
      });
    } catch (err) {
      if (!isUniqueViolation(err)) throw err;
      if (await this.#alreadyStored(events, checkpoint)) return;
      const first = events[0];
      throw conflictError(
        first
          ? `audit events ${first.instance}#${first.seq}..${events[events.length - 1]!.seq} conflict with stored events`
          : `audit checkpoint ${checkpoint!.instance}#${checkpoint!.seq} already exists`,
      );
    }
  }

  async #alreadyStored(events: AuditEvent[], checkpoint?: AuditCheckpoint): Promise<boolean> {
    const byInstance = new Map<string, AuditEvent[]>();
    for (const e of events) {
      const list = byInstance.get(e.instance) ?? [];
      list.push(e);
      byInstance.set(e.instance, list);
    }
    for (const [instance, list] of byInstance) {
      const seqs = list.map((e) => e.seq);
      const stored = await this.db
        .selectFrom('audit_events')
        .select(['seq', 'hash'])
        .where('instance', '=', instance)
        .where('seq', '>=', Math.min(...seqs))
        .where('seq', '<=', Math.max(...seqs))
        .execute();
      const hashes = new Map(stored.map((r) => [Number(r.seq), r.hash]));
      if (!list.every((e) => hashes.get(e.seq) === e.hash)) return false;
    }
    if (checkpoint) {
      const cp = await this.db
        .selectFrom('audit_checkpoints')
        .select('hash')
        .where('instance', '=', checkpoint.instance)
        .where('kind', '=', checkpoint.kind)
        .where('seq', '=', checkpoint.seq)
        .executeTakeFirst();
      if (cp?.hash !== checkpoint.hash) return false;
    }
    return true;
  }

  async head(instance: string): Promise<AuditEvent | undefined> {
    const r = await this.db
      .selectFrom('audit_events')
      .selectAll()
      .where('instance', '=', instance)
      .orderBy('seq', 'desc')
      .limit(1)
      .executeTakeFirst();
    return r && eventFromRow(r);
  }

  /** With `instance`: that chain in seq order. Without: all instances by time, then instance and seq. */
  async read(opts: AuditReadOptions = {}): Promise<AuditEvent[]> {
    let q = this.db.selectFrom('audit_events').selectAll();
    if (opts.instance !== undefined) q = q.where('instance', '=', opts.instance);
    if (opts.since !== undefined) q = q.where('at', '>=', opts.since);
    if (opts.until !== undefined) q = q.where('at', '<', opts.until);
    if (opts.afterSeq !== undefined) q = q.where('seq', '>', opts.afterSeq);
    const c = opts.after;
    if (c) {
      q = q.where((eb) =>
        eb.or([
          eb('at', '>', c.at),
          eb.and([eb('at', '=', c.at), eb('instance', '>', c.instance)]),
          eb.and([eb('at', '=', c.at), eb('instance', '=', c.instance), eb('seq', '>', c.seq)]),
        ]),
      );
    }
    q = opts.instance !== undefined ? q.orderBy('seq') : q.orderBy('at').orderBy('instance').orderBy('seq');
    if (opts.limit !== undefined) q = q.limit(opts.limit);
    const rows = await q.execute();
    return rows.map(eventFromRow);
  }

  /** Every instance with events or checkpoints (an instance whose events were all deleted still shows). */
  async instances(): Promise<string[]> {
    const [a, b] = await Promise.all([
      this.db.selectFrom('audit_events').select('instance').distinct().execute(),
      this.db.selectFrom('audit_checkpoints').select('instance').distinct().execute(),
    ]);
    return [...new Set([...a, ...b].map((r) => r.instance))].sort();
  }

  async checkpoints(instance: string): Promise<AuditCheckpoint[]> {
    const rows = await this.db
      .selectFrom('audit_checkpoints')
      .selectAll()
      .where('instance', '=', instance)
      .orderBy('seq')
      .orderBy('kind')
      .execute();
    return rows.map(checkpointFromRow);
  }

  /** The newest head checkpoint of an instance. */
  async latestCheckpoint(instance: string): Promise<AuditCheckpoint | undefined> {
    const r = await this.db
      .selectFrom('audit_checkpoints')
      .selectAll()
      .where('instance', '=', instance)
      .where('kind', '=', 'head')
      .orderBy('seq', 'desc')
      .limit(1)
      .executeTakeFirst();
    return r && checkpointFromRow(r);
  }

  /**
   * Deletes, per instance, the events before the first one with `at >= before` (never the chain's
   * last event, so the chain can resume), with the head checkpoints they made obsolete, and records a
   * signed 'prune' checkpoint at `at` naming the first kept seq and the hash it chains from.
   * Deletion and checkpoint commit together. Instances with nothing to prune are left alone.
   */
  async prune(before: number, at: number): Promise<PruneResult[]> {
    const signer = this.#signer;
    if (!signer)
      throw new Error('SqlAuditStore.prune needs a signer (audit key) to record the prune checkpoint');
    const out: PruneResult[] = [];
    for (const instance of await this.instances()) {
      const result = await this.db.transaction().execute(async (tx) => {
        const bounds = await tx
          .selectFrom('audit_events')
          .select((eb) => [eb.fn.min('seq').as('first'), eb.fn.max('seq').as('last')])
          .where('instance', '=', instance)
          .executeTakeFirst();
        if (!bounds || bounds.first === null || bounds.last === null) return undefined;
        const first = Number(bounds.first);
        const last = Number(bounds.last);
        const keep = await tx
          .selectFrom('audit_events')
          .select((eb) => eb.fn.min('seq').as('seq'))
          .where('instance', '=', instance)
          .where('at', '>=', before)
          .executeTakeFirst();
        const keepFrom = Math.min(
          keep?.seq === null || keep?.seq === undefined ? last : Number(keep.seq),
          last,
        );
        if (keepFrom <= first) return undefined;
        const kept = await tx
          .selectFrom('audit_events')
          .select('prev_hash')
          .where('instance', '=', instance)
          .where('seq', '=', keepFrom)
          .executeTakeFirstOrThrow();
        const del = await tx
          .deleteFrom('audit_events')
          .where('instance', '=', instance)
          .where('seq', '<', keepFrom)
          .executeTakeFirst();
        await tx
          .deleteFrom('audit_checkpoints')
          .where('instance', '=', instance)
          .where('kind', '=', 'head')
          .where('seq', '<', keepFrom)
          .execute();
        const cp = makeCheckpoint(signer, {
          instance,
          kind: 'prune',
          seq: keepFrom,
          hash: kept.prev_hash,
          at,
        });
        // A concurrent prune from another instance may have recorded the same checkpoint first; keep its.
        await tx
          .insertInto('audit_checkpoints')
          .values(checkpointToRow(cp))
          .onConflict((oc) => oc.columns(['instance', 'kind', 'seq']).doNothing())
          .execute();
        return { instance, firstSeq: keepFrom, deleted: Number(del.numDeletedRows) };
      });
      if (result) out.push(result);
    }
    return out;
  }
}

function checkpointToRow(cp: AuditCheckpoint): AuditCheckpointsTable {
  return {
    instance: cp.instance,
    kind: cp.kind,
    seq: cp.seq,
    hash: cp.hash,
    at: cp.at,
    key_id: cp.keyId,
    signature: cp.signature,
  };
}
