/**
 * Builds the response cache's store from the policy's `cache:` section: memory (an LRU bounded by
 * `maxBytes`) by default, Redis when `store: redis` (`cache.url`, else `redis.url`). The store is
 * built once at start; `ttl`, `enabled`, `tiers`, `tenants` and `tools` are read per request from
 * the live policy, so a reload changes them.
 */
import { createRequire } from 'node:module';
import type { Redis as RedisClient } from 'ioredis';
import type { Logger } from 'pino';
import type { SluiceConfig } from '../../config/schema.js';
import type { ResponseCacheStore } from '../../core/cache/entry.js';
import type { Clock } from '../../core/ports.js';
import { limitRedisOptions } from '../redis-limit-store.js';
import { MemoryCacheStore } from './memory-cache-store.js';
import { RedisCacheStore } from './redis-cache-store.js';

export { MemoryCacheStore } from './memory-cache-store.js';
export { RedisCacheStore } from './redis-cache-store.js';

export function createCacheStore(
  cfg: SluiceConfig,
  opts: { clock: Clock; logger: Logger },
): { store: ResponseCacheStore; close(): Promise<void> } {
  const c = cfg.cache;
  if (c.store === 'redis') {
    const url = c.url ?? cfg.redis?.url;
    if (!url) throw new Error('cache.store is redis but neither cache.url nor redis.url is set');
    // ioredis is loaded only when a Redis cache is configured (about 4 MB resident otherwise wasted).
    const { Redis } = createRequire(import.meta.url)('ioredis') as { Redis: typeof RedisClient };
    const redis = new Redis(url, limitRedisOptions());
    redis.on('error', (err) => opts.logger.debug({ err: err.message }, 'redis cache client error'));
    return {
      store: new RedisCacheStore({ redis, prefix: c.prefix, maxEntryBytes: c.maxEntryBytes }),
      close: async () => {
        redis.disconnect();
      },
    };
  }
  return {
    store: new MemoryCacheStore({ clock: opts.clock, maxBytes: c.maxBytes, maxEntryBytes: c.maxEntryBytes }),
    close: async () => {},
  };
}
