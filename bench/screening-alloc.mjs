// Bytes allocated per call of screening, by function: the garbage a 4 kB prompt leaves behind is
// what makes the young-generation collections that land in the p99 of bench/screening.mjs. Uses
// V8's sampling heap profiler with collected objects included (so it counts what was allocated,
// not what survived), over calls of `screenRequest` on the bench's prompt.
//   npx tsx bench/screening-alloc.mjs [CALLS]
import { Session } from 'node:inspector/promises';
import { DEFAULT_SCREENING } from '../src/core/screening/policy.ts';
import { screenRequest } from '../src/core/screening/request.ts';
import { benchPrompt } from './screening-prompt.mjs';

const body = {
  model: 'm',
  messages: [
    { role: 'system', content: 'You are a careful reviewer.' },
    { role: 'user', content: benchPrompt() },
  ],
};
const N = Number(process.argv[2] ?? 3000);
for (let i = 0; i < 2000; i++) screenRequest('chat', body, DEFAULT_SCREENING);
const session = new Session();
session.connect();
await session.post('HeapProfiler.startSampling', {
  samplingInterval: 256,
  includeObjectsCollectedByMajorGC: true,
  includeObjectsCollectedByMinorGC: true,
});
for (let i = 0; i < N; i++) screenRequest('chat', body, DEFAULT_SCREENING);
const { profile } = await session.post('HeapProfiler.stopSampling');
session.disconnect();
// Self bytes per function; a built-in (no script URL) is named with the function that called it.
const self = new Map();
const walk = (node, parent) => {
  const cf = node.callFrame;
  const name = `${cf.functionName || '(anonymous)'} ${cf.url.split('/').pop()}`;
  const key = cf.url ? name : `${name} ← ${parent}`;
  if (node.selfSize) self.set(key, (self.get(key) ?? 0) + node.selfSize);
  for (const c of node.children) walk(c, name);
};
walk(profile.head, '');
const total = [...self.values()].reduce((a, b) => a + b, 0);
console.log(
  `screenRequest, ${benchPrompt().length}-char prompt: ${(total / N).toFixed(0)} bytes allocated per call`,
);
console.log('| function | bytes per call |\n|---|---|');
for (const [k, v] of [...self].sort((a, b) => b[1] - a[1]).slice(0, 20))
  console.log(`| ${k} | ${(v / N).toFixed(0)} |`);
