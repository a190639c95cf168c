// Measures what abuse detection adds to one request on the hot path: AbuseEngine.check (the
// `quarantine` stage) + AbuseEngine.observe (the `observe-abuse` stage), CPU time per request,
// over the requests of generated scenarios (examples/scenarios), replayed on their own clock.
// Run after `node scripts/build.mjs`:  node test/abuse/hot-path-cost.mjs [SEED] [FAMILY...]

import { AbuseEngine } from '../../dist/abuse/engine.js';
import { lastUserText } from '../../dist/providers/prompt-text.js';
import { FAMILIES, generate } from '../../examples/scenarios/generate.mjs';

const seed = Number(process.argv[2] ?? 31);
const families = process.argv.length > 3 ? process.argv.slice(3) : FAMILIES;
const rows = [];
for (const family of families) {
  const { text } = generate(family, seed, { duration: 900 });
  const keyTenant = new Map();
  const obs = [];
  let i = 0;
  for (const line of text.split('\n')) {
    if (!line) continue;
    const l = JSON.parse(line);
    if (l.type === 'key') keyTenant.set(l.name, l.tenant);
    if (l.type !== 'request' || !l.key) continue;
    const path = l.path;
    const endpoint = path.includes('images')
      ? 'images'
      : path.includes('messages')
        ? 'messages'
        : path.includes('embeddings')
          ? 'embeddings'
          : 'chat';
    const body = l.body ?? {};
    const prompt = endpoint === 'images' ? (body.prompt ?? '') : lastUserText(endpoint, body);
    const headers = l.headers ?? {};
    obs.push({
      t: l.t * 1000,
      o: {
        requestId: `r${i++}`,
        keyId: l.key,
        tenantId: keyTenant.get(l.key),
        ip: l.ip,
        userAgent: headers['user-agent'] ?? null,
        headerNames: ['host', 'content-type', ...Object.keys(headers)].filter((n) => n !== 'host'),
        endUser: headers['x-sluice-end-user'] ?? body.user ?? null,
        action:
          endpoint === 'images'
            ? 'images.generate'
            : endpoint === 'embeddings'
              ? 'embeddings.create'
              : 'chat.create',
        endpoint,
        model: body.model ?? null,
        prompt: prompt.length > 2000 ? prompt.slice(0, 2000) : prompt,
        inputTokens: 50,
        outputTokens: l.upstream?.outputTokens ?? 100,
        status: 200,
      },
    });
  }
  let now = 0;
  const clock = { now: () => now };
  // CPU time (not wall time: the machine is shared) of two passes over the same requests, after a
  // warm-up: `hot` runs only what happens on the request's turn (check + observe; the queued batch
  // is dropped unrun), `full` also runs every batch. The difference is the batched detector work.
  const run = (mode) => {
    let pending = null;
    const engine = new AbuseEngine({ clock, defer: (r) => (pending = r) });
    let actions = 0;
    engine.opts.onAction = () => actions++;
    const c0 = process.cpuUsage();
    for (const { t, o } of obs) {
      now = t;
      engine.check({ keyId: o.keyId, tenantId: o.tenantId, ip: o.ip, action: o.action });
      engine.observe(o);
      if (engine.queued >= 64) {
        if (mode === 'full') pending();
        else {
          engine.qLen = 0; // dropped unrun
          engine.scheduled = false;
        }
      }
    }
    if (mode === 'full' && engine.queued > 0) pending();
    const c = process.cpuUsage(c0);
    return { us: (c.user + c.system) / obs.length, actions };
  };
  run('hot');
  run('full');
  let hot = Number.POSITIVE_INFINITY;
  let full = Number.POSITIVE_INFINITY;
  let actions = 0;
  for (let k = 0; k < 3; k++) {
    hot = Math.min(hot, run('hot').us);
    const f = run('full');
    full = Math.min(full, f.us);
    actions = f.actions;
  }
  rows.push({
    family,
    requests: obs.length,
    hotPathUs: +hot.toFixed(2),
    batchUsPerRequest: +(full - hot).toFixed(2),
    actions,
  });
}
console.table(rows);
const n = rows.reduce((a, r) => a + r.requests, 0);
const mean = (f) => (rows.reduce((a, r) => a + r[f] * r.requests, 0) / n).toFixed(2);
console.log(
  `seed ${seed}: CPU on the request's turn (check + observe) ${mean('hotPathUs')} µs per request; batched detector work ${mean('batchUsPerRequest')} µs per request (best of 3)`,
);
