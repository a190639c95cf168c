/**
 * `GET /sluice/v1/me` lists what the calling key can use that is deprecated (issue 19): its key,
 * models it may call (exact names and patterns), actions in its scopes and routes whose action is in
 * its scopes; not what it cannot use, not entries still unannounced; retired after the sunset.
 */
import { describe, expect, it } from 'vitest';
import { auth, harness, KEY_ID } from './pipeline/support.js';

// The harness clock starts at 1_700_000_000_000 = 2023-11-14T22:13:20Z.
const YAML = `
upstreams: [{ name: mock, kind: mock }]
models: [{ match: "*", upstream: mock }]
tiers:
  default:
    scopes: [chat.create, messages.create]
    models: ["mock-*"]
deprecations:
  - match: { model: "mock-chat" }
    announced: 2023-11-01
    sunset: 2023-12-01
    replacement: mock-chat-2
    link: https://example.com/notices/mock-chat
  - match: { model: "mock-*" }
    announced: 2023-11-01
    sunset: 2024-06-01
  - match: { model: "gpt-4*" }
    announced: 2023-11-01
    sunset: 2024-06-01
  - match: { key: ${KEY_ID} }
    announced: 2023-11-10
    sunset: 2024-02-01
    replacement: a new key
  - match: { key: someoneElse1 }
    announced: 2023-11-10
    sunset: 2024-02-01
  - match: { action: embeddings.create }
    announced: 2023-11-01
    sunset: 2024-01-01
  - match: { route: /v1/messages }
    announced: 2023-11-01
    sunset: 2024-01-01
  - match: { route: /v1/images/generations }
    announced: 2023-11-01
    sunset: 2024-01-01
  - match: { action: chat.create }
    announced: 2023-12-24
    sunset: 2024-03-01
`;

async function me(h: ReturnType<typeof harness>) {
  const r = await h.app.inject({ method: 'GET', url: '/sluice/v1/me', headers: auth });
  expect(r.statusCode).toBe(200);
  return r.json() as { deprecations: { kind: string; name: string; status: string }[]; limits: unknown[] };
}

describe('/sluice/v1/me deprecations', () => {
  it('lists only what the key can use, once announced, with dates, replacement and link', async () => {
    const h = harness({ yaml: YAML });
    const body = await me(h);
    expect(body.deprecations).toEqual([
      {
        kind: 'model',
        name: 'mock-chat',
        announced: '2023-11-01T00:00:00.000Z',
        sunset: '2023-12-01T00:00:00.000Z',
        status: 'deprecated',
        replacement: 'mock-chat-2',
        link: 'https://example.com/notices/mock-chat',
      },
      {
        kind: 'model',
        name: 'mock-*',
        announced: '2023-11-01T00:00:00.000Z',
        sunset: '2024-06-01T00:00:00.000Z',
        status: 'deprecated',
        replacement: null,
        link: null,
      },
      {
        kind: 'key',
        name: KEY_ID,
        announced: '2023-11-10T00:00:00.000Z',
        sunset: '2024-02-01T00:00:00.000Z',
        status: 'deprecated',
        replacement: 'a new key',
        link: null,
      },
      {
        kind: 'route',
        name: '/v1/messages',
        announced: '2023-11-01T00:00:00.000Z',
        sunset: '2024-01-01T00:00:00.000Z',
        status: 'deprecated',
        replacement: null,
        link: null,
      },
    ]);
    // The rest of /me is unchanged.
    expect(Array.isArray(body.limits)).toBe(true);
  });

  it('an entry appears once announced and says retired after its sunset', async () => {
    const h = harness({ yaml: YAML });
    h.clock.t = Date.parse('2023-12-25T00:00:00Z');
    const body = await me(h);
    const byName = Object.fromEntries(body.deprecations.map((d) => [d.name, d.status]));
    expect(byName['mock-chat']).toBe('retired');
    expect(byName['chat.create']).toBe('deprecated');
    expect(byName['/v1/messages']).toBe('deprecated');
    expect(byName['gpt-4*']).toBeUndefined();
  });

  it('a policy without deprecations answers an empty list', async () => {
    const h = harness();
    expect((await me(h)).deprecations).toEqual([]);
  });
});
