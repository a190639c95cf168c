import { BlockList } from 'node:net';
import { describe, expect, it } from 'vitest';
import { ConfigSchema, type SluiceConfig, type SluiceConfigInput } from '../../../src/config/schema.js';
import {
  AccessPolicyError,
  type AuthzRequest,
  checkAccessPolicy,
  compileAccessPolicy,
  type Principal,
  type ShadowDenial,
} from '../../../src/core/authz/policy.js';

const base: SluiceConfigInput = {
  upstreams: [{ name: 'local', kind: 'mock' }],
  models: [{ match: '*', upstream: 'local' }],
  tiers: { default: {} },
};
const cfgOf = (over: Partial<SluiceConfigInput>): SluiceConfig => ConfigSchema.parse({ ...base, ...over });

const principal = (over: Partial<Principal> & { keyId: string; tier: string }): Principal => ({
  tenantId: 't',
  projectId: null,
  scopes: null,
  models: null,
  allowIps: null,
  denyIps: null,
  stepUp: false,
  ...over,
});
const req = (over: Partial<AuthzRequest>): AuthzRequest => ({
  action: 'chat.create',
  model: 'gpt-4o',
  ip: '10.0.0.1',
  country: null,
  now: Date.UTC(2024, 0, 1),
  ...over,
});

// ---------------------------------------------------------------------------------------------
// Permission matrix against an independent oracle
// ---------------------------------------------------------------------------------------------

const matrixInput: Partial<SluiceConfigInput> = {
  tiers: {
    free: {
      scopes: ['chat.*', 'embeddings.create', 'models.list'],
      models: ['gpt-4o-mini', 'demo-*'],
      rules: { deny: ['203.0.113.0/24'] },
    },
    pro: {
      scopes: ['*'],
      models: ['*'],
      rules: { allow: ['10.0.0.0/8', '2001:db8::/32', '198.51.100.0/24'] },
    },
    team: {
      scopes: ['chat.create', 'tasks.*', 'images.generate', 'models.list'],
      models: ['gpt-4o*', 'claude-*'],
    },
  },
  tenants: {
    acme: { scopes: ['chat.*', 'tasks.*', 'images.generate', 'models.list', 'embeddings.create'] },
    globex: { models: ['gpt-*', 'demo-*', 'llama-*'], rules: { deny: ['2001:db8:bad::/48'] } },
  },
  projects: {
    research: { models: ['claude-*', 'gpt-4o'], rules: { deny: ['10.66.0.0/16'] } },
    trial: { rules: { allow: ['10.1.0.0/16'], mode: 'shadow' } },
  },
  keys: {
    k_locked: {
      scopes: ['embeddings.create', 'chat.create'],
      rules: { allow: ['198.51.100.7', '10.0.0.0/8'] },
    },
  },
  tasks: {
    summarize: { model: 'gpt-4o-mini', system: 'Summarize.' },
    refine: { model: 'gpt-4o', system: 'Refine.', stepUp: true },
  },
  actions: { 'images.generate': { stepUp: true } },
};

