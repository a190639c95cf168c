/**
 * Loading `sluice.yaml`: YAML parse, `${ENV}` interpolation, zod validation, and errors that name
 * the file, line and path of the mistake.
 */
import { readFileSync } from 'node:fs';
import { isMap, isScalar, isSeq, LineCounter, parseDocument, type Node as YamlNode } from 'yaml';
import { toJSONSchema, type z } from 'zod';
import { checkAccessPolicy } from '../core/authz/policy.js';
import { ConfigSchema, DEFAULT_CONFIG, type SluiceConfig } from './schema.js';

export class ConfigError extends Error {
  constructor(
    message: string,
    readonly issues: { path: string; line?: number; message: string }[] = [],
  ) {
    super(message);
    this.name = 'ConfigError';
  }
}

/** `${NAME}` and `${NAME:-default}`; `$${` escapes a literal `${`. A missing variable without default is an error. */
export function interpolate(value: string, env: NodeJS.ProcessEnv, missing: string[]): string {
  return value.replace(
    /\$?\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g,
    (whole, name: string, def?: string) => {
      if (whole.startsWith('$$')) return whole.slice(1);
      const v = env[name];
      if (v !== undefined && v !== '') return v;
      if (def !== undefined) return def;
      missing.push(name);
      return '';
    },
  );
}

function interpolateTree(
  node: unknown,
  env: NodeJS.ProcessEnv,
  path: string[],
  missing: { path: string; name: string }[],
): unknown {
  if (typeof node === 'string') {
    const names: string[] = [];
    const out = interpolate(node, env, names);
    for (const name of names) missing.push({ path: path.join('.'), name });
    return out;
  }
  if (Array.isArray(node)) return node.map((v, i) => interpolateTree(v, env, [...path, String(i)], missing));
  if (node && typeof node === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(node)) out[k] = interpolateTree(v, env, [...path, k], missing);
    return out;
  }
  return node;
}

function lineOf(
  doc: ReturnType<typeof parseDocument>,
  lc: LineCounter,
  path: (string | number)[],
): number | undefined {
  // Walk as deep as the path exists; an issue on a missing key points at its parent.
  for (let n = path.length; n >= 0; n--) {
    const node = doc.getIn(path.slice(0, n), true) as YamlNode | undefined;
    if (node && (isScalar(node) || isMap(node) || isSeq(node)) && node.range)
      return lc.linePos(node.range[0]).line;
  }
  return undefined;
}

export function formatIssues(
  file: string,
  issues: { path: string; line?: number; message: string }[],
): string {
  return issues
    .map((i) => `${file}${i.line ? `:${i.line}` : ''}: ${i.path || '(root)'}: ${i.message}`)
    .join('\n');
}

/** Parses and validates YAML text. Throws ConfigError naming line and path of each mistake. */
export function parseConfig(
  text: string,
  file = 'sluice.yaml',
  env: NodeJS.ProcessEnv = process.env,
): SluiceConfig {
  const lc = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lc, prettyErrors: false });
  if (doc.errors.length > 0) {
    const issues = doc.errors.map((e) => ({
      path: '',
      line: lc.linePos(e.pos[0]).line,
      message: e.message.split('\n')[0]!,
    }));
    throw new ConfigError(formatIssues(file, issues), issues);
  }
  const raw = doc.toJS() ?? {};
  const missing: { path: string; name: string }[] = [];
  const data = interpolateTree(raw, env, [], missing);
  if (missing.length > 0) {
    const issues = missing.map((m) => ({
      path: m.path,
      line: lineOf(
        doc,
        lc,
        m.path.split('.').map((p) => (/^\d+$/.test(p) ? Number(p) : p)),
      ),
      message: `environment variable ${m.name} is not set (use \${${m.name}:-default} for a default)`,
    }));
    throw new ConfigError(formatIssues(file, issues), issues);
  }
  return validate(data, (path) => lineOf(doc, lc, path), file);
}

function validate(
  data: unknown,
  line: (path: (string | number)[]) => number | undefined,
  file: string,
): SluiceConfig {
  const result = ConfigSchema.safeParse(data);
  if (!result.success) {
    const issues = result.error.issues.map((i: z.core.$ZodIssue) => {
      const path = i.path.map((p) => (typeof p === 'symbol' ? String(p) : p));
      return { path: path.join('.'), line: line(path), message: i.message };
    });
    throw new ConfigError(formatIssues(file, issues), issues);
  }
  const cfg = result.data;
  const semantic = checkSemantics(cfg);
  if (semantic.length === 0) {
    // The compiled access policy's own checks (CIDRs, scopes, time zones), named by path.
    for (const i of checkAccessPolicy(cfg)) {
      semantic.push({
        path: i.path.split('.').map((x) => (/^\d+$/.test(x) ? Number(x) : x)),
        message: i.message,
      });
    }
  }
  if (semantic.length > 0) {
    const issues = semantic.map((s) => ({ path: s.path.join('.'), line: line(s.path), message: s.message }));
    throw new ConfigError(formatIssues(file, issues), issues);
  }
  return cfg;
}

