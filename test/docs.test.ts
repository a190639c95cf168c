/**
 * Keeps the user documentation honest against the code:
 *  1. every relative link in README.md and docs/*.md points at an existing file (and heading anchor);
 *  2. every `sluice <command> [<subcommand>] --option` written in the docs exists in the CLI;
 *  3. every ```yaml block is a valid policy (complete files as they are, top-level fragments on a
 *     minimal base); a block whose first line says `# invalid` must be refused;
 *  4. every management route mentioned in operations.md is registered in src/, and every registered
 *     `/admin/v1` route is in its reference table with the roles its guard allows.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command } from 'commander';
import { describe, expect, it } from 'vitest';
import { parse as parseYaml, stringify as stringifyYaml } from 'yaml';
import { ConfigError, parseConfig } from '../src/config/load.js';
import { ConfigSchema } from '../src/config/schema.js';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const read = (p: string) => readFileSync(join(root, p), 'utf8');
const DOCS = [
  'README.md',
  ...readdirSync(join(root, 'docs'))
    .filter((f) => f.endsWith('.md'))
    .map((f) => `docs/${f}`),
];

interface Block {
  lang: string;
  text: string;
  line: number;
}

/** Splits markdown into fenced code blocks and the prose between them (fences removed). */
function split(md: string): { blocks: Block[]; prose: string } {
  const blocks: Block[] = [];
  const prose: string[] = [];
  const lines = md.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const open = /^(\s*)(`{3,}|~{3,})\s*([\w-]*)/.exec(lines[i]!);
    if (!open) {
      prose.push(lines[i]!);
      continue;
    }
    const fence = open[2]!;
    const body: string[] = [];
    const start = i + 1;
    for (i++; i < lines.length && !lines[i]!.trimStart().startsWith(fence); i++) body.push(lines[i]!);
    blocks.push({ lang: open[3]!.toLowerCase(), text: body.join('\n'), line: start });
    prose.push('');
  }
  return { blocks, prose: prose.join('\n') };
}

/** GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens, duplicates numbered. */
function anchorsOf(md: string): Set<string> {
  const seen = new Map<string, number>();
  const out = new Set<string>();
  for (const line of split(md).prose.split('\n')) {
    const h = /^#{1,6}\s+(.*?)\s*#*\s*$/.exec(line);
    if (!h) continue;
    const text = h[1]!.replace(/\[([^\]]*)\]\([^)]*\)/g, '$1');
    const base = text
      .toLowerCase()
      .replace(/[^\p{L}\p{N}\s_-]/gu, '')
      .replace(/\s/g, '-');
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    out.add(n === 0 ? base : `${base}-${n}`);
  }
  return out;
}

describe('docs: links', () => {
  it('every relative link in README.md and docs/*.md points at an existing file and heading', () => {
    const broken: string[] = [];
    let checked = 0;
    for (const doc of DOCS) {
      const prose = split(read(doc)).prose.replace(/`[^`\n]*`/g, '');
      for (const m of prose.matchAll(/\[[^\]]*\]\(([^)\s]+)(?:\s+"[^"]*")?\)/g)) {
        const target = m[1]!;
        if (/^[a-z][a-z0-9+.-]*:/i.test(target)) continue; // http:, https:, mailto:
        checked++;
        const [path, anchor] = target.split('#') as [string, string | undefined];
        const file = path === '' ? join(root, doc) : resolve(join(root, dirname(doc)), path);
        let exists = false;
        try {
          exists = statSync(file).isFile() || statSync(file).isDirectory();
        } catch {}
        if (!exists) {
          broken.push(`${doc}: ${target} (no such file ${relative(root, file)})`);
          continue;
        }
        if (anchor && file.endsWith('.md') && !anchorsOf(readFileSync(file, 'utf8')).has(anchor))
          broken.push(`${doc}: ${target} (no heading #${anchor} in ${relative(root, file)})`);
      }
    }
    expect(broken).toEqual([]);
    expect(checked).toBeGreaterThan(20);
  });

  it('the anchor rule matches GitHub for headings with code and punctuation', () => {
    const a = anchorsOf(
      '## `/sluice/v1/me`\n## Reserve, then settle\n## tenants, projects, keys\n## Reserve, then settle',
    );
    expect([...a]).toEqual([
      'sluicev1me',
      'reserve-then-settle',
      'tenants-projects-keys',
      'reserve-then-settle-1',
    ]);
  });
});

/** The real CLI: the register functions src/cli/index.ts wires (its COMMANDS table), applied to a fresh program. */
async function cliProgram(): Promise<Command> {
  const { COMMANDS } = await import('../src/cli/index.js');
  const program = new Command('sluice');
  expect(COMMANDS.length).toBeGreaterThanOrEqual(5);
  for (const [name, load] of COMMANDS) {
    (await load())(program);
    expect(program.commands.map((c) => c.name())).toContain(name);
  }
  return program;
}

