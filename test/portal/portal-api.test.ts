/**
 * The portal's JSON API through the real `serve()` (both planes over HTTP on port 0, SQLite in a temp
 * dir) with a fake clock:
 * - usage over 100,000 ledger rows is answered aggregated in SQL: at most one point per group and
 *   bucket, totals equal to the rows seeded, another tenant's rows never included, and the query
 *   plan uses the tenant's index (no wall-clock threshold: the load time is measured by the browser
 *   test and written in docs/portal.md);
 * - the recommendations use the response cache's hit rate and count identical deterministic
 *   requests that missed it;
 * - /sluice/v1/me lists the deprecations the key is affected by.
 */
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/load.js';
import { withDataDir } from '../../src/config/resolve.js';
import { type RunningSluice, serve } from '../../src/main.js';

const T0 = Date.parse('2026-12-01T10:00:00Z');
const clock = {
  t: T0,
  now() {
    return this.t;
  },
};
const yaml = `upstreams: [{ name: local, kind: mock }]
models: [{ match: "*", upstream: local }]
tiers:
  default:
    scopes: [chat.create, embeddings.create]
    models: ["*"]
cache: { enabled: true, ttl: 1m }
deprecations:
  - match: { model: demo-old }
    announced: 2026-11-01
    sunset: 2027-01-31
    replacement: demo-model
    link: https://example.com/notices/demo-old
`;

let s: RunningSluice;
let dir: string;
let key: { id: string; key: string };

const dev = (path: string, init: { method?: string; body?: unknown } = {}) =>
  fetch(`${s.urls.gateway}${path}`, {
    method: init.method ?? 'GET',
    headers: {
      authorization: `Bearer ${key.key}`,
      ...(init.body ? { 'content-type': 'application/json' } : {}),
    },
    body: init.body ? JSON.stringify(init.body) : undefined,
  });

const ROWS = 100_000;
const DAY = 86_400_000;

/** 100,000 usage rows over 30 days: three keys, three models; plus 1,000 rows of another tenant. */
function seed(): { requests: number; input: number; output: number } {
  const db = new Database(join(dir, 'sluice.db'));
  db.pragma('busy_timeout = 10000');
  const ins = db.prepare(
    `insert into usage (request_id, at, key_id, tenant_id, project_id, model, action, upstream, input_tokens,
     output_tokens, images, usd, status, latency_ms) values (?, ?, ?, ?, null, ?, ?, 'local', ?, ?, 0, ?, 200, 12)`,
  );
  const keys = [key.id, 'kSeedTwo0001', 'kSeedThree01'];
  const models = ['demo-model', 'gpt-4o-mini', 'demo-embed'];
  let input = 0;
  let output = 0;
  db.transaction(() => {
    for (let i = 0; i < ROWS; i++) {
      const model = models[i % 3]!;
      const embed = model === 'demo-embed';
      const inT = embed ? 20 + (i % 40) : 200 + (i % 900);
      const outT = embed ? 0 : 50 + (i % 300);
      input += inT;
      output += outT;
      const at = T0 - 30 * DAY + Math.floor((i / ROWS) * 30 * DAY);
      ins.run(
        `seed-${i}`,
        at,
        keys[i % 3],
        'acme',
        model,
        embed ? 'embeddings.create' : 'chat.create',
        inT,
        outT,
        1e-6,
      );
    }
    for (let i = 0; i < 1000; i++)
      ins.run(`other-${i}`, T0 - DAY, 'kOtherTen001', 'other', 'secret-model', 'chat.create', 5, 5, 1e-6);
  })();
  db.close();
  return { requests: ROWS, input, output };
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'sluice-portal-api-'));
  const config = withDataDir(parseConfig(yaml, 'test'), dir);
  s = await serve({
    source: { file: null, source: yaml, config },
    port: 0,
    adminPort: 0,
    host: '127.0.0.1',
    clock,
    logger: pino({ level: 'silent' }),
  });
  const adminToken = readFileSync(join(dir, 'admin-token'), 'utf8').trim();
  const r = await fetch(`${s.urls.admin}/admin/v1/keys`, {
    method: 'POST',
    headers: { authorization: `Bearer ${adminToken}`, 'content-type': 'application/json' },
    body: JSON.stringify({ tenant: 'acme' }),
  });
  key = (await r.json()) as { id: string; key: string };
}, 60_000);
afterAll(async () => {
  await s?.close(5000);
});

interface Point {
  group: string;
  bucketStart: number;
  requests: number;
  inputTokens: number;
  outputTokens: number;
}

