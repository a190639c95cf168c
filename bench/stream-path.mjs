// CPU cost of the streamed path with output screening on against off, in one process, for one or more
// builds side by side (each checkout built with `node scripts/build.mjs`; its dist/ is imported):
// the bench stub's stream (role chunk, five content chunks, then stop + usage + [DONE] in one upstream
// chunk), parsed and classified as the relay does, then consumed as `respond` does (one write per
// item, no socket) either from the byte view (output screening off: what the gateway sends then) or
// through the output-screening transform at its defaults (on). Each upstream chunk arrives in its own
// macrotask (setImmediate), as socket reads do; 10 streams at a time, as in `npm run bench`.
// Blocks alternate (A B ... then reversed); prints the median CPU µs per stream (process.cpuUsage)
// and wall µs per stream. Socket writes are not in it: one write per item is counted instead.
//   node bench/stream-path.mjs --build old=/tmp/old --build new=. [--streams N] [--blocks N]
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: {
    build: { type: 'string', multiple: true, default: ['this=.'] },
    streams: { type: 'string', default: '2000' },
    blocks: { type: 'string', default: '10' },
    only: { type: 'string' },
  },
});
const STREAMS = Number(values.streams);
const BLOCKS = Number(values.blocks);
const enc = new TextEncoder();
const chunk = (delta, finish = null) =>
  `data: ${JSON.stringify({ id: 'chatcmpl-bench', object: 'chat.completion.chunk', created: 1, model: 'gpt-4o-mini', choices: [{ index: 0, delta, finish_reason: finish }] })}\n\n`;
const WORDS = ['Hello', ' there', '!', ' How', ' can'];
const UPSTREAM = [
  chunk({ role: 'assistant', content: '' }),
  ...WORDS.map((w) => chunk({ content: w })),
  `${chunk({}, 'stop')}data: ${JSON.stringify({ id: 'chatcmpl-bench', object: 'chat.completion.chunk', created: 1, model: 'gpt-4o-mini', choices: [], usage: { prompt_tokens: 9, completion_tokens: 5, total_tokens: 14 } })}\n\ndata: [DONE]\n\n`,
].map((s) => enc.encode(s));

const tick = () => new Promise((r) => setImmediate(r));
async function* upstream() {
  for (const c of UPSTREAM) {
    await tick();
    yield c;
  }
}

/** `respond`'s loop without the socket: one write per item. */
async function pump(src) {
  let bytes = 0;
  let writes = 0;
  for await (const b of src) {
    bytes += b.length;
    writes++;
  }
  return { bytes, writes };
}

/** The byte adaptor the stage used before `transformedBytes` (8b56e94). */
function rawBytes(events) {
  return {
    [Symbol.asyncIterator]() {
      const it = events[Symbol.asyncIterator]();
      return {
        async next() {
          const r = await it.next();
          return r.done ? { done: true, value: undefined } : { done: false, value: r.value.raw };
        },
        async return() {
          await it.return?.();
          return { done: true, value: undefined };
        },
      };
    },
  };
}

const variants = {};
for (const spec of values.build) {
  const [name, dir] = spec.split('=');
  const d = (p) => import(resolve(dir, 'dist', p));
  const { DEFAULT_SCREENING } = await d('core/screening/policy.js');
  const stage = await d('gateway/pipeline/stages/screen-output.js');
  const { closeable } = await d('providers/closeable-stream.js');
  const { dualView, sseBatches } = await d('providers/stream-events.js');
  const st = await d('providers/stream-transform.js');
  const view = () => dualView(closeable(sseBatches('chat', upstream()), () => {}));
  const screened = (events) =>
    st.transformedBytes
      ? st.transformedBytes('chat', events, stage.outputTransform(DEFAULT_SCREENING), {})
      : rawBytes(st.transformEvents('chat', events, stage.outputTransform(DEFAULT_SCREENING), {}));
  variants[`${name} off`] = () => pump(view().body);
  variants[`${name} on`] = () => pump(screened(view().events));
}

async function run(name) {
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  let w = 0;
  let bytes = 0;
  let next = 0;
  await Promise.all(
    Array.from({ length: 10 }, async () => {
      while (next++ < STREAMS) {
        const r = await variants[name]();
        w += r.writes;
        bytes += r.bytes;
      }
    }),
  );
  const c = process.cpuUsage(c0);
  return {
    cpu: (c.user + c.system) / STREAMS,
    wall: ((performance.now() - t0) * 1000) / STREAMS,
    writes: w / STREAMS,
    bytes: bytes / STREAMS,
  };
}

const names = values.only ? values.only.split(',') : Object.keys(variants);
const res = Object.fromEntries(names.map((n) => [n, []]));
for (let b = 0; b < BLOCKS + 1; b++) {
  for (const name of b % 2 ? [...names].reverse() : names) {
    const r = await run(name);
    if (b > 0) res[name].push(r); // the first block warms up
  }
}
const med = (xs) => xs.sort((a, b) => a - b)[xs.length >> 1];
for (const name of names)
  console.log(
    `${name.padEnd(10)} CPU µs/stream ${med(res[name].map((r) => r.cpu)).toFixed(1)}  wall µs/stream ${med(res[name].map((r) => r.wall)).toFixed(1)}  writes/stream ${res[name][0].writes}  bytes/stream ${res[name][0].bytes}`,
  );
