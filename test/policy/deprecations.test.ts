/**
 * Deprecation timelines: the compiled table (pure) and the `deprecations` stage in the real
 * gateway (in process, fake clock): headers before the sunset, 410 SLUICE_SUNSET after it, in
 * both wire formats, nothing on requests that match no entry.
 */
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/load.js';
import { DeprecationTable, deprecationHeaders, isSunset } from '../../src/core/deprecations.js';
import { auth, BASE_YAML, harness, KEY_ID } from '../gateway/pipeline/support.js';

// The harness clock starts at 1_700_000_000_000 = 2023-11-14T22:13:20Z.
const ANNOUNCED = Date.parse('2023-11-01T00:00:00Z');
const SUNSET = Date.parse('2023-12-01T00:00:00Z');

const YAML = `${BASE_YAML}
deprecations:
  - match: { model: "old-*" }
    announced: 2023-11-01
    sunset: 2023-12-01
    replacement: mock-chat
    link: https://example.com/notices/old
  - match: { route: /v1/embeddings }
    announced: 2023-11-20
    sunset: 2024-01-01
`;

const chat = (model: string) => ({ model, messages: [{ role: 'user', content: 'hi' }] });

describe('deprecation table', () => {
  const table = new DeprecationTable([
    { match: { model: 'gpt-3*' }, announced: 1000, sunset: 5000, replacement: 'gpt-4o' },
    { match: { model: 'exact' }, announced: 1000, sunset: 5000 },
    { match: { key: 'key1' }, announced: 0, sunset: 9000 },
    { match: { action: 'embeddings.create' }, announced: 0, sunset: 9000 },
  ]);
  const facts = { route: '/v1/chat/completions', action: 'chat.create', keyId: 'other' };

  it('matches exact names, model patterns, keys and actions; nothing else', () => {
    expect(table.find({ ...facts, model: 'gpt-3.5-turbo' })?.what).toBe('model "gpt-3.5-turbo"');
    expect(table.find({ ...facts, model: 'exact' })?.what).toBe('model "exact"');
    expect(table.find({ ...facts, model: 'gpt-4o' })).toBeUndefined();
    expect(table.find({ ...facts, model: 'x', keyId: 'key1' })?.what).toBe('key "key1"');
    expect(table.find({ ...facts, model: 'x', action: 'embeddings.create' })?.what).toBe(
      'action "embeddings.create"',
    );
    expect(new DeprecationTable([]).find({ ...facts, model: 'gpt-3' })).toBeUndefined();
  });

  it('headers follow RFC 9745 and RFC 8594; none before the announcement', () => {
    const e = {
      match: {},
      announced: 1_700_000_000_000,
      sunset: 1_800_000_000_000,
      link: 'https://x.test/n',
    };
    expect(deprecationHeaders(e, 1_700_000_000_000)).toEqual({
      deprecation: '@1700000000',
      sunset: 'Fri, 15 Jan 2027 08:00:00 GMT',
      link: '<https://x.test/n>; rel="deprecation"; type="text/html"',
    });
    expect(deprecationHeaders(e, 1_699_999_999_999)).toEqual({});
    expect(isSunset(e, 1_799_999_999_999)).toBe(false);
    expect(isSunset(e, 1_800_000_000_000)).toBe(true);
  });

  it('config rejects a match naming two things and a sunset before the announcement', () => {
    expect(() =>
      parseConfig(
        `${BASE_YAML}\ndeprecations:\n  - { match: { model: a, key: b }, announced: 2024-01-01, sunset: 2024-02-01 }\n`,
      ),
    ).toThrow(/exactly one/);
    expect(() =>
      parseConfig(
        `${BASE_YAML}\ndeprecations:\n  - { match: { model: a }, announced: 2024-03-01, sunset: 2024-02-01 }\n`,
      ),
    ).toThrow(/announced/);
    expect(() =>
      parseConfig(
        `${BASE_YAML}\ndeprecations:\n  - { match: { model: a }, announced: soon, sunset: 2024-02-01 }\n`,
      ),
    ).toThrow(/not a date/);
    const cfg = parseConfig(YAML);
    expect(cfg.deprecations[0]).toMatchObject({ announced: ANNOUNCED, sunset: SUNSET });
  });
});

