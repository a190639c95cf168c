/**
 * What a policy change would do, in an operator's words: limits raised or lowered, scopes and
 * models granted or withdrawn, rules switched to shadow, tiers and routes added or removed.
 */
import type { LimitConfig, SluiceConfig } from './schema.js';

export interface PolicyChange {
  kind: 'added' | 'removed' | 'raised' | 'lowered' | 'changed' | 'shadow' | 'enforced';
  path: string;
  text: string;
}

const COST_KINDS = [
  'requests',
  'tokens',
  'inputTokens',
  'outputTokens',
  'images',
  'usd',
  'concurrent',
] as const;

function describeLimit(l: LimitConfig): string {
  const kind = COST_KINDS.find((k) => l[k] !== undefined)!;
  const win = l.window ? ` per ${fmtMs(l.window)}` : '';
  const burst = l.burst ? ` (+${l.burst} burst)` : '';
  const narrow = [
    l.actions ? `actions ${l.actions.join(',')}` : '',
    l.models ? `models ${l.models.join(',')}` : '',
  ]
    .filter(Boolean)
    .join('; ');
  return `${l[kind]} ${kind}${win}${burst} per ${l.per}${narrow ? ` [${narrow}]` : ''}${l.mode === 'shadow' ? ' (shadow)' : ''}`;
}

function fmtMs(ms: number): string {
  for (const [u, n] of [
    ['d', 86_400_000],
    ['h', 3_600_000],
    ['m', 60_000],
    ['s', 1000],
  ] as const) {
    if (ms % n === 0) return `${ms / n}${u}`;
  }
  return `${ms}ms`;
}

/** Requests per millisecond, so a limit's window change compares fairly. */
function rate(l: LimitConfig): number {
  const kind = COST_KINDS.find((k) => l[k] !== undefined)!;
  const amount = l[kind] as number;
  return kind === 'concurrent' ? amount : amount / (l.window ?? 1);
}

function diffLimits(path: string, a: LimitConfig[] = [], b: LimitConfig[] = [], out: PolicyChange[]): void {
  const before = new Map(a.map((l) => [l.id, l]));
  const after = new Map(b.map((l) => [l.id, l]));
  for (const [id, l] of after) {
    const old = before.get(id);
    const p = `${path}.limits.${id}`;
    if (!old) out.push({ kind: 'added', path: p, text: `limit added: ${describeLimit(l)}` });
    else {
      const was = describeLimit(old);
      const now = describeLimit(l);
      if (was === now) continue;
      if (old.mode !== l.mode)
        out.push({
          kind: l.mode === 'shadow' ? 'shadow' : 'enforced',
          path: p,
          text: `limit ${l.mode === 'shadow' ? 'now in shadow mode' : 'now enforced'}: ${now}`,
        });
      const r0 = rate(old);
      const r1 = rate(l);
      const kindSame =
        COST_KINDS.find((k) => old[k] !== undefined) === COST_KINDS.find((k) => l[k] !== undefined);
      if (kindSame && r1 > r0) out.push({ kind: 'raised', path: p, text: `limit raised: ${was} -> ${now}` });
      else if (kindSame && r1 < r0)
        out.push({ kind: 'lowered', path: p, text: `limit lowered: ${was} -> ${now}` });
      else if (old.mode === l.mode || was.replace(' (shadow)', '') !== now.replace(' (shadow)', ''))
        out.push({ kind: 'changed', path: p, text: `limit changed: ${was} -> ${now}` });
    }
  }
  for (const [id, l] of before)
    if (!after.has(id))
      out.push({ kind: 'removed', path: `${path}.limits.${id}`, text: `limit removed: ${describeLimit(l)}` });
}

function diffList(
  path: string,
  what: string,
  a: string[] | undefined,
  b: string[] | undefined,
  out: PolicyChange[],
): void {
  const x = new Set(a ?? []);
  const y = new Set(b ?? []);
  const added = [...y].filter((s) => !x.has(s));
  const removed = [...x].filter((s) => !y.has(s));
  if (added.length)
    out.push({ kind: 'added', path: `${path}.${what}`, text: `${what} granted: ${added.join(', ')}` });
  if (removed.length)
    out.push({ kind: 'removed', path: `${path}.${what}`, text: `${what} withdrawn: ${removed.join(', ')}` });
}

function diffRules(path: string, a: unknown, b: unknown, out: PolicyChange[]): void {
  const ja = JSON.stringify(a ?? null);
  const jb = JSON.stringify(b ?? null);
  if (ja === jb) return;
  const ma = (a as { mode?: string } | undefined)?.mode;
  const mb = (b as { mode?: string } | undefined)?.mode;
  if (b && mb === 'shadow' && ma !== 'shadow')
    out.push({
      kind: 'shadow',
      path: `${path}.rules`,
      text: 'rules now in shadow mode (logged, not enforced)',
    });
  else if (b && ma === 'shadow' && mb !== 'shadow')
    out.push({ kind: 'enforced', path: `${path}.rules`, text: 'rules now enforced' });
  out.push({
    kind: !a ? 'added' : !b ? 'removed' : 'changed',
    path: `${path}.rules`,
    text: `rules ${!a ? 'added' : !b ? 'removed' : 'changed'}: ${jb}`,
  });
}

