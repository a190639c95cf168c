/**
 * Permission matrix through the real HTTP path: for a policy with several tiers, projects and keys,
 * every (key, action, model, client IP) combination gets the decision an independent oracle computes
 * from the same policy. Client IPs are varied with X-Forwarded-For from a trusted proxy (127.0.0.1);
 * the same header from an untrusted peer is ignored. One tier adds a Cedar policy.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createKey, type SluiceProcess, startSluice, tempDir, writeConfig } from './harness.js';

interface KeySpec {
  name: string;
  tier: string;
  project?: string;
  scopes?: string[];
  models?: string[];
  allowIp?: string[];
}

// The policy as data: the oracle below reads these, the config is written from them.
const TIERS: Record<string, { scopes: string[]; models: string[]; allow?: string[]; deny?: string[] }> = {
  free: { scopes: ['chat.create', 'models.list'], models: ['demo-*'] },
  pro: { scopes: ['*'], models: ['*'], deny: ['10.9.0.0/16'] },
  partner: {
    scopes: ['chat.*', 'embeddings.create'],
    models: ['demo-model', 'demo-embed', 'partner-*'],
    allow: ['10.0.0.0/8', '2001:db8::/32'],
  },
};
const PROJECTS: Record<string, { scopes?: string[]; models?: string[] }> = {
  'proj-a': { models: ['demo-model', 'partner-x'] },
};
const KEYS: KeySpec[] = [
  { name: 'free', tier: 'free' },
  { name: 'pro', tier: 'pro' },
  { name: 'pro-narrow', tier: 'pro', scopes: ['embeddings.create'], models: ['demo-embed'] },
  { name: 'free-widen', tier: 'free', scopes: ['chat.create', 'embeddings.create', 'images.generate'] },
  { name: 'partner', tier: 'partner' },
  { name: 'partner-proj', tier: 'partner', project: 'proj-a' },
  { name: 'pro-ip', tier: 'pro', allowIp: ['192.0.2.0/24'] },
];
const ACTIONS: [string, string, (model: string) => unknown][] = [
  ['chat.create', '/v1/chat/completions', (model) => ({ model, messages: [{ role: 'user', content: 'x' }] })],
  ['embeddings.create', '/v1/embeddings', (model) => ({ model, input: 'x' })],
  ['images.generate', '/v1/images/generations', (model) => ({ model, prompt: 'x' })],
];
const MODELS = ['demo-model', 'demo-embed', 'partner-x', 'gpt-4o'];
const IPS = ['10.1.2.3', '10.9.1.1', '192.0.2.7', '2001:db8::5', '203.0.113.9'];

// --- independent oracle -----------------------------------------------------------------------------
const glob = (p: string, s: string) =>
  new RegExp(
    `^${p
      .split('*')
      .map((x) => x.replace(/[.+?^${}()|[\]\\]/g, '\\$&'))
      .join('.*')}$`,
  ).test(s);
const anyGlob = (ps: string[], s: string) => ps.some((p) => glob(p, s));
function v4(ip: string): number | null {
  const m = /^(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(ip);
  return m ? ((+m[1]! << 24) >>> 0) + (+m[2]! << 16) + (+m[3]! << 8) + +m[4]! : null;
}
function inCidr(ip: string, cidr: string): boolean {
  const [net, bitsS] = cidr.split('/');
  const bits = Number(bitsS);
  if (net!.includes(':')) {
    if (!ip.includes(':')) return false;
    // enough for the /32 and /16 prefixes used here: compare leading hextets
    const a = ip.split(':');
    const b = net!.split(':');
    return a.slice(0, bits / 16).join(':') === b.slice(0, bits / 16).join(':');
  }
  const x = v4(ip);
  const n = v4(net!);
  if (x === null || n === null) return false;
  const mask = bits === 0 ? 0 : (~0 << (32 - bits)) >>> 0;
  return (x & mask) >>> 0 === (n & mask) >>> 0;
}
function expected(k: KeySpec, action: string, model: string, ip: string): number {
  const t = TIERS[k.tier]!;
  if (t.deny?.some((c) => inCidr(ip, c))) return 403;
  if (t.allow && !t.allow.some((c) => inCidr(ip, c))) return 403;
  if (k.allowIp && !k.allowIp.some((c) => inCidr(ip, c))) return 403;
  const p = k.project ? PROJECTS[k.project] : undefined;
  const scopeLayers = [t.scopes, p?.scopes, k.scopes].filter(Boolean) as string[][];
  if (!scopeLayers.every((l) => anyGlob(l, action))) return 403;
  const modelLayers = [t.models, p?.models, k.models].filter(Boolean) as string[][];
  if (!modelLayers.every((l) => anyGlob(l, model))) return 403;
  // Cedar on the partner tier: partner-x is forbidden even where the built-in rules allow it.
  if (k.tier === 'partner' && model === 'partner-x') return 403;
  return 200;
}

let s: SluiceProcess;
const keys = new Map<string, string>();

beforeAll(async () => {
  const dir = tempDir();
  writeFileSync(
    join(dir, 'policies.cedar'),
    `permit (principal, action, resource);
forbid (principal in Tier::"partner", action, resource == Model::"partner-x");
`,
  );
  const yaml = `upstreams: [{ name: local, kind: mock }]
models: [{ match: "*", upstream: local }]
trustedProxies: ["127.0.0.1/32", "::1/128"]
policies: { cedar: policies.cedar }
tiers:
${Object.entries(TIERS)
  .map(
    ([n, t]) =>
      `  ${n}:\n    scopes: ${JSON.stringify(t.scopes)}\n    models: ${JSON.stringify(t.models)}\n    rules: { ${[t.allow ? `allow: ${JSON.stringify(t.allow)}` : '', t.deny ? `deny: ${JSON.stringify(t.deny)}` : ''].filter(Boolean).join(', ')} }`,
  )
  .join('\n')}
projects:
${Object.entries(PROJECTS)
  .map(([n, p]) => `  ${n}: { ${p.models ? `models: ${JSON.stringify(p.models)}` : ''} }`)
  .join('\n')}
`;
  const config = writeConfig(dir, yaml);
  s = await startSluice({ config, dataDir: dir });
  for (const k of KEYS) {
    const extra = [
      ...(k.project ? ['--project', k.project] : []),
      ...(k.scopes ? ['--scopes', k.scopes.join(',')] : []),
      ...(k.models ? ['--models', k.models.join(',')] : []),
      ...(k.allowIp ? ['--allow-ip', k.allowIp.join(',')] : []),
    ];
    keys.set(k.name, (await createKey(s, extra, 'acme', k.tier)).key);
  }
}, 60_000);
afterAll(async () => {
  await s?.stop();
});

describe('permission matrix over HTTP', () => {
  it(`${KEYS.length * ACTIONS.length * MODELS.length * IPS.length} combinations match the oracle`, async () => {
    const mismatches: string[] = [];
    let checked = 0;
    for (const k of KEYS) {
      for (const [action, path, body] of ACTIONS) {
        await Promise.all(
          MODELS.flatMap((model) =>
            IPS.map(async (ip) => {
              const r = await fetch(`${s.url}${path}`, {
                method: 'POST',
                headers: {
                  authorization: `Bearer ${keys.get(k.name)}`,
                  'content-type': 'application/json',
                  'x-forwarded-for': ip,
                },
                body: JSON.stringify(body(model)),
              });
              const want = expected(k, action, model, ip);
              checked++;
              if (r.status !== want)
                mismatches.push(
                  `${k.name} ${action} ${model} ${ip}: got ${r.status} want ${want} ${await r.text()}`,
                );
              else await r.arrayBuffer();
            }),
          ),
        );
      }
    }
    expect(checked).toBe(KEYS.length * ACTIONS.length * MODELS.length * IPS.length);
    expect(mismatches).toEqual([]);
  });

  it('a denial names the refused model or missing scope, never another tenant', async () => {
    const r = await fetch(`${s.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${keys.get('free')}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'gpt-4o', messages: [{ role: 'user', content: 'x' }] }),
    });
    expect(r.status).toBe(403);
    const e = (await r.json()).error;
    expect(e.code).toBe('SLUICE_MODEL_DENIED');
    expect(e.message).toContain('gpt-4o');
    expect(e.message).not.toContain('acme');
  });

  it('X-Forwarded-For from an untrusted peer is ignored', async () => {
    // The partner tier only allows 10/8 and 2001:db8::/32. Connecting from 127.0.0.2 (not a trusted proxy),
    // a forged header naming 10.1.2.3 must not help.
    const { Agent } = await import('undici');
    const agent = new Agent({ localAddress: '127.0.0.2' });
    const r = await fetch(`${s.url}/v1/chat/completions`, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${keys.get('partner')}`,
        'content-type': 'application/json',
        'x-forwarded-for': '10.1.2.3',
      },
      body: JSON.stringify({ model: 'demo-model', messages: [{ role: 'user', content: 'x' }] }),
      // @ts-expect-error undici dispatcher on Node's fetch
      dispatcher: agent,
    });
    expect(r.status).toBe(403);
    expect((await r.json()).error.code).toBe('SLUICE_IP_DENIED');
    await agent.close();
  });
});
