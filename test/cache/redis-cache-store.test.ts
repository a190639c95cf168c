/** The Redis cache store against the shared real Redis, under a unique prefix it cleans up. */
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RedisCacheStore } from '../../src/stores/cache/redis-cache-store.js';
import { auth, BASE_YAML, harness } from '../gateway/pipeline/support.js';

const prefix = `test:cache:${randomUUID()}:`;
let redis: Redis;

beforeAll(async () => {
  redis = new Redis({ host: '127.0.0.1', port: 6379, lazyConnect: true });
  await redis.connect();
});
afterAll(async () => {
  const keys = await redis.keys(`${prefix}*`);
  if (keys.length > 0) await redis.del(...keys);
  redis.disconnect();
});

const entry = {
  status: 200,
  contentType: 'text/event-stream',
  storedAt: 42,
  usage: { inputTokens: 5, outputTokens: 6, images: 0 },
  chunks: [new TextEncoder().encode('data: {"x":1}\n\n'), new TextEncoder().encode('data: [DONE]\n\n')],
};

describe('RedisCacheStore', () => {
  it('stores an entry under prefix+key with a PX TTL and reads it back exactly', async () => {
    const s = new RedisCacheStore({ redis, prefix, maxEntryBytes: 1 << 20 });
    expect(await s.get('k1')).toBeNull();
    await s.set('k1', entry, 30_000);
    expect(await s.get('k1')).toEqual(entry);
    const ttl = await redis.pttl(`${prefix}k1`);
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(30_000);
  });

  it('does not store entries over maxEntryBytes; a corrupt value reads as a miss', async () => {
    const s = new RedisCacheStore({ redis, prefix, maxEntryBytes: 100 });
    await s.set('big', { ...entry, chunks: [new Uint8Array(500)] }, 30_000);
    expect(await redis.exists(`${prefix}big`)).toBe(0);
    await redis.set(`${prefix}junk`, 'not json', 'PX', 30_000);
    expect(await s.get('junk')).toBeNull();
  });

  it('serves the gateway: a streamed answer stored in Redis is replayed on the next identical request', async () => {
    const h = harness({ yaml: `${BASE_YAML}\ncache: { enabled: true, ttl: 1m }\n` });
    h.deps.cache = new RedisCacheStore({ redis, prefix, maxEntryBytes: 1 << 20 });
    const payload = {
      model: 'mock-chat',
      temperature: 0,
      stream: true,
      messages: [{ role: 'user', content: 'r' }],
    };
    const send = async () => {
      const res = await h.app.inject({ method: 'POST', url: '/v1/chat/completions', headers: auth, payload });
      await h.settled(res.headers['x-request-id'] as string);
      return res;
    };
    const a = await send();
    const b = await send();
    expect([a.headers['x-sluice-cache'], b.headers['x-sluice-cache']]).toEqual(['miss', 'hit']);
    expect(b.body).toBe(a.body);
    expect((await redis.keys(`${prefix}*`)).length).toBeGreaterThanOrEqual(2);
  });
});