describe('deprecations stage', () => {
  it('before the sunset a deprecated model is served with Deprecation, Sunset and Link headers', async () => {
    const h = harness({ yaml: YAML });
    const res = await h.app.inject({
      method: 'POST',
      url: '/v1/chat/completions',
      headers: auth,
      payload: chat('old-chat'),
    });
    expect(res.statusCode).toBe(200);
    expect(res.headers.deprecation).toBe(`@${ANNOUNCED / 1000}`);
    expect(res.headers.sunset).toBe('Fri, 01 Dec 2023 00:00:00 GMT');
    expect(res.headers.link).toBe('<https://example.com/notices/old>; rel="deprecation"; type="text/html"');
  });

  it('tells onDeprecated of each use by a tenant (the metric and the notice hang off it), sunset or not', async () => {
    const seen: string[] = [];
    const h = harness({
      yaml: YAML,
      deps: {
        onDeprecated: (tenant, entry, sunset) => void seen.push(`${tenant} ${entry.match.model} ${sunset}`),
      },
    });
    const call = (model: string) =>
      h.app.inject({ method: 'POST', url: '/v1/chat/completions', headers: auth, payload: chat(model) });
    expect((await call('old-chat')).statusCode).toBe(200);
    expect((await call('mock-chat')).statusCode).toBe(200);
    h.clock.t = SUNSET;
    expect((await call('old-chat')).statusCode).toBe(410);
    expect(seen).toEqual(['acme old-* false', 'acme old-* true']);
  });

  it('a request matching no entry gets none of the headers', async () => {
    const h = harness({ yaml: YAML });
    const res = await h.app.inject({
      method: 'POST',
      url: '/v1/chat/completions',
      headers: auth,
      payload: chat('mock-chat'),
    });
    expect(res.statusCode).toBe(200);
    expect(res.headers.deprecation).toBeUndefined();
    expect(res.headers.sunset).toBeUndefined();
  });

  it('from the sunset on: 410 SLUICE_SUNSET naming the replacement, in both wire formats, audited', async () => {
    const h = harness({ yaml: YAML });
    h.clock.t = SUNSET;
    const res = await h.app.inject({
      method: 'POST',
      url: '/v1/chat/completions',
      headers: auth,
      payload: chat('old-chat'),
    });
    expect(res.statusCode).toBe(410);
    expect(res.headers['x-should-retry']).toBe('false');
    expect(res.json().error).toEqual({
      message:
        'This model, route or key has been retired: model "old-chat" was retired on 2023-12-01; use "mock-chat" instead (see https://example.com/notices/old)',
      type: 'invalid_request_error',
      code: 'SLUICE_SUNSET',
      param: null,
    });
    await h.settled(res.headers['x-request-id'] as string);
    expect(h.audit).toEqual([
      expect.objectContaining({ reason: 'SLUICE_SUNSET', keyId: KEY_ID, decision: 'refused' }),
    ]);
    expect(h.usage).toHaveLength(0);

    const msg = await h.app.inject({
      method: 'POST',
      url: '/v1/messages',
      headers: auth,
      payload: { ...chat('old-chat'), max_tokens: 10 },
    });
    expect(msg.statusCode).toBe(410);
    expect(msg.json()).toEqual({
      type: 'error',
      error: {
        type: 'not_found_error',
        message: expect.stringContaining(
          'use "mock-chat" instead (see https://example.com/notices/old) (SLUICE_SUNSET)',
        ),
      },
    });
  });

  it('a route entry applies to its path only, and the announcement date gates the headers', async () => {
    const h = harness({ yaml: YAML });
    const embed = () =>
      h.app.inject({
        method: 'POST',
        url: '/v1/embeddings',
        headers: auth,
        payload: { model: 'mock-embed', input: 'x' },
      });
    const before = await embed();
    expect(before.statusCode).toBe(200);
    expect(before.headers.deprecation).toBeUndefined();
    h.clock.t = Date.parse('2023-11-21T00:00:00Z');
    const after = await embed();
    expect(after.statusCode).toBe(200);
    expect(after.headers.deprecation).toBe(`@${Date.parse('2023-11-20T00:00:00Z') / 1000}`);
    expect(after.headers.link).toBeUndefined();
  });
});