/**
 * `sluice ...` command lines: shell lines in code blocks (`$ sluice ...`, pipes and redirections cut),
 * synopsis lines in code blocks (`sluice keys list | show ID`, each alternative a command), and
 * inline code (`` `sluice ...` ``).
 */
function commandLines(md: string): string[] {
  const { blocks, prose } = split(md);
  const out: string[] = [];
  for (const b of blocks) {
    if (!['console', 'sh', 'shell', 'bash', ''].includes(b.lang)) continue;
    let cont = '';
    for (const raw of b.text.split('\n')) {
      const line = cont + raw.trim();
      cont = line.endsWith('\\') ? `${line.slice(0, -1)} ` : '';
      if (cont) continue;
      const shell = /^\$\s+(?:[A-Z_]+=\S+\s+)*(sluice\s+[a-z].*)$/.exec(line);
      if (shell) {
        out.push(shell[1]!.split(/\s+(?:\||>|&&|;|#|&$)\s*/)[0]!);
        continue;
      }
      const synopsis = /^sluice\s+([a-z]+)\s+(.*)$/.exec(line);
      if (synopsis)
        for (const alt of synopsis[2]!.split(/\s+\|\s+/)) out.push(`sluice ${synopsis[1]} ${alt}`);
    }
  }
  for (const m of prose.matchAll(/`(sluice\s+[a-z][^`]*)`/g)) out.push(m[1]!);
  return out;
}

describe('docs: commands', () => {
  it('every `sluice <command> <subcommand> --option` in the docs exists in the CLI', async () => {
    const program = await cliProgram();
    const missing: string[] = [];
    let checked = 0;
    for (const doc of DOCS) {
      for (const line of commandLines(read(doc))) {
        const words = line.split(/\s+/).slice(1);
        const top = program.commands.find((c) => c.name() === words[0]);
        if (!top) {
          missing.push(`${doc}: "${line}": no command "${words[0]}"`);
          continue;
        }
        let cmd = top;
        let rest = words.slice(1);
        if (top.commands.length > 0 && rest[0] && !rest[0].startsWith('-') && rest[0] !== '...') {
          // `|` separates alternatives in a synopsis: `sluice keys list | show ID`.
          const sub = top.commands.find((c) => c.name() === rest[0]);
          if (!sub) {
            missing.push(`${doc}: "${line}": no subcommand "${top.name()} ${rest[0]}"`);
            continue;
          }
          cmd = sub;
          rest = rest.slice(1);
        }
        checked++;
        const longs = new Set(['--help', '--version', ...cmd.options.map((o) => o.long ?? '')]);
        for (const w of rest) {
          const opt = /^(--[a-z][\w-]*)/.exec(w.replace(/^\[/, ''))?.[1];
          if (opt && !longs.has(opt))
            missing.push(`${doc}: "${line}": "${top.name()} ${cmd === top ? '' : cmd.name()}" has no ${opt}`);
        }
      }
    }
    expect(missing).toEqual([]);
    expect(checked).toBeGreaterThan(20);
  });
});

/** Every variable resolves (a `..._URL` to a URL), so blocks may name secrets without defaults. */
const anyEnv = new Proxy({} as NodeJS.ProcessEnv, {
  get: (_t, name) =>
    typeof name !== 'string' ? undefined : name.endsWith('_URL') ? 'http://test.invalid/' : `test-${name}`,
});
const TOP_LEVEL = new Set(Object.keys(ConfigSchema.shape));
const BASE =
  'upstreams:\n  - { name: local, kind: mock }\nmodels:\n  - { match: "*", upstream: local }\ntiers:\n  default: {}\n';

function yamlBlocks(): { where: string; text: string }[] {
  const out: { where: string; text: string }[] = [];
  for (const doc of DOCS)
    for (const b of split(read(doc)).blocks)
      if (b.lang === 'yaml' || b.lang === 'yml') out.push({ where: `${doc}:${b.line}`, text: b.text });
  return out;
}

describe('docs: yaml', () => {
  it('every complete policy in the docs (and examples/sluice.yaml) passes parseConfig; `# invalid` ones fail', () => {
    const problems: string[] = [];
    let complete = 0;
    let fragments = 0;
    const blocks = [...yamlBlocks(), { where: 'examples/sluice.yaml', text: read('examples/sluice.yaml') }];
    for (const { where, text } of blocks) {
      const invalid = /^#\s*invalid\b/.test(text.trimStart());
      let data: unknown;
      try {
        data = parseYaml(text);
      } catch (err) {
        if (!invalid) problems.push(`${where}: not YAML: ${(err as Error).message.split('\n')[0]}`);
        continue;
      }
      const isMap = data !== null && typeof data === 'object' && !Array.isArray(data);
      const keys = isMap ? Object.keys(data as object) : [];
      let source: string;
      if (keys.includes('upstreams')) {
        complete++;
        source = text;
      } else if (keys.length > 0 && keys.every((k) => TOP_LEVEL.has(k))) {
        // A fragment of top-level sections: checked on a minimal base (its own sections win).
        fragments++;
        source = stringifyYaml({ ...(parseYaml(BASE) as object), ...(data as object) });
      } else {
        if (invalid) problems.push(`${where}: marked invalid but is not a policy or fragment`);
        continue;
      }
      try {
        parseConfig(source, where, anyEnv);
        if (invalid) problems.push(`${where}: marked "# invalid" but parseConfig accepted it`);
      } catch (err) {
        if (!(err instanceof ConfigError)) throw err;
        if (!invalid) problems.push(err.message);
      }
    }
    expect(problems).toEqual([]);
    expect(complete).toBeGreaterThan(8);
    expect(fragments).toBeGreaterThan(3);
  });

  it('the check can fail: a limit with two cost kinds is refused', () => {
    expect(() =>
      parseConfig(
        `${BASE.replace('default: {}', 'default:\n    limits: [{ id: x, requests: 1, tokens: 1, window: 1m }]')}`,
      ),
    ).toThrow(/exactly one of/);
  });
});

