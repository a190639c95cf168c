// Before/after in one process: another checkout's screening code against this one's, on the same
// 4 kB prompt as bench/screening.mjs, interleaved batch by batch so both see the same machine
// load; CPU time per call (process.cpuUsage), min and median over the batches.
//   mkdir -p /tmp/base && git archive main src | tar -x -C /tmp/base && ln -s "$PWD/node_modules" /tmp/base/
//   npx tsx bench/screening-compare.mjs /tmp/base [ROUNDS]
const base = `${process.argv[2] ?? '/tmp/base'}/src/core/screening/`;
const cur = new URL('../src/core/screening/', import.meta.url).pathname;
async function load(dir) {
  return {
    model: (await import(dir + 'injection-model.ts')).shippedInjectionModel(),
    normalise: (await import(dir + 'normalise.ts')).normalise,
    scoreInjection: (await import(dir + 'prompt-injection.ts')).scoreInjection,
    detectSecrets: (await import(dir + 'secrets.ts')).detectSecrets,
    detectPii: (await import(dir + 'pii.ts')).detectPii,
    screenRequest: (await import(dir + 'request.ts')).screenRequest,
    DEFAULT: (await import(dir + 'policy.ts')).DEFAULT_SCREENING,
  };
}
const B = await load(base);
const C = await load(cur);
const parts = [
  'Please review the following deployment notes and summarise the risks for the team.',
  'The service reads its configuration from environment variables; the database URL and the cache host are set per region.',
  '```python\ndef retry(fn, attempts=3):\n    for i in range(attempts):\n        try:\n            return fn()\n        except TimeoutError:\n            continue\n```',
  'Contact the on-call engineer at oncall@example.com if the error rate goes above 2% for five minutes.',
  'Les journaux montrent des délais de 250 ms au 99e centile; nous devons vérifier le pool de connexions.',
  'Rollout happens in three waves: canary (5%), half (50%), and everyone, with a pause of 30 minutes between waves.',
  'The old token ghp_R8aZk2Lq9Xw4Tn7Vb1Mc5Hd3Jf6Gs0Py2Ue8 was revoked yesterday and must not be reused.',
];
let prompt = '';
for (let i = 0; prompt.length < 4096; i++) prompt += `${parts[i % parts.length]}\n\n`;
prompt = prompt.slice(0, 4096);
const body = {
  model: 'm',
  messages: [
    { role: 'system', content: 'You are a careful reviewer.' },
    { role: 'user', content: prompt },
  ],
};
const cases = (X) => ({
  normalise: () => X.normalise(prompt),
  injection: () => X.scoreInjection(X.model, prompt),
  secrets: () => X.detectSecrets(prompt),
  pii: () => X.detectPii(prompt),
  all: () => X.screenRequest('chat', body, X.DEFAULT),
});
const cb = cases(B),
  cc = cases(C);
const BATCH = 50,
  ROUNDS = Number(process.argv[3] ?? 40);
const res = {};
for (const k of Object.keys(cb)) res[k] = { b: [], c: [] };
for (const k of Object.keys(cb))
  for (let i = 0; i < 200; i++) {
    cb[k]();
    cc[k]();
  }
for (let r = 0; r < ROUNDS; r++)
  for (const k of Object.keys(cb))
    for (const [fn, arr] of [
      [cb[k], res[k].b],
      [cc[k], res[k].c],
    ]) {
      const c0 = process.cpuUsage();
      for (let i = 0; i < BATCH; i++) fn();
      const c = process.cpuUsage(c0);
      arr.push((c.user + c.system) / BATCH);
    }
const q = (a, f) => [...a].sort((x, y) => x - y)[Math.floor(a.length * f)];
console.log(
  `CPU µs per call, ${ROUNDS} interleaved batches of ${BATCH}: min / median (base → this checkout)`,
);
for (const [k, v] of Object.entries(res))
  console.log(
    `${k.padEnd(10)} min ${q(v.b, 0).toFixed(0)} → ${q(v.c, 0).toFixed(0)}   median ${q(v.b, 0.5).toFixed(0)} → ${q(v.c, 0.5).toFixed(0)}   (${(q(v.c, 0.5) / q(v.b, 0.5)).toFixed(2)}x)`,
  );
