/**
 * Credentials state every instance shares (issue 18): JWT signing keys in the control store, and
 * the one-time-use marks of DPoP proofs and TOTP codes in Redis when it is configured (`SET NX PX`,
 * and a compare-and-set script for TOTP steps), else in the control store. {@link openCredentials}
 * builds them from the config and installs the replay guards as the process defaults used by the
 * gateway (`defaultReplayCache`) and by `verifyTotpShared`.
 */
import { join } from 'node:path';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { type ReplayCache, useSharedReplayCache } from '../auth/dpop.js';
import { FileKeyStorage, type StoredKey, TokenService } from '../auth/tokens.js';
import { type SharedTotpGuard, useSharedTotpGuard } from '../auth/totp.js';
import type { SluiceConfig } from '../config/schema.js';
import type { Clock } from '../core/ports.js';
import type { SqlDatabase } from './sql/db.js';
import { SqlReplayStore, SqlSigningKeyStore } from './sql/signing-key-store.js';

/** Records `step` when it is newer than the stored one; the key expires after ARGV[2] ms. */
const CLAIM_STEP_LUA = `
local v = redis.call('GET', KEYS[1])
if v and tonumber(v) >= tonumber(ARGV[1]) then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1`;

/**
 * One-time-use marks in Redis (single server or cluster: each mark is one key). Errors reject: the
 * callers refuse rather than accept a possible replay.
 */
export class RedisReplayStore implements ReplayCache, SharedTotpGuard {
  constructor(
    private readonly redis: Redis,
    private readonly prefix = 'sluice:auth:',
  ) {}

  async remember(key: string, expiresAt: number, now: number): Promise<boolean> {
    const px = Math.max(1, Math.ceil(expiresAt - now));
    return (await this.redis.set(`${this.prefix}dpop:${key}`, '1', 'PX', px, 'NX')) === 'OK';
  }

  async claimStep(subject: string, step: number, ttlMs: number): Promise<boolean> {
    const r = await this.redis.eval(
      CLAIM_STEP_LUA,
      1,
      `${this.prefix}totp:${subject}`,
      step,
      Math.ceil(ttlMs),
    );
    return r === 1;
  }
}

/**
 * Upgrade path: keys from a data dir's key file (before keys were shared) are copied into an empty
 * control store, so tokens minted before the upgrade keep verifying. The file is left as it was.
 */
export async function importKeyFile(storage: SqlSigningKeyStore, file: string): Promise<number> {
  if ((await storage.count()) > 0) return 0;
  const keys = (await new FileKeyStorage(file).load()).sort((a, b) => a.generation - b.generation);
  let prev: StoredKey | null = null;
  let n = 0;
  for (const k of keys) {
    const next = { ...k, generation: n + 1 };
    // Another instance importing at the same moment wins: stop, its copy is the same.
    if (!(await storage.rotate(prev, next, []))) return n;
    prev = next;
    n++;
  }
  return n;
}

export interface Credentials {
  tokens: TokenService;
  /** Where DPoP proof ids and TOTP steps are kept. */
  replay: ReplayCache & SharedTotpGuard;
  /** `redis` or `control-store`. */
  replayBackend: 'redis' | 'control-store';
  close(): Promise<void>;
}

export interface OpenCredentialsOptions {
  clock: Clock;
  /** The control store's database (shared signing keys and, without Redis, replay marks). */
  sql: SqlDatabase;
  /** The server pepper: seals the private signing keys at rest. */
  pepper: Buffer;
  /** The pepper being rotated out: signing keys sealed under it are opened and sealed again. */
  previousPepper?: Buffer;
  logger?: Logger;
  /** Install the replay guards as the process defaults (default true). */
  installDefaults?: boolean;
}

/**
 * Opens the token service on the control store's signing keys and the shared replay guards. Redis is
 * `redis.url`, else `limits.url` when `limits.store` is redis; its own client (fails fast while Redis
 * is down: a DPoP proof or step-up is then refused with 503, never accepted unchecked).
 */
export async function openCredentials(cfg: SluiceConfig, opts: OpenCredentialsOptions): Promise<Credentials> {
  const storage = new SqlSigningKeyStore(opts.sql, opts.pepper, opts.previousPepper);
  await importKeyFile(storage, join(cfg.storage.dataDir, 'jwt-keys.json'));
  const tokens = await TokenService.fromConfig(cfg, opts.clock, storage);
  const url = cfg.redis?.url ?? (cfg.limits.store === 'redis' ? cfg.limits.url : undefined);
  let redis: Redis | undefined;
  let replay: ReplayCache & SharedTotpGuard;
  if (url) {
    // Loaded only when Redis is configured: an idle instance without it keeps about 4 MB less.
    const { Redis: RedisClient } = await import('ioredis');
    redis = new RedisClient(url, {
      enableOfflineQueue: true, // the first proofs after start wait for the connection instead of failing
      maxRetriesPerRequest: 1,
      commandTimeout: 1000,
      connectTimeout: 2000,
      retryStrategy: (times) => Math.min(50 * times, 1000),
    });
    redis.on('error', (err) => opts.logger?.debug({ err: err.message }, 'redis credentials client error'));
    replay = new RedisReplayStore(redis);
  } else replay = new SqlReplayStore(opts.sql);
  if (opts.installDefaults !== false) {
    useSharedReplayCache(replay);
    useSharedTotpGuard(replay);
  }
  return {
    tokens,
    replay,
    replayBackend: redis ? 'redis' : 'control-store',
    async close() {
      if (opts.installDefaults !== false) {
        useSharedReplayCache(null);
        useSharedTotpGuard(null);
      }
      if (redis) {
        await Promise.race([redis.quit().catch(() => {}), new Promise((r) => setTimeout(r, 500).unref())]);
        redis.disconnect();
      }
    },
  };
}
