/**
 * A cached answer and its encoding. A whole answer keeps its body bytes; a streamed answer keeps
 * the exact byte chunks it was sent as (whole SSE events), replayed in order as a stream.
 */
import type { Usage } from '../ports.js';

export interface CacheEntry {
  status: number;
  contentType: string;
  /** clock.now() when stored: a hit's `age` header and the TTL are measured from it. */
  storedAt: number;
  /** What the stored answer used upstream: the tokens a hit saves. */
  usage: Usage;
  /** A whole answer. */
  body?: Uint8Array;
  /** A streamed answer, chunk by chunk as sent. */
  chunks?: Uint8Array[];
}

/** Where entries live (memory LRU or Redis). `get` of a missing or expired key is null. */
export interface ResponseCacheStore {
  get(key: string): Promise<CacheEntry | null>;
  /** Stores an entry for `ttlMs` milliseconds. */
  set(key: string, entry: CacheEntry, ttlMs: number): Promise<void>;
}

/** Bytes an entry takes (payload plus a fixed overhead for its fields and key). */
export function entryBytes(e: CacheEntry): number {
  let n = 256 + e.contentType.length;
  if (e.body) n += e.body.byteLength;
  if (e.chunks) for (const c of e.chunks) n += c.byteLength + 16;
  return n;
}

interface Encoded {
  v: 1;
  s: number;
  ct: string;
  at: number;
  u: [number, number, number];
  b?: string;
  c?: string[];
}

const b64 = (u: Uint8Array) => Buffer.from(u.buffer, u.byteOffset, u.byteLength).toString('base64');
const unb64 = (s: string) => new Uint8Array(Buffer.from(s, 'base64'));

/** A JSON text (bytes as base64), for stores that keep strings. */
export function encodeEntry(e: CacheEntry): string {
  const out: Encoded = {
    v: 1,
    s: e.status,
    ct: e.contentType,
    at: e.storedAt,
    u: [e.usage.inputTokens, e.usage.outputTokens, e.usage.images],
  };
  if (e.body) out.b = b64(e.body);
  if (e.chunks) out.c = e.chunks.map(b64);
  return JSON.stringify(out);
}

/** The entry, or null for anything that is not a well-formed version-1 entry. */
export function decodeEntry(text: string): CacheEntry | null {
  let o: Partial<Encoded>;
  try {
    o = JSON.parse(text) as Partial<Encoded>;
  } catch {
    return null;
  }
  if (typeof o !== 'object' || o === null) return null;
  if (o.v !== 1 || typeof o.s !== 'number' || typeof o.ct !== 'string' || typeof o.at !== 'number')
    return null;
  if (!Array.isArray(o.u) || o.u.length !== 3) return null;
  if (typeof o.b !== 'string' && !Array.isArray(o.c)) return null;
  const e: CacheEntry = {
    status: o.s,
    contentType: o.ct,
    storedAt: o.at,
    usage: { inputTokens: o.u[0], outputTokens: o.u[1], images: o.u[2] },
  };
  if (typeof o.b === 'string') e.body = unb64(o.b);
  if (Array.isArray(o.c)) e.chunks = o.c.map(unb64);
  return e;
}