const principals: Principal[] = [
  principal({ keyId: 'k_free', tier: 'free', tenantId: 'globex' }),
  // Asks for more than its tier has: must not get it.
  principal({
    keyId: 'k_widen',
    tier: 'free',
    tenantId: 'globex',
    scopes: ['*', 'images.generate'],
    models: ['*', 'gpt-4o'],
  }),
  principal({
    keyId: 'k_pro',
    tier: 'pro',
    tenantId: 'acme',
    projectId: 'research',
    allowIps: ['10.0.0.0/8'],
    denyIps: ['10.0.0.66'],
  }),
  principal({
    keyId: 'k_team',
    tier: 'team',
    tenantId: 'acme',
    projectId: 'trial',
    scopes: ['tasks.summarize', 'chat.create', 'images.generate', 'tasks.refine'],
  }),
  principal({ keyId: 'k_locked', tier: 'pro', tenantId: 'acme', models: ['demo-embed', 'gpt-4o'] }),
  principal({ keyId: 'k_v6', tier: 'pro', tenantId: 'globex', allowIps: ['2001:db8::/32'] }),
  principal({ keyId: 'k_token', tier: 'team', tenantId: 'acme', tokenScopes: ['chat.create', 'images.*'] }),
  principal({ keyId: 'k_ghost', tier: 'no-such-tier', tenantId: 'acme' }),
];
const actions = [
  'chat.create',
  'completions.create',
  'embeddings.create',
  'images.generate',
  'responses.create',
  'messages.create',
  'models.list',
  'tasks.summarize',
  'tasks.refine',
];
const models = ['gpt-4o', 'gpt-4o-mini', 'demo-embed', 'claude-3-opus', 'llama-3', null];
const ips = [
  '10.1.2.3',
  '10.0.0.66',
  '10.66.1.1',
  '198.51.100.7',
  '203.0.113.5',
  '2001:db8::1',
  '2001:db8:bad::1',
  '2001:dead::1',
  '::ffff:10.1.2.3',
  null,
];

/** Oracle: the policy as written, evaluated the slow obvious way (recursive wildcard, node:net BlockList). */
function oracle(
  p: Principal,
  r: AuthzRequest,
  stepUpActions: Set<string>,
): { code: string | null; shadow: string[] } {
  const wild = (pat: string, s: string): boolean =>
    pat === ''
      ? s === ''
      : pat[0] === '*'
        ? wild(pat.slice(1), s) || (s !== '' && wild(pat, s.slice(1)))
        : s !== '' && pat[0] === s[0] && wild(pat.slice(1), s.slice(1));
  const v4 = r.ip?.startsWith('::ffff:') ? r.ip.slice(7) : r.ip;
  const inList = (list: string[]): boolean => {
    if (v4 === null) return false;
    const bl = new BlockList();
    for (const c of list) {
      const [a, l] = c.split('/');
      const fam = a!.includes(':') ? 'ipv6' : 'ipv4';
      bl.addSubnet(a!, l ? Number(l) : fam === 'ipv4' ? 32 : 128, fam);
    }
    return bl.check(v4, v4.includes(':') ? 'ipv6' : 'ipv4');
  };
  const m = matrixInput as any;
  if (!m.tiers[p.tier]) return { code: 'SLUICE_POLICY_DENIED', shadow: [] };
  const layers: [string, any][] = [
    [`tiers.${p.tier}`, m.tiers[p.tier]],
    [`tenants.${p.tenantId}`, m.tenants[p.tenantId]],
    [`projects.${p.projectId}`, p.projectId ? m.projects[p.projectId] : undefined],
    [`keys.${p.keyId}`, m.keys[p.keyId]],
  ];
  const ruleSets: [string, any][] = layers
    .filter(([, l]) => l?.rules)
    .map(([n, l]) => [`${n}.rules`, l.rules]);
  if (p.allowIps || p.denyIps) ruleSets.push([`key ${p.keyId}`, { allow: p.allowIps, deny: p.denyIps }]);
  const shadow: string[] = [];
  for (const [name, rules] of ruleSets) {
    const denied = (rules.deny && inList(rules.deny)) || (rules.allow && !inList(rules.allow));
    if (!denied) continue;
    if (rules.mode === 'shadow') shadow.push(name);
    else return { code: 'SLUICE_IP_DENIED', shadow };
  }
  const scopeLists = [...layers.map(([, l]) => l?.scopes), p.scopes, p.tokenScopes].filter(
    Boolean,
  ) as string[][];
  if (!scopeLists.every((l) => l.some((s) => wild(s, r.action))))
    return { code: 'SLUICE_SCOPE_DENIED', shadow };
  const modelLists = [...layers.map(([, l]) => l?.models), p.models].filter(Boolean) as string[][];
  if (r.model !== null && !modelLists.every((l) => l.some((s) => wild(s, r.model!))))
    return { code: 'SLUICE_MODEL_DENIED', shadow };
  if (stepUpActions.has(r.action) && !p.stepUp) return { code: 'SLUICE_STEP_UP_REQUIRED', shadow };
  return { code: null, shadow };
}

