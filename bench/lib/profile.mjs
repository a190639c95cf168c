// Summarise a V8 .cpuprofile (from `node --cpu-prof`): self time of each sample is charged to the
// nearest frame (itself or an ancestor) that has a source file, grouped by owner: a Sluice source
// file (dist/<dir>/<file>), a package under node_modules, a Node internal module, or the VM
// itself (GC, program). Idle time is left out of the shares.
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

/** The pipeline stage (docs/ARCHITECTURE.md) a file or package belongs to. */
export function pipelineStage(name) {
  const rules = [
    [/^sluice (gateway\/auth|gateway\/tokens|core\/keys|auth\/)/, 'authenticate'],
    [/^sluice (core\/authz|wiring\/policy|gateway\/request-checks)/, 'context checks + authorize'],
    [/^sluice core\/screening/, 'screen'],
    [/^sluice (core\/limits|stores\/.*limit)/, 'limit'],
    [/^sluice providers\//, 'forward + upstream parsing (providers)'],
    [/^sluice (core\/audit|stores\/(sql\/)?audit)/, 'record: audit'],
    [/^sluice (stores\/(sql\/)?usage|stores\/usage)/, 'record: usage ledger'],
    [/^sluice stores\/sql\/(sqlite-batch|db)/, 'record: SQLite batch writes (audit + usage)'],
    [/^sluice (gateway\/metrics|.*metrics)/, 'record: metrics'],
    [/^sluice gateway\//, 'pipeline glue (gateway)'],
    [/^sluice /, 'other Sluice code'],
    [
      /^(fastify|avvio|find-my-way|light-my-request|fast-json-stringify|@fastify\/.*|fast-querystring|secure-json-parse|toad-cache|abstract-logging)$/,
      'Fastify',
    ],
    [/^undici$/, 'undici (upstream client)'],
    [/^(kysely|better-sqlite3|pg)$/, 'SQL (outside a Sluice frame: async flushes)'],
    [/^(pino|sonic-boom|thread-stream|pino-std-serializers)$/, 'logging'],
    [/^prom-client$/, 'metrics'],
    [/^V8 garbage collector$/, 'GC'],
    [/^node /, 'Node HTTP server, sockets, streams'],
  ];
  for (const [re, stage] of rules) if (re.test(name)) return stage;
  return 'other';
}

/**
 * `{ stages, owners: [{ stage, share }], top: [{ fn, owner, share }], samples }`, shares of busy
 * time: `stages` charges each sample to the innermost Sluice file on its stack, `owners` to the
 * file or package of the function itself (self time).
 * `fromEndMs: [a, b]` keeps only samples taken between b and a milliseconds before the profile
 * ended (the process exited), i.e. the measured window.
 */
export function summariseProfile(file, { topN = 20, fromEndMs } = {}) {
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
  // The stage view: each sample goes to the innermost Sluice source file on its stack (so the
  // library work a Sluice module causes, e.g. SQL building for the audit store, counts as that
  // module's), or, with no Sluice frame on the stack, to its own owner (HTTP server, GC, ...).
  const stageOf = new Map();
  function resolveStage(id) {
    if (stageOf.has(id)) return stageOf.get(id);
    const n = byId.get(id);
    const own = owner(n.callFrame.url);
    let st;
    if (own?.startsWith('sluice ')) st = own;
    else if (parent.has(id)) st = resolveStage(parent.get(id));
    stageOf.set(id, st);
    return st;
  }
  const byStage = new Map();
  const self = new Map();
  const selfFn = new Map();
  let busy = 0;
  const deltas = prof.timeDeltas ?? [];
  // Sample timestamps (µs, same clock as startTime/endTime).
  const stamps = new Array(prof.samples.length);
  let ts = prof.startTime;
  for (let i = 0; i < prof.samples.length; i++) {
    ts += deltas[i] ?? 0;
    stamps[i] = ts;
  }
  const lo = fromEndMs ? prof.endTime - fromEndMs[1] * 1000 : Number.NEGATIVE_INFINITY;
  const hi = fromEndMs ? prof.endTime - fromEndMs[0] * 1000 : Number.POSITIVE_INFINITY;
  let kept = 0;
  prof.samples.forEach((id, i) => {
    if (stamps[i] < lo || stamps[i] > hi) return;
    kept++;
    const dt = deltas[i + 1] ?? deltas[i] ?? 0;
    const o = resolveOwner(id);
    if (o === '(idle)') return;
    busy += dt;
    self.set(o, (self.get(o) ?? 0) + dt);
    const st = resolveStage(id) ?? o;
    byStage.set(st, (byStage.get(st) ?? 0) + dt);
    const n = byId.get(id);
    const key = `${n.callFrame.functionName || '(anonymous)'}\t${o}`;
    selfFn.set(key, (selfFn.get(key) ?? 0) + dt);
  });
  const shares = (m) =>
    [...m.entries()]
      .map(([k, t]) => ({ stage: k, share: busy > 0 ? t / busy : 0 }))
      .sort((a, b) => b.share - a.share);
  const stages = shares(byStage);
  const byPipeline = new Map();
  for (const [k, t] of byStage) {
    const p = pipelineStage(k);
    byPipeline.set(p, (byPipeline.get(p) ?? 0) + t);
  }
  const pipeline = shares(byPipeline);
  const owners = shares(self);
  const top = [...selfFn.entries()]
    .map(([k, t]) => {
      const [fn, o] = k.split('\t');
      return { fn, owner: o, share: busy > 0 ? t / busy : 0 };
    })
    .sort((a, b) => b.share - a.share)
    .slice(0, topN);
  return { pipeline, stages, owners, top, busyMs: busy / 1000, samples: kept };
}
