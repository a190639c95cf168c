/**
 * The in-process response cache: an LRU bounded by bytes. Entries expire after their TTL (read
 * against the injected clock, so tests drive it); the least recently used entries are evicted
 * once the total passes `maxBytes`. An entry bigger than `maxEntryBytes` is not stored.
 */
import { type CacheEntry, entryBytes, type ResponseCacheStore } from '../../core/cache/entry.js';
import type { Clock } from '../../core/ports.js';

interface Slot {
  entry: CacheEntry;
  bytes: number;
  expiresAt: number;
}

export interface MemoryCacheOptions {
  clock: Clock;
  maxBytes: number;
  maxEntryBytes?: number;
}

export class MemoryCacheStore implements ResponseCacheStore {
  private readonly slots = new Map<string, Slot>();
  private total = 0;
  private readonly clock: Clock;
  private readonly maxBytes: number;
  private readonly maxEntryBytes: number;

  constructor(opts: MemoryCacheOptions) {
    this.clock = opts.clock;
    this.maxBytes = opts.maxBytes;
    this.maxEntryBytes = Math.min(opts.maxEntryBytes ?? opts.maxBytes, opts.maxBytes);
  }

  /** Bytes held now (never above maxBytes). */
  get bytes(): number {
    return this.total;
  }

  get size(): number {
    return this.slots.size;
  }

  async get(key: string): Promise<CacheEntry | null> {
    const slot = this.slots.get(key);
    if (!slot) return null;
    if (this.clock.now() >= slot.expiresAt) {
      this.drop(key, slot);
      return null;
    }
    // Most recently used goes to the end of the Map's insertion order.
    this.slots.delete(key);
    this.slots.set(key, slot);
    return slot.entry;
  }

  async set(key: string, entry: CacheEntry, ttlMs: number): Promise<void> {
    const bytes = entryBytes(entry);
    if (bytes > this.maxEntryBytes || ttlMs <= 0) return;
    const old = this.slots.get(key);
    if (old) this.drop(key, old);
    this.slots.set(key, { entry, bytes, expiresAt: this.clock.now() + ttlMs });
    this.total += bytes;
    if (this.total <= this.maxBytes) return;
    const now = this.clock.now();
    // Expired entries go first, then the least recently used.
    for (const [k, s] of this.slots) if (now >= s.expiresAt) this.drop(k, s);
    for (const [k, s] of this.slots) {
      if (this.total <= this.maxBytes) break;
      this.drop(k, s);
    }
  }

  private drop(key: string, slot: Slot): void {
    this.slots.delete(key);
    this.total -= slot.bytes;
  }
}
