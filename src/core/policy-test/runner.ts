/**
 * Decision tests for a policy (`sluice policy test`, issue 19): cases name a principal, a request
 * and the decision expected; an evaluator (the real compiled policy, wired by the CLI) decides;
 * this module checks cases, compares and formats. Pure: time is the case's own virtual clock.
 */

export interface CasePrincipal {
  tenant: string;
  tier: string;
  project?: string;
  key?: string;
  scopes?: string[];
  models?: string[];
  ip: string;
  country?: string;
  /** Epoch ms of the (first) request. */
  time: number;
  endUser?: string;
}

export interface CaseRequest {
  path: string;
  model: string;
  tokens?: number;
  maxTokens?: number;
  stream: boolean;
}

export type Expectation =
  | { kind: 'allow' }
  | { kind: 'deny'; code: string }
  /** The first `after` requests pass and the next is refused with a 429 code (limits on a virtual clock). */
  | { kind: 'limited'; after: number; every: number };

export interface PolicyCase {
  name: string;
  file: string;
  principal: CasePrincipal;
  request: CaseRequest;
  expect: Expectation;
}

/** One decision of the real policy. */
export interface Decision {
  outcome: 'allow' | 'deny';
  code?: string;
  status?: number;
  message?: string;
}

/** Decides one request at a virtual instant; a fresh evaluator has empty limit buckets. */
export interface Evaluator {
  decide(p: CasePrincipal, r: CaseRequest, at: number): Promise<Decision>;
}

export interface CaseResult {
  name: string;
  file: string;
  passed: boolean;
  expected: string;
  actual: string;
  /** For a limited case: the decision of every request sent. */
  trace?: string[];
}

export class CaseError extends Error {}

function str(v: unknown, where: string): string {
  if (typeof v !== 'string' || v.length === 0) throw new CaseError(`${where}: expected a string`);
  return v;
}

function strings(v: unknown, where: string): string[] | undefined {
  if (v === undefined) return undefined;
  if (!Array.isArray(v) || !v.every((x) => typeof x === 'string'))
    throw new CaseError(`${where}: expected a list of strings`);
  return v as string[];
}