describe('compileAccessPolicy: permission matrix', () => {
  it('gives every (key, action, model, ip, step-up) the decision the policy says', () => {
    const policy = compileAccessPolicy(cfgOf(matrixInput));
    const stepUp = new Set(['images.generate', 'tasks.refine']);
    let allowed = 0;
    let checked = 0;
    const codes = new Set<string>();
    for (const p0 of principals) {
      for (const stepped of [false, true]) {
        const p = { ...p0, stepUp: stepped };
        for (const action of actions)
          for (const model of models)
            for (const ip of ips) {
              const r = req({ action, model, ip });
              const { refusal, shadow } = policy.decide(p, r);
              const want = oracle(p, r, stepUp);
              const where = `${p.keyId} stepUp=${stepped} ${action} ${model} ${ip}`;
              expect(refusal?.code ?? null, where).toBe(want.code);
              expect(
                shadow.map((s) => s.rule),
                where,
              ).toEqual(want.shadow);
              checked++;
              if (!refusal) allowed++;
              else codes.add(refusal.code);
            }
      }
    }
    // The matrix must exercise both outcomes and every kind of refusal it can produce.
    expect(checked).toBe(principals.length * 2 * actions.length * models.length * ips.length);
    expect(allowed).toBeGreaterThan(100);
    expect([...codes].sort()).toEqual(
      [
        'SLUICE_IP_DENIED',
        'SLUICE_MODEL_DENIED',
        'SLUICE_POLICY_DENIED',
        'SLUICE_SCOPE_DENIED',
        'SLUICE_STEP_UP_REQUIRED',
      ].sort(),
    );
  });
});

// ---------------------------------------------------------------------------------------------
// Targeted behaviours
// ---------------------------------------------------------------------------------------------

describe('compileAccessPolicy: scopes and models', () => {
  const policy = compileAccessPolicy(cfgOf(matrixInput));

  it('a key cannot widen its tier: asking for * gets only what the tier has', () => {
    const widen = principals[1]!;
    expect(
      policy.authorize(widen, req({ action: 'images.generate', model: 'demo-x', ip: '10.1.1.1' }))?.code,
    ).toBe('SLUICE_SCOPE_DENIED');
    expect(policy.modelAllowed(widen, 'gpt-4o')).toBe(false);
    expect(policy.modelAllowed(widen, 'gpt-4o-mini')).toBe(true);
    expect(policy.actionAllowed(widen, 'chat.create')).toBe(true);
  });

  it('names the missing scope and only the caller-requested model', () => {
    const free = principals[0]!;
    const r1 = policy.authorize(free, req({ action: 'images.generate', model: null }));
    expect(r1).toMatchObject({ code: 'SLUICE_SCOPE_DENIED', detail: 'missing scope "images.generate"' });
    const r2 = policy.authorize(free, req({ model: 'claude-3-opus' }));
    expect(r2?.code).toBe('SLUICE_MODEL_DENIED');
    expect(r2?.detail).toBe('"claude-3-opus"');
    // Nothing about other patterns or tenants leaks into the public text.
    expect(JSON.stringify(r2)).not.toMatch(/demo|globex|acme|gpt-4o-mini/);
  });

  it('step-up refusals carry the RFC 9470 challenge', () => {
    const team = { ...principals[3]!, stepUp: false };
    const r = policy.authorize(team, req({ action: 'tasks.refine', model: null, ip: '10.1.0.1' }));
    expect(r?.code).toBe('SLUICE_STEP_UP_REQUIRED');
    expect(r?.headers?.['www-authenticate']).toMatch(/error="insufficient_user_authentication"/);
    expect(policy.stepUpRequired('images.generate')).toBe(true);
    expect(policy.stepUpRequired('chat.create')).toBe(false);
  });

  it('recompiles a key when its record changes (by version, or by new arrays without a version)', () => {
    const p1 = principal({ keyId: 'k1', tier: 'pro', tenantId: 'acme', models: ['gpt-4o'], version: 1 });
    const r = req({ model: 'demo-embed', ip: '10.0.0.1' });
    expect(policy.authorize(p1, r)?.code).toBe('SLUICE_MODEL_DENIED');
    expect(policy.authorize({ ...p1, models: ['demo-*'], version: 2 }, r)).toBeNull();
    const p2 = principal({ keyId: 'k2', tier: 'pro', tenantId: 'acme', allowIps: ['10.0.0.0/8'] });
    expect(policy.authorize(p2, r)).toBeNull();
    expect(policy.authorize({ ...p2, allowIps: ['192.168.0.0/16'] }, r)?.code).toBe('SLUICE_IP_DENIED');
  });

  it('DPoP is required by the tier or the key record', () => {
    const p = compileAccessPolicy(cfgOf({ tiers: { bound: { dpop: 'required' }, open: {} } }));
    expect(p.dpopRequired({ tier: 'bound' })).toBe(true);
    expect(p.dpopRequired({ tier: 'open', dpop: 'optional' })).toBe(false);
    expect(p.dpopRequired({ tier: 'open', dpop: 'required' })).toBe(true);
  });
});

