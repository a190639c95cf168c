/**
 * Opens the stores a config names: SQLite in the data dir (or PostgreSQL with `database.url`) for
 * control data, usage and audit; memory or Redis for limits; Redis pub/sub (when configured) so a
 * key revoked or a policy applied on one instance reaches every instance within a second.
 */
import { closeSync, mkdirSync, openSync, readFileSync, unlinkSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { SluiceConfig } from '../config/schema.js';
import { AuditChain } from '../core/audit/chain.js';
import { createCheckpointSigner, makeCheckpoint } from '../core/audit/checkpoint.js';
import type {
  AuditEvent,
  AuditSink,
  Clock,
  ControlStore,
  LimitStore,
  UsageLedger,
  UsageRecord,
} from '../core/ports.js';
import { AuditWriter } from '../stores/audit-writer.js';
import {
  type AuditKey,
  ensureDataDir,
  loadOrCreateAuditKey,
  loadOrCreateInstanceId,
  loadOrCreatePepper,
  loadPreviousPepper,
  type PreviousPepper,
} from '../stores/data-dir.js';
import { Journal } from '../stores/journal.js';
import { MemoryLimitStore } from '../stores/memory-limit-store.js';
import { ClusterLimitStore } from '../stores/redis/cluster-limit-store.js';
import { limitClusterOptions, limitRedisOptions, RedisLimitStore } from '../stores/redis-limit-store.js';
import { ResilientLimitStore } from '../stores/resilient-limit-store.js';
import { SliceLimitStore } from '../stores/slice-limit-store.js';
import { SqlAuditStore } from '../stores/sql/audit-store.js';
import { SqlControlStore } from '../stores/sql/control-store.js';
import { openDatabase, type SqlDatabase } from '../stores/sql/db.js';
import { SqlUsageLedger } from '../stores/sql/usage-ledger.js';

export interface Stores {
  sql: SqlDatabase;
  control: ControlStore;
  usage: UsageLedger;
  auditStore: SqlAuditStore;
  audit: AuditSink & { flush(): Promise<void>; close?(): Promise<void> };
  auditKey: AuditKey;
  limits: LimitStore;
  pepper: Buffer;
  /** The pepper being rotated out (SLUICE_PEPPER_PREVIOUS), accepted until its end. */
  previousPepper?: PreviousPepper;
  instanceId: string;
  /** Components currently degraded (`limits`, `control`), for /readyz and metrics. */
  degraded(): string[];
  /** The local journal of usage and audit records (serve only; see src/stores/journal.ts). */
  journal?: Journal;
  /** Reports a control-store failure (or recovery) seen elsewhere (usage writer, authenticator). */
  controlFailed(err: unknown): void;
  controlRecovered(): void;
  /** Drops a key from every instance's cache (this one at once, others over Redis); resolves once published. */
  invalidate(keyId: string): Promise<void>;
  onInvalidate(cb: (keyId: string) => void): void;
  publishPolicy(version: number): Promise<void>;
  onPolicy(cb: (version: number) => void): void;
  close(): Promise<void>;
}

export interface OpenStoresOptions {
  clock: Clock;
  logger: Logger;
  /** Override the audit instance id (default: `<dataDir>/instance-id`, suffixed while another live process holds it). */
  instanceId?: string;
  /** Open the limit store (false for one-shot CLI commands). */
  limits?: boolean;
  /** Appended to the data dir's instance id (e.g. `cli`): a separate chain for one-shot commands. */
  instanceSuffix?: string;
  /** Keep a local journal of usage and audit records (serve: true; one-shot commands: false). */
  journal?: boolean;
}

/** A control-store failure counts as an outage for this long after it was last seen. */
const CONTROL_DOWN_MS = 3000;

const CHANNEL = 'sluice:events';
/** How long a publication waits for the Redis connection (a one-shot CLI has just opened it). */
const PUBLISH_CONNECT_MS = 3000;
/** How long start-up waits for the limit store's first connection before serving. */
const LIMIT_CONNECT_MS = 5000;

/** Resolves true once `c` is ready (at once if it is), false after `ms`. */
function whenReady(c: Redis, ms: number): Promise<boolean> {
  if (c.status === 'ready') return Promise.resolve(true);
  return new Promise((resolve) => {
    const done = (ok: boolean) => {
      clearTimeout(timer);
      c.off('ready', onReady);
      resolve(ok);
    };
    const onReady = () => done(true);
    const timer = setTimeout(() => done(false), ms);
    c.on('ready', onReady);
  });
}

/**
 * Claims an audit instance id. One process uses `<base>` (stable across restarts, so its chain resumes);
 * further processes sharing the data dir at the same time get `<base>-2`, `<base>-3`, ...
 */
function claimInstance(dataDir: string, base: string): { id: string; release: () => void } {
  const dir = join(dataDir, 'instances');
  mkdirSync(dir, { recursive: true });
  for (let n = 1; n < 1000; n++) {
    const id = n === 1 ? base : `${base}-${n}`;
    const lock = join(dir, `${id}.lock`);
    try {
      const fd = openSync(lock, 'wx', 0o600);
      writeSync(fd, String(process.pid));
      closeSync(fd);
      return { id, release: () => safeUnlink(lock) };
    } catch {
      // Held: by a live process (try the next id) or a dead one (take it over).
      let pid = 0;
      try {
        pid = Number.parseInt(readFileSync(lock, 'utf8'), 10);
      } catch {}
      if (pid > 0 && pid !== process.pid && !alive(pid)) {
        safeUnlink(lock);
        n--;
      }
    }
  }
  return { id: `${base}-${process.pid}`, release: () => {} };
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function safeUnlink(f: string): void {
  try {
    unlinkSync(f);
  } catch {}
}

export async function openStores(cfg: SluiceConfig, opts: OpenStoresOptions): Promise<Stores> {
  const dataDir = cfg.storage.dataDir;
  ensureDataDir(dataDir);
  const pepper = loadOrCreatePepper(dataDir);
  const previousPepper = loadPreviousPepper();
  const auditKey = loadOrCreateAuditKey(dataDir);
  const signer = createCheckpointSigner(auditKey.privateKey);
  const sql = await openDatabase({
    url: cfg.database?.url,
    dataDir,
    onConnectionError: (err) =>
      opts.logger.warn(
        { err: err.message, code: (err as { code?: string }).code },
        'database connection lost; the next query reconnects',
      ),
  });
  const control = new SqlControlStore(sql);
  const usage = new SqlUsageLedger(sql);
  const auditStore = new SqlAuditStore(sql, { signer });
  const base = loadOrCreateInstanceId(dataDir);
  const claim = opts.instanceId
    ? { id: opts.instanceId, release: () => {} }
    : claimInstance(dataDir, opts.instanceSuffix ? `${base}-${opts.instanceSuffix}` : base);
  const instanceId = claim.id;
  // Control-store outage state: set by any writer's failure, cleared when they succeed again.
  let controlDownAt: number | undefined;
  let controlLogged = false;
  const controlFailed = (err: unknown) => {
    controlDownAt = opts.clock.now();
    if (!controlLogged) {
      controlLogged = true;
      opts.logger.error(
        { err: (err as Error | undefined)?.message },
        'control store unreachable: serving recently verified keys, spooling usage and audit to the local journal',
      );
    }
  };
  const controlRecovered = () => {
    if (controlDownAt === undefined) return;
    controlDownAt = undefined;
    controlLogged = false;
    opts.logger.warn(
      { pending: journal?.stats().pending ?? 0 },
      'control store reachable again: writing back',
    );
  };
  const journal =
    opts.journal && cfg.outage.journal.enabled
      ? new Journal({
          dir: join(dataDir, 'journal', instanceId),
          sync: cfg.outage.journal.sync,
          syncDelayMs: cfg.outage.journal.syncDelay,
          syncBatch: cfg.outage.journal.syncBatch,
          onError: (err) => opts.logger.error({ err: err.message }, 'journal write failed'),
        })
      : undefined;
  if (journal) await writeBack(journal, sql, usage, auditStore, instanceId, signer, opts);
  const audit = new AuditWriter({
    journal,
    store: auditStore,
    chain: new AuditChain(instanceId),
    signer,
    queueSize: cfg.audit.queueSize,
    batchSize: cfg.audit.batchSize,
    flushEveryMs: cfg.audit.flushEvery,
    clock: opts.clock,
    onOverflow: (info) =>
      opts.logger.error({ dropped: info.dropped, total: info.total }, 'audit queue overflow'),
    onError: (err) => {
      controlFailed(err);
      opts.logger.warn({ err: (err as Error).message }, 'audit write failed; retrying');
    },
  });
  await audit.start();

  // Redis: limits (store: redis) and/or invalidations (redis.url or limits.url).
  const redisUrl = cfg.redis?.url ?? (cfg.limits.store === 'redis' ? cfg.limits.url : undefined);
  const clients: Redis[] = [];
  let pub: Redis | undefined;
  const invalidateCbs: ((keyId: string) => void)[] = [];
  const policyCbs: ((v: number) => void)[] = [];
  if (redisUrl) {
    // ioredis is loaded only when Redis is configured (about 4 MB resident otherwise).
    const { Redis: RedisClient } = await import('ioredis');
    pub = new RedisClient(redisUrl, { ...limitRedisOptions(), lazyConnect: false });
    const sub = new RedisClient(redisUrl, {
      maxRetriesPerRequest: null,
      retryStrategy: (t) => Math.min(100 * t, 1000),
    });
    clients.push(pub, sub);
    for (const c of clients)
      c.on('error', (err) => opts.logger.debug({ err: err.message }, 'redis client error'));
    sub
      .subscribe(CHANNEL)
      .catch((err: Error) => opts.logger.warn({ err: err.message }, 'redis subscribe failed'));
    sub.on('message', (_ch, msg: string) => {
      if (msg.startsWith('key:')) for (const cb of invalidateCbs) cb(msg.slice(4));
      else if (msg.startsWith('policy:')) for (const cb of policyCbs) cb(Number(msg.slice(7)));
    });
    // A reconnect may have missed messages: drop every cached key once.
    sub.on('ready', () => {
      for (const cb of invalidateCbs) cb('*');
    });
  }

  let limits: LimitStore;
  let resilient: ResilientLimitStore | undefined;
  if (opts.limits === false) limits = new MemoryLimitStore({ clock: opts.clock, maxKeys: 1000 });
  else if (cfg.limits.store === 'redis') {
    const url = cfg.limits.url ?? cfg.redis?.url;
    const clustered = cfg.limits.cluster || cfg.limits.urls !== undefined;
    if (!url && !cfg.limits.urls)
      throw new Error('limits.store is redis but neither limits.url, limits.urls nor redis.url is set');
    // A cluster (limits.urls, or cluster: true): one client follows the slot map; see ClusterLimitStore.
    const { Redis: RedisClient } = await import('ioredis');
    const redis = clustered
      ? new RedisClient.Cluster(cfg.limits.urls ?? [url!], limitClusterOptions())
      : new RedisClient(url!, limitRedisOptions());
    redis.on('error', (err) => opts.logger.debug({ err: err.message }, 'redis limit client error'));
    clients.push(redis as Redis);
    const shared = clustered
      ? new ClusterLimitStore({ redis, clock: opts.clock })
      : new RedisLimitStore({ redis, clock: opts.clock });
    resilient = new ResilientLimitStore({
      // Hot-key slices for limits that set `slice` (only forwards otherwise): docs/scaling.md.
      remote: new SliceLimitStore({ inner: shared, clock: opts.clock }),
      onStoreFailure: cfg.limits.onStoreFailure,
      expectedInstances: cfg.limits.expectedInstances,
      timeoutMs: cfg.limits.timeout,
      isConnected: () => redis.status === 'ready',
      clock: opts.clock,
      onDegradedChange: (d, err) =>
        d
          ? opts.logger.error(
              { err: (err as Error | undefined)?.message },
              'limit store unreachable: degraded mode',
            )
          : opts.logger.warn('limit store reachable again: left degraded mode'),
    });
    limits = resilient;
    // Degraded mode starts when the connection is known down, and a client still connecting counts
    // as down: without this wait, requests that arrive in the first milliseconds after start were
    // served from the local share (seen in the three-instance test on a busy machine). Bounded: a
    // Redis that is really unreachable at start leaves the instance degraded, as documented.
    if (!(await whenReady(redis as Redis, LIMIT_CONNECT_MS)))
      opts.logger.warn({ waitedMs: LIMIT_CONNECT_MS }, 'limit store not reachable at start');
  } else limits = new MemoryLimitStore({ clock: opts.clock, maxKeys: cfg.limits.maxKeys });

  // Regression (issue 21): the publisher has no offline queue, and a one-shot CLI published before
  // its connection was up, so `sluice keys revoke` never reached the instances (the key kept working
  // until their cache entry expired). A publication now waits for the connection (bounded) and
  // resolves once Redis accepted it: by then Redis has handed it to every subscribed instance.
  // Redis unreachable: the change is in the store, and instances pick it up from there within
  // their key cache TTL (1 s) and policy poll (2 s); the log says so.
  const publish = async (msg: string): Promise<void> => {
    if (!pub) return;
    const client = pub;
    if (!(await whenReady(client, PUBLISH_CONNECT_MS))) {
      opts.logger.warn(
        { waitedMs: PUBLISH_CONNECT_MS },
        'redis unreachable: change not published; instances see it on their next store read (within 2 s)',
      );
      return;
    }
    try {
      const receivers = await client.publish(CHANNEL, msg);
      opts.logger.debug({ receivers, msg }, 'published');
    } catch (err) {
      opts.logger.warn({ err: (err as Error).message }, 'redis publish failed');
    }
  };

  return {
    sql,
    control,
    usage,
    auditStore,
    audit,
    auditKey,
    limits,
    pepper,
    previousPepper,
    instanceId,
    journal,
    controlFailed,
    controlRecovered,
    degraded: () => {
      const d = resilient?.degraded() ? ['limits'] : [];
      if (controlDownAt !== undefined) {
        // Still failing, or failed recently and something is still waiting to be written back.
        const recent = opts.clock.now() - controlDownAt < CONTROL_DOWN_MS;
        const queued = audit.stats().queued > 0;
        if (recent || queued) d.push('control');
        else controlRecovered();
      }
      return d;
    },
    invalidate(keyId) {
      for (const cb of invalidateCbs) cb(keyId);
      return publish(`key:${keyId}`);
    },
    onInvalidate: (cb) => void invalidateCbs.push(cb),
    publishPolicy: (v) => publish(`policy:${v}`),
    onPolicy: (cb) => void policyCbs.push(cb),
    async close() {
      await audit
        .flush()
        .catch((err: Error) => opts.logger.error({ err: err.message }, 'audit flush failed at close'));
      await (audit as { close?: () => Promise<void> }).close?.().catch(() => {});
      await journal?.close();
      await limits.close().catch(() => {});
      // QUIT waits for pending replies; an unreachable Redis must not hang a one-shot command.
      for (const c of clients) {
        await Promise.race([c.quit().catch(() => {}), new Promise((r) => setTimeout(r, 500).unref())]);
        c.disconnect();
      }
      await sql.close();
      claim.release();
    },
  };
}

/**
 * Writes back what the journal held at start (the previous process was killed, or stopped while the
 * store was down): usage rows not stored yet (by request id), audit events past the chain's stored head
 * with their original seq and hash (so the chain continues exactly), each batch with a signed head
 * checkpoint. Then the recovered segments are deleted. A store that cannot take them fails the start
 * (the journal is kept for the next one). Usage rows are matched by request id against what is stored.
 */
async function writeBack(
  journal: Journal,
  sql: SqlDatabase,
  usage: UsageLedger,
  auditStore: SqlAuditStore,
  instanceId: string,
  signer: ReturnType<typeof createCheckpointSigner>,
  opts: OpenStoresOptions,
): Promise<void> {
  const { usage: rows, audit: events } = journal.recover();
  if (rows.length === 0 && events.length === 0) return;
  // Usage rows have no unique key (appended in heap order for speed): the ones the database already
  // took are found through the `at` index, from the oldest journaled row on.
  const journaled = rows as UsageRecord[];
  const missing: UsageRecord[] = [];
  if (journaled.length > 0) {
    const since = Math.min(...journaled.map((r) => Math.floor(r.at)));
    const stored = await sql.db.selectFrom('usage').select('request_id').where('at', '>=', since).execute();
    const have = new Set(stored.map((r) => r.request_id));
    for (const r of journaled) if (!have.has(r.requestId)) missing.push(r);
  }
  for (let i = 0; i < missing.length; i += 1000) await usage.record(missing.slice(i, i + 1000));
  const head = await auditStore.head(instanceId);
  let seq = head?.seq ?? 0;
  let hash = head?.hash;
  const mine = (events as AuditEvent[])
    .filter((e) => e.instance === instanceId)
    .sort((a, b) => a.seq - b.seq);
  let restored = 0;
  let batch: AuditEvent[] = [];
  const commit = async () => {
    if (batch.length === 0) return;
    const last = batch[batch.length - 1]!;
    const cp = makeCheckpoint(signer, {
      instance: instanceId,
      kind: 'head',
      seq: last.seq,
      hash: last.hash,
      at: opts.clock.now(),
    });
    await auditStore.append(batch, cp);
    restored += batch.length;
    batch = [];
  };
  for (const e of mine) {
    if (e.seq <= seq) continue;
    if (e.seq !== seq + 1 || (hash !== undefined && e.prevHash !== hash)) {
      // A gap or a fork (two processes on one instance id): never write a broken chain. Loud, and the
      // rest is not written back.
      opts.logger.error(
        { expected: seq + 1, found: e.seq },
        'journal: audit events do not continue the chain',
      );
      break;
    }
    batch.push(e);
    seq = e.seq;
    hash = e.hash;
    if (batch.length >= 500) await commit();
  }
  await commit();
  journal.reset();
  opts.logger.warn(
    { usage: rows.length, audit: restored },
    'journal: records from the last run written back',
  );
}