export function diffPolicies(a: SluiceConfig, b: SluiceConfig): PolicyChange[] {
  const out: PolicyChange[] = [];
  for (const [name, t] of Object.entries(b.tiers)) {
    const old = a.tiers[name];
    const path = `tiers.${name}`;
    if (!old) {
      out.push({
        kind: 'added',
        path,
        text: `tier added with scopes ${t.scopes.join(',')}, models ${t.models.join(',')}, ${t.limits.length} limits`,
      });
      continue;
    }
    diffList(path, 'scopes', old.scopes, t.scopes, out);
    diffList(path, 'models', old.models, t.models, out);
    diffLimits(path, old.limits, t.limits, out);
    diffRules(path, old.rules, t.rules, out);
    if (JSON.stringify(old.queue) !== JSON.stringify(t.queue))
      out.push({
        kind: 'changed',
        path: `${path}.queue`,
        text: `queue: ${JSON.stringify(old.queue ?? null)} -> ${JSON.stringify(t.queue ?? null)}`,
      });
  }
  for (const name of Object.keys(a.tiers))
    if (!b.tiers[name])
      out.push({ kind: 'removed', path: `tiers.${name}`, text: 'tier removed (its keys will be refused)' });
  for (const section of ['tenants', 'projects', 'keys'] as const) {
    const names = new Set([...Object.keys(a[section]), ...Object.keys(b[section])]);
    for (const name of names) {
      const x = a[section][name];
      const y = b[section][name];
      const path = `${section}.${name}`;
      if (!y) {
        out.push({ kind: 'removed', path, text: 'override removed' });
        continue;
      }
      if (!x) out.push({ kind: 'added', path, text: 'override added' });
      if (x?.scopes || y.scopes) diffList(path, 'scopes', x?.scopes, y.scopes, out);
      if (x?.models || y.models) diffList(path, 'models', x?.models, y.models, out);
      diffLimits(path, x?.limits, y.limits, out);
      diffRules(path, x?.rules, y.rules, out);
    }
  }
  const routes = (c: SluiceConfig) =>
    c.models.map(
      (m) =>
        `${m.match} -> ${m.upstream}${m.fallbacks?.length ? ` then ${m.fallbacks.join(', ')}` : ''}${m.rewrite ? ` as ${m.rewrite}` : ''}`,
    );
  diffList('models', 'routes', routes(a), routes(b), out);
  const ups = (c: SluiceConfig) =>
    c.upstreams.map((u) => `${u.name} (${u.kind}${'baseUrl' in u ? ` ${u.baseUrl}` : ''})`);
  diffList('upstreams', 'upstreams', ups(a), ups(b), out);
  // Same name and address but other settings (credentials, headers, timeouts, capacity): named, never shown.
  for (const u of b.upstreams) {
    const was = a.upstreams.find(
      (x) =>
        x.name === u.name &&
        ups({ upstreams: [x] } as SluiceConfig)[0] === ups({ upstreams: [u] } as SluiceConfig)[0],
    );
    if (was && JSON.stringify(was) !== JSON.stringify(u)) {
      const fields = Object.keys({ ...was, ...u }).filter(
        (k) =>
          JSON.stringify((was as Record<string, unknown>)[k]) !==
          JSON.stringify((u as Record<string, unknown>)[k]),
      );
      out.push({
        kind: 'changed',
        path: `upstreams.${u.name}`,
        text: `upstream settings changed: ${fields.join(', ')}`,
      });
    }
  }
  if ((a.policies.cedar ?? null) !== (b.policies.cedar ?? null)) {
    out.push({
      kind: 'changed',
      path: 'policies.cedar',
      text: `Cedar policies: ${a.policies.cedar ?? '(none)'} -> ${b.policies.cedar ?? '(none)'}`,
    });
  }
  diffList('tasks', 'tasks', Object.keys(a.tasks), Object.keys(b.tasks), out);
  diffPins(a, b, out);
  return out;
}

/** Confidential routing pins, one line each: `tenant=hospital => confidential=true`. */
function diffPins(a: SluiceConfig, b: SluiceConfig, out: PolicyChange[]): void {
  const lines = (c: SluiceConfig) =>
    (c.routing?.pins ?? []).map((p) => {
      const who = (['action', 'task', 'tier', 'tenant'] as const)
        .filter((k) => p[k] !== undefined)
        .map((k) => `${k}=${p[k]}`);
      const labels = Object.entries(p.labels).map(([k, v]) => `${k}=${v}`);
      return `${who.join(', ')} => ${labels.join(', ')}`;
    });
  const x = new Set(lines(a));
  const y = new Set(lines(b));
  for (const l of y)
    if (!x.has(l)) out.push({ kind: 'added', path: 'routing.pins', text: `pin added: ${l}` });
  for (const l of x)
    if (!y.has(l)) out.push({ kind: 'removed', path: 'routing.pins', text: `pin removed: ${l}` });
}

export function formatChanges(changes: PolicyChange[]): string {
  if (changes.length === 0) return 'no changes\n';
  const sign: Record<PolicyChange['kind'], string> = {
    added: '+',
    removed: '-',
    raised: '^',
    lowered: 'v',
    changed: '~',
    shadow: '?',
    enforced: '!',
  };
  return `${changes.map((c) => `${sign[c.kind]} ${c.path}: ${c.text}`).join('\n')}\n`;
}