/** Management routes registered anywhere in src/, with the roles their guard allows. */
function registeredRoutes(): { method: string; path: string; roles: string[] }[] {
  const roles: Record<string, string[]> = {
    read: ['admin', 'operator', 'auditor'],
    keys: ['admin', 'operator'],
    admin: ['admin'],
  };
  const out: { method: string; path: string; roles: string[] }[] = [];
  const walk = (dir: string) => {
    for (const name of readdirSync(join(root, dir))) {
      const p = `${dir}/${name}`;
      if (statSync(join(root, p)).isDirectory()) walk(p);
      else if (p.endsWith('.ts')) {
        const text = read(p);
        for (const m of text.matchAll(
          /\bapp\.(get|post|patch|put|delete)\(\s*'((?:\/admin\/v1|\/metrics)[^']*)'\s*,\s*\{\s*preHandler:\s*guard\('(\w+)'\)/g,
        ))
          out.push({ method: m[1]!.toUpperCase(), path: m[2]!, roles: roles[m[3]!]! });
      }
    }
  };
  walk('src');
  return out;
}

const routeRegex = (path: string) => new RegExp(`^${path.replace(/:[A-Za-z]+/g, '[^/]+')}$`);

describe('docs: management API', () => {
  const ops = read('docs/operations.md');
  const routes = registeredRoutes();

  it('finds the registered routes', () => {
    expect(routes.length).toBeGreaterThanOrEqual(25);
    expect(routes).toContainEqual({ method: 'POST', path: '/admin/v1/keys', roles: ['admin', 'operator'] });
  });

  it('every /admin/v1 route mentioned in operations.md is registered', () => {
    const unknown: string[] = [];
    for (const m of ops.matchAll(
      /(?:\b(GET|POST|PATCH|PUT|DELETE)\s+)?(\/admin\/v1\/[A-Za-z0-9/:._-]*[A-Za-z0-9_-])/g,
    )) {
      const [, method, path] = m;
      const hit = routes.some((r) => (!method || r.method === method) && routeRegex(r.path).test(path!));
      if (!hit) unknown.push(`${method ?? ''} ${path}`.trim());
    }
    expect(unknown).toEqual([]);
  });

  it('every registered route is in the reference table, with the roles its guard allows', () => {
    const rows = new Map<string, string>();
    for (const line of ops.split('\n')) {
      const m = /^\|\s*`(GET|POST|PATCH|PUT|DELETE) ([^`]+)`\s*\|\s*([^|]+)\|/.exec(line);
      if (m) rows.set(`${m[1]} ${m[2]}`, m[3]!);
    }
    const wrong: string[] = [];
    for (const r of routes) {
      const cell = rows.get(`${r.method} ${r.path}`);
      if (cell === undefined) {
        wrong.push(`${r.method} ${r.path}: not in the table`);
        continue;
      }
      const said = ['admin', 'operator', 'auditor'].filter((role) => new RegExp(`\\b${role}\\b`).test(cell));
      if (said.join(',') !== r.roles.join(','))
        wrong.push(`${r.method} ${r.path}: table says ${said.join(',')}, code allows ${r.roles.join(',')}`);
    }
    expect(wrong).toEqual([]);
  });
});