/** `1s`, `1m`, `1h` as ms (the case file's own small duration syntax). */
function ms(v: unknown, where: string): number {
  const m = typeof v === 'string' ? /^(\d+)(ms|s|m|h)$/.exec(v) : null;
  if (!m) throw new CaseError(`${where}: expected a duration such as 0s, 1s, 1m`);
  return Number(m[1]) * { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[m[2] as 's'];
}

const DEFAULT_TIME = Date.UTC(2026, 0, 5, 12); // a Monday, noon UTC

/** Checks the cases of one test file (already parsed from YAML). */
export function parseCases(doc: unknown, file: string): PolicyCase[] {
  const cases = (doc as { cases?: unknown } | null)?.cases;
  if (!Array.isArray(cases)) throw new CaseError(`${file}: expected a top-level "cases:" list`);
  return cases.map((c: Record<string, unknown>, i) => {
    const where = `${file}: case ${i + 1}`;
    const name = str(c?.name, `${where}: name`);
    const p = (c.principal ?? {}) as Record<string, unknown>;
    const r = (c.request ?? {}) as Record<string, unknown>;
    const time = p.time === undefined ? DEFAULT_TIME : Date.parse(str(p.time, `${where}: principal.time`));
    if (Number.isNaN(time)) throw new CaseError(`${where}: principal.time is not a date`);
    const principal: CasePrincipal = {
      tenant: p.tenant === undefined ? 'test' : str(p.tenant, `${where}: principal.tenant`),
      tier: str(p.tier, `${where}: principal.tier`),
      project: p.project === undefined ? undefined : str(p.project, `${where}: principal.project`),
      key: p.key === undefined ? undefined : str(p.key, `${where}: principal.key`),
      scopes: strings(p.scopes, `${where}: principal.scopes`),
      models: strings(p.models, `${where}: principal.models`),
      ip: p.ip === undefined ? '192.0.2.10' : str(p.ip, `${where}: principal.ip`),
      country: p.country === undefined ? undefined : str(p.country, `${where}: principal.country`),
      time,
      endUser: p.endUser === undefined ? undefined : str(p.endUser, `${where}: principal.endUser`),
    };
    const tokens = r.tokens === undefined ? undefined : Number(r.tokens);
    if (tokens !== undefined && !(Number.isInteger(tokens) && tokens >= 0))
      throw new CaseError(`${where}: request.tokens must be a whole number`);
    const request: CaseRequest = {
      path: r.path === undefined ? '/v1/chat/completions' : str(r.path, `${where}: request.path`),
      model: str(r.model, `${where}: request.model`),
      tokens,
      maxTokens: r.maxTokens === undefined ? undefined : Number(r.maxTokens),
      stream: r.stream === true,
    };
    return { name, file, principal, request, expect: parseExpect(c.expect, where) };
  });
}

function parseExpect(e: unknown, where: string): Expectation {
  if (e === 'allow') return { kind: 'allow' };
  if (e && typeof e === 'object') {
    const o = e as Record<string, unknown>;
    if (typeof o.deny === 'string') return { kind: 'deny', code: o.deny };
    const l = o.limited as Record<string, unknown> | undefined;
    if (l && typeof l === 'object') {
      const after = Number(l.after);
      if (!Number.isInteger(after) || after < 0 || after > 100_000)
        throw new CaseError(`${where}: expect.limited.after must be a whole number up to 100000`);
      return {
        kind: 'limited',
        after,
        every: l.every === undefined ? 0 : ms(l.every, `${where}: expect.limited.every`),
      };
    }
  }
  throw new CaseError(
    `${where}: expect must be "allow", { deny: CODE } or { limited: { after: N, every: 1s } }`,
  );
}

const show = (d: Decision) =>
  d.outcome === 'allow' ? 'allow' : `deny ${d.code} (${d.status}): ${d.message}`;

function describeExpect(e: Expectation): string {
  if (e.kind === 'allow') return 'allow';
  if (e.kind === 'deny') return `deny ${e.code}`;
  return `allow ${e.after} request(s)${e.every ? ` one every ${e.every}ms` : ''}, then deny with a 429`;
}

/** Runs one case on a fresh evaluator (its own empty limit buckets). */
export async function runCase(c: PolicyCase, ev: Evaluator): Promise<CaseResult> {
  const base = { name: c.name, file: c.file, expected: describeExpect(c.expect) };
  if (c.expect.kind !== 'limited') {
    const d = await ev.decide(c.principal, c.request, c.principal.time);
    const passed =
      c.expect.kind === 'allow' ? d.outcome === 'allow' : d.outcome === 'deny' && d.code === c.expect.code;
    return { ...base, passed, actual: show(d) };
  }
  const trace: string[] = [];
  const { after, every } = c.expect;
  for (let i = 0; i <= after; i++) {
    const d = await ev.decide(c.principal, c.request, c.principal.time + i * every);
    trace.push(`#${i + 1} ${show(d)}`);
    if (i < after && d.outcome !== 'allow') {
      return { ...base, passed: false, actual: `request #${i + 1} was refused: ${show(d)}`, trace };
    }
    if (i === after) {
      const passed = d.outcome === 'deny' && d.status === 429;
      return { ...base, passed, actual: `${after} allowed, then ${show(d)}`, trace };
    }
  }
  return { ...base, passed: false, actual: 'no request sent', trace };
}

/** Runner-style text: one line per case, and for a failure the expected and actual decision. */
export function formatResults(results: CaseResult[]): string {
  const lines: string[] = [];
  for (const r of results) {
    lines.push(`${r.passed ? 'PASS' : 'FAIL'}  ${r.file} > ${r.name}`);
    if (!r.passed) {
      lines.push(`      - expected: ${r.expected}`, `      + actual:   ${r.actual}`);
      if (r.trace && r.trace.length > 1) for (const t of r.trace.slice(-3)) lines.push(`        ${t}`);
    }
  }
  const failed = results.filter((r) => !r.passed).length;
  lines.push('', `${results.length - failed} passed, ${failed} failed, ${results.length} total`);
  return `${lines.join('\n')}\n`;
}
