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
  // Warm the JIT on a separate engine, then measure a fresh one. The engine's batches are deferred
  // (as in the server); the batch runs every 64 requests here and is timed apart from the request.
  for (const pass of ['warm', 'measure']) {
    let pending = null;
    const engine = new AbuseEngine({ clock, defer: (run) => (pending = run) });
    let actions = 0;
    if (pass === 'measure') engine.opts.onAction = () => actions++;
    let hot = 0n;
    let batch = 0n;
    const c0 = process.cpuUsage();
    for (const { t, o } of obs) {
      now = t;
      const h0 = process.hrtime.bigint();
      engine.check({ keyId: o.keyId, tenantId: o.tenantId, ip: o.ip, action: o.action });
      engine.observe(o);
      const h1 = process.hrtime.bigint();
      hot += h1 - h0;
      if (engine.queued >= 64) {
        pending();
        batch += process.hrtime.bigint() - h1;
      }
    }
    if (pending && engine.queued > 0) pending();
    const cpu = process.cpuUsage(c0);
    if (pass === 'measure')
      rows.push({
        family,
        requests: obs.length,
        hotPathUs: +(Number(hot) / 1000 / obs.length).toFixed(2),
        batchUsPerRequest: +(Number(batch) / 1000 / obs.length).toFixed(2),
        processCpuUsPerRequest: +((cpu.user + cpu.system) / obs.length).toFixed(2),
        actions,
      });
  }
}
console.table(rows);
const n = rows.reduce((a, r) => a + r.requests, 0);
const mean = (f) => (rows.reduce((a, r) => a + r[f] * r.requests, 0) / n).toFixed(2);
console.log(
  `seed ${seed}: on the request's turn (check + observe) ${mean('hotPathUs')} µs; batched detector work ${mean('batchUsPerRequest')} µs per request; process CPU ${mean('processCpuUsPerRequest')} µs per request`,
);