describe('usage over 100,000 ledger rows', () => {
  let seeded: { requests: number; input: number; output: number };
  beforeAll(() => {
    seeded = seed();
  }, 120_000);

  it('per hour by key: one point per key and hour, totals equal to the rows, no other tenant', async () => {
    const r = await dev('/sluice/v1/usage?groupBy=key&bucket=hour&days=30');
    expect(r.status).toBe(200);
    const text = await r.text();
    const body = JSON.parse(text) as { data: Point[] };
    // 3 keys × 30 days × 24 hours (+1 bucket where the period does not start on the hour) at most.
    expect(body.data.length).toBeLessThanOrEqual(3 * (30 * 24 + 1));
    expect(body.data.length).toBeGreaterThan(3 * 29 * 24);
    expect(new Set(body.data.map((p) => `${p.group}@${p.bucketStart}`)).size).toBe(body.data.length);
    expect(new Set(body.data.map((p) => p.group))).toEqual(new Set([key.id, 'kSeedTwo0001', 'kSeedThree01']));
    expect(body.data.every((p) => p.bucketStart % 3_600_000 === 0)).toBe(true);
    const sum = (f: (p: Point) => number) => body.data.reduce((a, p) => a + f(p), 0);
    expect(sum((p) => p.requests)).toBe(seeded.requests);
    expect(sum((p) => p.inputTokens)).toBe(seeded.input);
    expect(sum((p) => p.outputTokens)).toBe(seeded.output);
    // Bounded: the answer's size depends on groups × buckets, not on the 100,000 rows.
    expect(text.length).toBeLessThan(3 * (30 * 24 + 1) * 150);
    expect(text).not.toContain('secret-model');
  });

  it('per day by model: at most 3 × 31 points', async () => {
    const body = (await (await dev('/sluice/v1/usage?groupBy=model&bucket=day&days=30')).json()) as {
      data: Point[];
    };
    expect(body.data.length).toBeLessThanOrEqual(3 * 31);
    expect(body.data.reduce((a, p) => a + p.requests, 0)).toBe(ROWS);
  });

  it('the aggregate is answered from the tenant index, not a scan of the ledger', () => {
    const db = new Database(join(dir, 'sluice.db'), { readonly: true });
    const plan = db
      .prepare(
        `explain query plan select key_id, (at / 3600000) * 3600000 as b, count(*), sum(input_tokens)
         from usage where tenant_id = ? and at >= ? and at < ? group by key_id, b`,
      )
      .all('acme', T0 - 30 * DAY, T0 + 1) as { detail: string }[];
    db.close();
    expect(plan.map((p) => p.detail).join('\n')).toMatch(/USING (COVERING )?INDEX usage_tenant_at/);
  });

  it('refuses a bad groupBy or bucket with a 400 in the OpenAI shape', async () => {
    const r = await dev('/sluice/v1/usage?groupBy=rows');
    expect(r.status).toBe(400);
    expect(((await r.json()) as { error: { param: string } }).error.param).toBe('groupBy');
  });
});

describe('recommendations use the cache hit rate', () => {
  it('counts hits, misses and identical deterministic requests that missed the cache', async () => {
    const chat = (content: string) =>
      dev('/v1/chat/completions', {
        method: 'POST',
        body: { model: 'demo-model', temperature: 0, messages: [{ role: 'user', content }] },
      });
    // 1. ten distinct questions, each asked twice within the ttl: 10 misses, 10 hits
    for (let i = 0; i < 10; i++) {
      const a = await chat(`question ${i}`);
      expect(a.headers.get('x-sluice-cache')).toBe('miss');
      await a.text();
      await s.stores.audit.flush();
      const b = await chat(`question ${i}`);
      expect(b.headers.get('x-sluice-cache')).toBe('hit');
      await b.text();
    }
    // 2. past the 1-minute ttl the first five are asked again: 5 misses that repeat a known request
    clock.t += 120_000;
    for (let i = 0; i < 5; i++) {
      const r = await chat(`question ${i}`);
      expect(r.headers.get('x-sluice-cache')).toBe('miss');
      await r.text();
    }
    // 3. a request that is not deterministic is not cacheable and does not count
    await (
      await dev('/v1/chat/completions', {
        method: 'POST',
        body: { model: 'demo-model', messages: [{ role: 'user', content: 'question 0' }] },
      })
    ).text();
    await s.stores.audit.flush();
    const recs = (await (await dev('/sluice/v1/recommendations?days=1')).json()) as {
      data: { id: string; title: string; detail: string; saving: string; figures: Record<string, number> }[];
    };
    const c = recs.data.find((r) => r.id === 'cache.hit_rate');
    expect(c).toBeDefined();
    expect(c!.figures).toMatchObject({ hits: 10, misses: 15, repeatedMisses: 5 });
    expect(c!.figures.hitRate).toBeCloseTo(10 / 25);
    expect(c!.figures.tokensSaved).toBeGreaterThan(0);
    expect(c!.detail).toContain('40%');
    expect(c!.detail).toContain('5 identical deterministic requests could have been cache hits');
    expect(c!.saving).toContain('40% → 60%');
  });
});

describe('/sluice/v1/me', () => {
  it('lists the deprecated model the key may call, with its replacement and link', async () => {
    const me = (await (await dev('/sluice/v1/me')).json()) as { deprecations: Record<string, unknown>[] };
    expect(me.deprecations).toEqual([
      {
        kind: 'model',
        name: 'demo-old',
        announced: '2026-11-01T00:00:00.000Z',
        sunset: '2027-01-31T00:00:00.000Z',
        status: 'deprecated',
        replacement: 'demo-model',
        link: 'https://example.com/notices/demo-old',
      },
    ]);
  });
});
