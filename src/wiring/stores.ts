/**
 * Opens the stores a config names: SQLite in the data dir (or PostgreSQL with `database.url`) for
 * control data, usage and audit; memory or Redis for limits; Redis pub/sub (when configured) so a
 * key revoked or a policy applied on one instance reaches every instance within a second.
 */
import { closeSync, mkdirSync, openSync, readFileSync, unlinkSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { SluiceConfig } from '../config/schema.js';
import { AuditChain } from '../core/audit/chain.js';
import { createCheckpointSigner } from '../core/audit/checkpoint.js';
import type { AuditSink, Clock, ControlStore, LimitStore, UsageLedger } from '../core/ports.js';
import { AuditWriter } from '../stores/audit-writer.js';
import {
  type AuditKey,
  ensureDataDir,
  loadOrCreateAuditKey,
  loadOrCreateInstanceId,
  loadOrCreatePepper,
} from '../stores/data-dir.js';
import { MemoryLimitStore } from '../stores/memory-limit-store.js';
import { limitRedisOptions, RedisLimitStore } from '../stores/redis-limit-store.js';
import { ResilientLimitStore } from '../stores/resilient-limit-store.js';
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
  instanceId: string;
  /** Components currently degraded (e.g. `limits`), for /readyz and metrics. */
  degraded(): string[];
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
}

const CHANNEL = 'sluice:events';

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
  const auditKey = loadOrCreateAuditKey(dataDir);
  const signer = createCheckpointSigner(auditKey.privateKey);
  const sql = await openDatabase({ url: cfg.database?.url, dataDir });
  const control = new SqlControlStore(sql);
  const usage = new SqlUsageLedger(sql);
  const auditStore = new SqlAuditStore(sql, { signer });
  const base = loadOrCreateInstanceId(dataDir);
  const claim = opts.instanceId
    ? { id: opts.instanceId, release: () => {} }
    : claimInstance(dataDir, opts.instanceSuffix ? `${base}-${opts.instanceSuffix}` : base);
  const instanceId = claim.id;
  const audit = new AuditWriter({
    store: auditStore,
    chain: new AuditChain(instanceId),
    signer,
    queueSize: cfg.audit.queueSize,
    batchSize: cfg.audit.batchSize,
    flushEveryMs: cfg.audit.flushEvery,
    clock: opts.clock,
    onOverflow: (info) =>
      opts.logger.error({ dropped: info.dropped, total: info.total }, 'audit queue overflow'),
    onError: (err) => opts.logger.warn({ err: (err as Error).message }, 'audit write failed; retrying'),
  });
  await audit.start();

  // Redis: limits (store: redis) and/or invalidations (redis.url or limits.url).
  const redisUrl = cfg.redis?.url ?? (cfg.limits.store === 'redis' ? cfg.limits.url : undefined);
  const clients: Redis[] = [];
  let pub: Redis | undefined;
  const invalidateCbs: ((keyId: string) => void)[] = [];
  const policyCbs: ((v: number) => void)[] = [];
  if (redisUrl) {
    pub = new Redis(redisUrl, { ...limitRedisOptions(), lazyConnect: false });
    const sub = new Redis(redisUrl, {
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
    if (!url) throw new Error('limits.store is redis but neither limits.url nor redis.url is set');
    const redis = new Redis(url, limitRedisOptions());
    redis.on('error', (err) => opts.logger.debug({ err: err.message }, 'redis limit client error'));
    clients.push(redis);
    resilient = new ResilientLimitStore({
      remote: new RedisLimitStore({ redis, clock: opts.clock }),
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
  } else limits = new MemoryLimitStore({ clock: opts.clock, maxKeys: cfg.limits.maxKeys });

  const publish = (msg: string) => {
    if (!pub) return Promise.resolve();
    return pub.publish(CHANNEL, msg).then(
      () => undefined,
      (err: Error) => opts.logger.warn({ err: err.message }, 'redis publish failed'),
    );
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
    instanceId,
    degraded: () => (resilient?.degraded() ? ['limits'] : []),
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