/** Cross-field rules zod cannot express locally: references between sections. */
function checkSemantics(cfg: SluiceConfig): { path: (string | number)[]; message: string }[] {
  const out: { path: (string | number)[]; message: string }[] = [];
  const names = new Set<string>();
  cfg.upstreams.forEach((u, i) => {
    if (names.has(u.name))
      out.push({ path: ['upstreams', i, 'name'], message: `duplicate upstream name "${u.name}"` });
    names.add(u.name);
  });
  cfg.models.forEach((m, i) => {
    if (!names.has(m.upstream))
      out.push({ path: ['models', i, 'upstream'], message: `unknown upstream "${m.upstream}"` });
    m.fallbacks?.forEach((f, j) => {
      if (!names.has(f))
        out.push({ path: ['models', i, 'fallbacks', j], message: `unknown upstream "${f}"` });
    });
  });
  checkRouting(cfg, out);
  // screening.external names an OpenAI-compatible upstream, wherever it is set.
  const checkExternal = (name: string | undefined, path: (string | number)[]) => {
    if (name === undefined) return;
    const u = cfg.upstreams.find((x) => x.name === name);
    if (!u) out.push({ path, message: `unknown upstream "${name}"` });
    else if (u.kind !== 'openai')
      out.push({
        path,
        message: `upstream "${name}" is of kind ${u.kind}; the external classifier needs kind openai`,
      });
  };
  checkExternal(cfg.screening.external.upstream, ['screening', 'external', 'upstream']);
  for (const [section, entries] of [
    ['tiers', cfg.tiers],
    ['tenants', cfg.tenants],
    ['projects', cfg.projects],
    ['keys', cfg.keys],
  ] as const)
    for (const [name, o] of Object.entries(entries ?? {}))
      checkExternal(o?.screening?.external?.upstream, [section, name, 'screening', 'external', 'upstream']);
  const checkRules = (
    rules: { countries?: unknown; reputation?: string[] } | undefined,
    path: (string | number)[],
  ) => {
    if (rules?.countries && !cfg.geo) {
      out.push({
        path: [...path, 'countries'],
        message: 'country rules need a geo database (geo: { database: path.mmdb })',
      });
    }
    for (const r of rules?.reputation ?? []) {
      if (!cfg.reputation[r])
        out.push({ path: [...path, 'reputation'], message: `unknown reputation list "${r}"` });
    }
  };
  const checkLimits = (limits: { id: string }[] | undefined, path: (string | number)[]) => {
    const ids = new Set<string>();
    limits?.forEach((l, i) => {
      if (ids.has(l.id)) out.push({ path: [...path, i, 'id'], message: `duplicate limit id "${l.id}"` });
      ids.add(l.id);
    });
  };
  for (const [name, tier] of Object.entries(cfg.tiers)) {
    checkRules(tier.rules, ['tiers', name, 'rules']);
    checkLimits(tier.limits, ['tiers', name, 'limits']);
  }
  for (const section of ['tenants', 'projects', 'keys'] as const) {
    for (const [name, o] of Object.entries(cfg[section])) {
      checkRules(o.rules, [section, name, 'rules']);
      checkLimits(o.limits, [section, name, 'limits']);
    }
  }
  const pr = cfg.promotion;
  if (pr) {
    const ladder = new Set(pr.ladder);
    pr.ladder.forEach((t, i) => {
      if (!cfg.tiers[t]) out.push({ path: ['promotion', 'ladder', i], message: `unknown tier "${t}"` });
    });
    if (ladder.size !== pr.ladder.length)
      out.push({ path: ['promotion', 'ladder'], message: 'a tier appears twice in the ladder' });
    if (pr.maxTier !== undefined && !ladder.has(pr.maxTier))
      out.push({ path: ['promotion', 'maxTier'], message: `"${pr.maxTier}" is not on the ladder` });
    for (const t of Object.keys(pr.rules)) {
      if (!ladder.has(t) || t === pr.ladder[0])
        out.push({ path: ['promotion', 'rules', t], message: `"${t}" is not a rung above the first` });
    }
  }
  return out;
}

export function loadConfigFile(file: string, env: NodeJS.ProcessEnv = process.env): SluiceConfig {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError(`${file}: cannot read: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
  return parseConfig(text, file, env);
}

/** The built-in default used when no config file exists. */
export function defaultConfig(): SluiceConfig {
  return ConfigSchema.parse(DEFAULT_CONFIG);
}

export function configJsonSchema(): unknown {
  // `io: 'input'` describes what the user writes (defaults optional), which is what an editor needs.
  return toJSONSchema(ConfigSchema, { io: 'input', unrepresentable: 'any' });
}

/** Confidential routing: TLS only over https, pins that name what exists and that some upstream can meet. */
function checkRouting(cfg: SluiceConfig, out: { path: (string | number)[]; message: string }[]): void {
  cfg.upstreams.forEach((u, i) => {
    if (u.kind !== 'mock' && u.tls && !u.baseUrl.startsWith('https:'))
      out.push({
        path: ['upstreams', i, 'tls'],
        message: `tls needs an https baseUrl (upstream "${u.name}")`,
      });
  });
  (cfg.routing?.pins ?? []).forEach((p, i) => {
    const path = ['routing', 'pins', i];
    if (p.tier !== undefined && !cfg.tiers[p.tier])
      out.push({ path: [...path, 'tier'], message: `unknown tier "${p.tier}"` });
    if (p.task !== undefined && !cfg.tasks[p.task])
      out.push({ path: [...path, 'task'], message: `unknown task "${p.task}"` });
    const want = Object.entries(p.labels);
    if (!cfg.upstreams.some((u) => want.every(([k, v]) => u.labels?.[k] === v))) {
      out.push({
        path: [...path, 'labels'],
        message: `no upstream carries ${want.map(([k, v]) => `${k}=${v}`).join(', ')}: every matching request would be refused`,
      });
    }
  });
}
