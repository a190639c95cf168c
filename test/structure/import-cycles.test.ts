/**
 * The module graph of src/ has no cycles and no cross-plane imports. A tiny import-graph walk (madge
 * is not a dependency): every relative `import`/`export ... from` (and `import('...')`) of every .ts
 * file under src/, then Tarjan's strongly connected components; a component of two or more files,
 * or a file importing itself, is a cycle.
 *
 * Runtime imports: no cycle at all. Type-only imports (`import type`, erased by the compiler) are
 * checked too, with ONE documented exception: inside src/gateway/pipeline/, `GatewayDeps.stages`
 * takes stage lists, a `Stage` takes a `RequestContext`, and a `RequestContext` carries its
 * `GatewayDeps` — a recursive type spread over deps.ts, stages.ts, runner.ts and context.ts. A type
 * cycle that reaches any file outside that folder fails.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

const root = resolve(import.meta.dirname, '../../src');

function files(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? files(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : [],
  );
}

const IMPORT = /(?:^|\n)\s*(?:import|export)\s+(type\s+)?[^;]*?\sfrom\s+['"](\.{1,2}\/[^'"]+)['"]/g;
const DYNAMIC = /import\(\s*['"](\.{1,2}\/[^'"]+)['"]\s*\)/g;

/** src-relative file → src-relative files it imports (type-only imports only when `types`). */
function importGraph(types: boolean): Map<string, string[]> {
  const graph = new Map<string, string[]>();
  for (const f of files(root)) {
    const text = readFileSync(f, 'utf8');
    const deps = new Set<string>();
    const add = (spec: string) => deps.add(relative(root, resolve(dirname(f), spec.replace(/\.js$/, '.ts'))));
    for (const m of text.matchAll(IMPORT)) if (types || !m[1]) add(m[2]!);
    for (const m of text.matchAll(DYNAMIC)) add(m[1]!);
    graph.set(relative(root, f), [...deps]);
  }
  return graph;
}

/** Strongly connected components with more than one file, or a file importing itself. */
function cycles(graph: Map<string, string[]>): string[][] {
  let index = 0;
  const idx = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const on = new Set<string>();
  const out: string[][] = [];
  const visit = (v: string) => {
    idx.set(v, index);
    low.set(v, index++);
    stack.push(v);
    on.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!graph.has(w)) continue;
      if (!idx.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (on.has(w)) low.set(v, Math.min(low.get(v)!, idx.get(w)!));
    }
    if (low.get(v) === idx.get(v)) {
      const scc: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        on.delete(w);
        scc.push(w);
      } while (w !== v);
      if (scc.length > 1 || (graph.get(v) ?? []).includes(v)) out.push(scc.sort());
    }
  };
  for (const v of graph.keys()) if (!idx.has(v)) visit(v);
  return out;
}

describe('module structure of src/', () => {
  const graph = importGraph(true);

  it('the walk finds the graph (sanity: known edges are seen)', () => {
    expect(graph.size).toBeGreaterThan(50);
    expect(graph.get('gateway/app.ts')).toContain('gateway/pipeline/stages.ts');
    // The checker itself finds a cycle when there is one.
    expect(
      cycles(
        new Map([
          ['a', ['b']],
          ['b', ['c']],
          ['c', ['a']],
          ['d', ['a']],
        ]),
      ),
    ).toEqual([['a', 'b', 'c']]);
  });

  it('has no import cycles at run time', () => {
    expect(cycles(importGraph(false))).toEqual([]);
  });

  it('has no type-import cycles except the pipeline recursive GatewayDeps / Stage / RequestContext type', () => {
    const outside = cycles(graph).filter((c) => c.some((f) => !f.startsWith('gateway/pipeline/')));
    expect(outside).toEqual([]);
  });

  it('observability and core import neither the gateway nor the admin plane', () => {
    const bad = [...graph]
      .filter(([f]) => f.startsWith('observability/') || f.startsWith('core/'))
      .flatMap(([f, deps]) =>
        deps.filter((d) => d.startsWith('gateway/') || d.startsWith('admin/')).map((d) => `${f} -> ${d}`),
      );
    expect(bad).toEqual([]);
  });
});