describe('compileAccessPolicy: context rules', () => {
  it('IPv6 allow-lists and spoof-free addresses', () => {
    const policy = compileAccessPolicy(
      cfgOf({ tiers: { t: { rules: { allow: ['2001:db8:1::/48'], deny: ['2001:db8:1:bad::/64'] } } } }),
    );
    const p = principal({ keyId: 'k', tier: 't' });
    expect(policy.authorize(p, req({ ip: '2001:db8:1:2::9' }))).toBeNull();
    expect(policy.authorize(p, req({ ip: '2001:db8:1:bad::9' }))?.code).toBe('SLUICE_IP_DENIED');
    expect(policy.authorize(p, req({ ip: '2001:db8:2::1' }))?.code).toBe('SLUICE_IP_DENIED');
    // No address at all fails closed against an allow-list.
    expect(policy.authorize(p, req({ ip: null }))?.code).toBe('SLUICE_IP_DENIED');
  });

  it('shadow rules never refuse but report what they would have refused', () => {
    const policy = compileAccessPolicy(
      cfgOf({
        tiers: { t: { rules: { deny: ['10.0.0.0/8'], mode: 'shadow' } } },
        tenants: { acme: { rules: { allow: ['192.168.0.0/16'] } } },
      }),
    );
    const p = principal({ keyId: 'k', tier: 't', tenantId: 'acme' });
    const d1 = policy.decide(p, req({ ip: '10.0.0.1' }));
    expect(d1.refusal?.code).toBe('SLUICE_IP_DENIED');
    expect(d1.refusal?.internal).toBe('tenants.acme.rules: ip.allow');
    expect(d1.shadow).toEqual<ShadowDenial[]>([
      { code: 'SLUICE_IP_DENIED', rule: 'tiers.t.rules', reason: 'ip.deny' },
    ]);
    const d2 = policy.decide({ ...p, tenantId: 'other' }, req({ ip: '10.0.0.1' }));
    expect(d2.refusal).toBeNull();
    expect(d2.shadow).toHaveLength(1);
    expect(policy.decide({ ...p, tenantId: 'other' }, req({ ip: '11.0.0.1' })).shadow).toEqual([]);
  });

  it('hours in a time zone, across DST and a window that wraps midnight', () => {
    const policy = compileAccessPolicy(
      cfgOf({
        tiers: {
          office: {
            rules: {
              hours: {
                days: ['mon', 'tue', 'wed', 'thu', 'fri'],
                from: '09:00',
                to: '17:00',
                tz: 'America/New_York',
              },
            },
          },
          night: { rules: { hours: { days: ['fri'], from: '22:00', to: '06:00', tz: 'Europe/Paris' } } },
        },
      }),
    );
    const office = principal({ keyId: 'o', tier: 'office' });
    const at = (iso: string) => policy.authorize(office, req({ now: Date.parse(iso) }))?.code ?? null;
    expect(at('2024-03-11T13:30:00Z')).toBeNull(); // Mon 09:30 EDT (DST began Mar 10)
    expect(at('2024-03-08T13:30:00Z')).toBe('SLUICE_TIME_DENIED'); // Fri 08:30 EST
    expect(at('2024-03-08T14:30:00Z')).toBeNull(); // Fri 09:30 EST
    expect(at('2024-03-11T21:00:00Z')).toBe('SLUICE_TIME_DENIED'); // Mon 17:00 EDT: end is exclusive
    expect(at('2024-03-09T15:00:00Z')).toBe('SLUICE_TIME_DENIED'); // Saturday
    const night = principal({ keyId: 'n', tier: 'night' });
    const atN = (iso: string) => policy.authorize(night, req({ now: Date.parse(iso) }))?.code ?? null;
    expect(atN('2024-06-07T21:30:00Z')).toBeNull(); // Fri 23:30 CEST
    expect(atN('2024-06-08T02:00:00Z')).toBeNull(); // Sat 04:00, window opened Friday
    expect(atN('2024-06-08T05:00:00Z')).toBe('SLUICE_TIME_DENIED'); // Sat 07:00
    expect(atN('2024-06-08T21:30:00Z')).toBe('SLUICE_TIME_DENIED'); // Sat 23:30: window opens Fridays only
  });

  it('countries and reputation lists', () => {
    const listed = new Set(['198.51.100.9']);
    const policy = compileAccessPolicy(
      cfgOf({
        geo: { database: 'geo.mmdb' },
        reputation: { tor: { file: 'tor.txt' } },
        tiers: { t: { rules: { countries: { allow: ['fr', 'DE'] }, reputation: ['tor'] } } },
      }),
      {
        reputation: {
          listed: (name, ip) =>
            name === 'tor' && typeof ip === 'number' && listed.has(`198.51.100.${ip & 255}`),
        },
      },
    );
    const p = principal({ keyId: 'k', tier: 't' });
    expect(policy.authorize(p, req({ ip: '198.51.100.1', country: 'FR' }))).toBeNull();
    expect(policy.authorize(p, req({ ip: '198.51.100.1', country: 'US' }))?.code).toBe('SLUICE_GEO_DENIED');
    expect(policy.authorize(p, req({ ip: '198.51.100.1', country: null }))?.code).toBe('SLUICE_GEO_DENIED');
    expect(policy.authorize(p, req({ ip: '198.51.100.9', country: 'FR' }))?.code).toBe('SLUICE_IP_DENIED');
  });

  it('refuses a bad policy at compile time, naming every problem', () => {
    const bad = cfgOf({
      tiers: {
        t: {
          scopes: ['chat create'],
          rules: {
            allow: ['10.0.0.0/33'],
            countries: { deny: ['RU'] },
            reputation: ['nope'],
            hours: { from: '09:00', to: '25:00', tz: 'Mars/Olympus' },
          },
        },
      },
      actions: { 'chat.delete': { stepUp: true } },
    });
    const issues = checkAccessPolicy(bad);
    const paths = issues.map((i) => i.path).sort();
    expect(paths).toEqual(
      [
        'actions.chat.delete',
        'tiers.t.rules.allow',
        'tiers.t.rules.countries.deny',
        'tiers.t.rules.hours',
        'tiers.t.rules.hours.tz',
        'tiers.t.rules.reputation',
        'tiers.t.scopes',
      ].sort(),
    );
    expect(() => compileAccessPolicy(bad)).toThrow(AccessPolicyError);
    expect(checkAccessPolicy(cfgOf(matrixInput))).toEqual([]);
  });
});
