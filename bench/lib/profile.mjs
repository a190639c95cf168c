// Summarise a V8 .cpuprofile (from `node --cpu-prof`) by stage: self time of each sample is
// charged to the nearest frame (itself or an ancestor) that has a source file, then grouped by
// owner: a Sluice source file (dist/<dir>/<file>), a package under node_modules, a Node internal
// module, or the VM itself (GC, program). Idle time is left out of the shares.
import { readFileSync } from 'node:fs';

function owner(url) {
  if (!url) return undefined;
  const u = url.replace(/^file:\/\//, '');
  const dist = /\/dist\/(.+?)\.js$/.exec(u);
  if (dist && !u.includes('/node_modules/')) return `sluice ${dist[1]}`;
  const nm = u.lastIndexOf('/node_modules/');
  if (nm >= 0) {
    const rest = u.slice(nm + '/node_modules/'.length).split('/');
    return rest[0].startsWith('@') ? `${rest[0]}/${rest[1]}` : rest[0];
  }
  if (u.startsWith('node:')) {
    const m = /^node:(?:internal\/)?(?:deps\/)?([^/]+)/.exec(u);
    return `node ${m ? m[1] : u}`;
  }
  return u.split('/').slice(-2).join('/');
}

/** `{ stages: [{ stage, share }], top: [{ fn, owner, share }], samples }`, shares of busy time. */
export function summariseProfile(file, { topN = 20 } = {}) {
  const prof = JSON.parse(readFileSync(file, 'utf8'));
  const byId = new Map();
  const parent = new Map();
  for (const n of prof.nodes) {
    byId.set(n.id, n);
    for (const c of n.children ?? []) parent.set(c, n.id);
  }
  const ownerOf = new Map();
  function resolveOwner(id) {
    if (ownerOf.has(id)) return ownerOf.get(id);
    const n = byId.get(id);
    const fn = n.callFrame.functionName;
    let o;
    if (fn === '(garbage collector)') o = 'V8 garbage collector';
    else if (fn === '(idle)') o = '(idle)';
    else if (fn === '(program)') o = 'V8 (program)';
    else o = owner(n.callFrame.url) ?? (parent.has(id) ? resolveOwner(parent.get(id)) : 'V8 (native)');
    ownerOf.set(id, o);
    return o;
  }
  const self = new Map();
  const selfFn = new Map();
  let busy = 0;
  const deltas = prof.timeDeltas ?? [];
  prof.samples.forEach((id, i) => {
    const dt = deltas[i + 1] ?? deltas[i] ?? 0;
    const o = resolveOwner(id);
    if (o === '(idle)') return;
    busy += dt;
    self.set(o, (self.get(o) ?? 0) + dt);
    const n = byId.get(id);
    const key = `${n.callFrame.functionName || '(anonymous)'}\t${o}`;
    selfFn.set(key, (selfFn.get(key) ?? 0) + dt);
  });
  const stages = [...self.entries()]
    .map(([stage, t]) => ({ stage, share: busy > 0 ? t / busy : 0 }))
    .sort((a, b) => b.share - a.share);
  const top = [...selfFn.entries()]
    .map(([k, t]) => {
      const [fn, o] = k.split('\t');
      return { fn, owner: o, share: busy > 0 ? t / busy : 0 };
    })
    .sort((a, b) => b.share - a.share)
    .slice(0, topN);
  return { stages, top, busyMs: busy / 1000, samples: prof.samples.length };
}
