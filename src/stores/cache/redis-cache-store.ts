/**
 * The shared response cache in Redis: one string per entry (`encodeEntry`), written with a PX TTL
 * so Redis expires it; `maxEntryBytes` bounds each entry (Redis' own `maxmemory` policy bounds the
 * total). Keys are `prefix + sha256` and carry no caller data.
 */
import type { Redis } from 'ioredis';
import {
  type CacheEntry,
  decodeEntry,
  encodeEntry,
  entryBytes,
  type ResponseCacheStore,
} from '../../core/cache/entry.js';

export interface RedisCacheOptions {
  redis: Redis;
  prefix: string;
  maxEntryBytes: number;
}

export class RedisCacheStore implements ResponseCacheStore {
  constructor(private readonly opts: RedisCacheOptions) {}

  async get(key: string): Promise<CacheEntry | null> {
    const text = await this.opts.redis.get(this.opts.prefix + key);
    return text === null ? null : decodeEntry(text);
  }

  async set(key: string, entry: CacheEntry, ttlMs: number): Promise<void> {
    if (entryBytes(entry) > this.opts.maxEntryBytes || ttlMs <= 0) return;
    await this.opts.redis.set(this.opts.prefix + key, encodeEntry(entry), 'PX', Math.ceil(ttlMs));
  }
}
