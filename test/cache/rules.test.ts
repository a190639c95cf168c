import { describe, expect, it } from 'vitest';
import { decodeEntry, encodeEntry, entryBytes } from '../../src/core/cache/entry.js';
import { cacheability, cacheKey, type KeyParts } from '../../src/core/cache/rules.js';
import { MemoryCacheStore } from '../../src/stores/cache/memory-cache-store.js';

const rules = { tools: false };
const chat = (body: Record<string, unknown>, extra: { optIn?: string; cacheControl?: string } = {}) =>
  cacheability({ endpoint: 'chat', body, ...extra }, rules);

describe('cacheability', () => {
  it('caches temperature 0, embeddings and opt-in; absent temperature is not deterministic', () => {
    expect(chat({ temperature: 0 })).toEqual({ cache: true, why: 'temperature-0' });
    expect(chat({})).toEqual({ cache: false, why: 'not-deterministic' });
    expect(chat({ temperature: 0.2 })).toEqual({ cache: false, why: 'not-deterministic' });
    expect(chat({ temperature: 0.7 }, { optIn: 'on' })).toEqual({ cache: true, why: 'opt-in' });
    expect(cacheability({ endpoint: 'embeddings', body: {} }, rules).cache).toBe(true);
    expect(cacheability({ endpoint: 'images', body: { temperature: 0 } }, rules).cache).toBe(false);
  });

  it('x-sluice-cache: off and Cache-Control: no-store bypass even deterministic requests', () => {
    expect(chat({ temperature: 0 }, { optIn: 'OFF' })).toEqual({ cache: false, why: 'off' });
    expect(chat({ temperature: 0 }, { cacheControl: 'max-age=0, no-store' })).toEqual({
      cache: false,
      why: 'no-store',
    });
    expect(chat({ temperature: 0 }, { optIn: 'on', cacheControl: 'no-store' }).cache).toBe(false);
  });

  it('tools are never cached unless the policy allows them, opt-in or not', () => {
    const body = { temperature: 0, tools: [{ type: 'function', function: { name: 'send_mail' } }] };
    expect(chat(body)).toEqual({ cache: false, why: 'tools' });
    expect(chat(body, { optIn: 'on' })).toEqual({ cache: false, why: 'tools' });
    expect(cacheability({ endpoint: 'chat', body }, { tools: true }).cache).toBe(true);
    expect(chat({ temperature: 0, tools: [] }).cache).toBe(true);
  });
});

describe('cacheKey', () => {
  const base: KeyParts = {
    tenantId: 'acme',
    endpoint: 'chat',
    upstream: 'oai',
    upstreamModel: 'gpt-4o',
    body: { model: 'gpt', temperature: 0, messages: [{ role: 'user', content: 'hi' }] },
    headers: {},
  };
  it('ignores key order and unrelated headers', () => {
    const k = cacheKey(base);
    expect(k).toMatch(/^[0-9a-f]{64}$/);
    const reordered = { messages: [{ content: 'hi', role: 'user' }], temperature: 0, model: 'gpt' };
    expect(cacheKey({ ...base, body: reordered, headers: { 'user-agent': 'x', authorization: 'y' } })).toBe(
      k,
    );
  });
  it('changes with tenant, endpoint, upstream, model, body, stream and answer-changing headers', () => {
    const k = cacheKey(base);
    const variants: KeyParts[] = [
      { ...base, tenantId: 'beta' },
      { ...base, endpoint: 'completions' },
      { ...base, upstream: 'other' },
      { ...base, upstreamModel: 'gpt-4o-mini' },
      { ...base, body: { ...base.body, stream: true } },
      { ...base, body: { ...base.body, messages: [{ role: 'user', content: 'hi!' }] } },
      { ...base, headers: { 'anthropic-version': '2023-06-01' } },
      { ...base, headers: { 'openai-beta': 'assistants=v2' } },
    ];
    const keys = new Set(variants.map(cacheKey));
    expect(keys.size).toBe(variants.length);
    expect(keys.has(k)).toBe(false);
  });
});

describe('entry encoding', () => {
  it('round-trips whole and streamed answers; rejects junk', () => {
    const whole = {
      status: 200,
      contentType: 'application/json',
      storedAt: 5,
      usage: { inputTokens: 3, outputTokens: 4, images: 0 },
      body: new TextEncoder().encode('{"a":1}'),
    };
    expect(decodeEntry(encodeEntry(whole))).toEqual(whole);
    const streamed = {
      ...whole,
      body: undefined,
      chunks: [new Uint8Array([1, 2, 3]), new TextEncoder().encode('data: [DONE]\n\n')],
    };
    const back = decodeEntry(encodeEntry(streamed));
    expect(back?.chunks).toEqual(streamed.chunks);
    expect(back?.body).toBeUndefined();
    expect(decodeEntry('nope')).toBeNull();
    expect(decodeEntry('{"v":2}')).toBeNull();
  });
});

describe('MemoryCacheStore', () => {
  const entry = (n: number, at = 0) => ({
    status: 200,
    contentType: 'application/json',
    storedAt: at,
    usage: { inputTokens: 1, outputTokens: 1, images: 0 },
    body: new Uint8Array(n),
  });

  it('expires entries after their TTL on the injected clock', async () => {
    const clock = { t: 1000, now: () => clock.t };
    const s = new MemoryCacheStore({ clock, maxBytes: 1 << 20 });
    await s.set('a', entry(10), 5000);
    clock.t += 4999;
    expect(await s.get('a')).not.toBeNull();
    clock.t += 1;
    expect(await s.get('a')).toBeNull();
    expect(s.bytes).toBe(0);
  });

  it('never holds more than maxBytes, evicting the least recently used first', async () => {
    const clock = { t: 0, now: () => clock.t };
    const one = entryBytes(entry(1000));
    const s = new MemoryCacheStore({ clock, maxBytes: one * 3 });
    await s.set('a', entry(1000), 60_000);
    await s.set('b', entry(1000), 60_000);
    await s.set('c', entry(1000), 60_000);
    await s.get('a'); // a is now the most recently used
    await s.set('d', entry(1000), 60_000);
    expect(s.bytes).toBeLessThanOrEqual(one * 3);
    expect(await s.get('b')).toBeNull();
    for (const k of ['a', 'c', 'd']) expect(await s.get(k)).not.toBeNull();
    for (let i = 0; i < 50; i++) {
      await s.set(`k${i}`, entry(100 + i * 37), 60_000);
      expect(s.bytes).toBeLessThanOrEqual(one * 3);
    }
  });

  it('does not store an entry over maxEntryBytes', async () => {
    const clock = { t: 0, now: () => clock.t };
    const s = new MemoryCacheStore({ clock, maxBytes: 1 << 20, maxEntryBytes: 2000 });
    await s.set('big', entry(5000), 60_000);
    expect(await s.get('big')).toBeNull();
    await s.set('small', entry(100), 60_000);
    expect(await s.get('small')).not.toBeNull();
  });
});
