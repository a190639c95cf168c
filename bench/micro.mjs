// Runs the micro-benchmarks that other parts of the tree provide, under tsx so they can be
// TypeScript: bench/limiter.ts (limit decisions per second, Sluice against rate-limiter-flexible,
// memory and Redis) and bench/authz.ts (the built-in authorization check). Each module exports
// functions returning JSON figures; every exported function is called with
// `{ quick, redisUrl }` and its result recorded under its name. Missing modules are skipped.
// Usage (run.mjs does this): tsx bench/micro.mjs [--quick] [--redis-url URL]
// Prints one line `BENCH_JSON <json>` at the end.
import { existsSync } from 'node:fs';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: { quick: { type: 'boolean', default: false }, 'redis-url': { type: 'string' } },
});
// `quick` and `redisUrl` for limiter.ts; `iterations` and `rounds` for authz.ts (when quick).
const opts = {
  quick: values.quick,
  redisUrl: values['redis-url'],
  ...(values.quick ? { iterations: 100_000, rounds: 3 } : {}),
};

const out = {};
for (const name of ['limiter', 'authz']) {
  const file = new URL(`./${name}.ts`, import.meta.url);
  if (!existsSync(file)) {
    out[name] = { skipped: `bench/${name}.ts not present` };
    continue;
  }
  try {
    const mod = await import(file.href);
    const fns = Object.entries(mod).filter(([, v]) => typeof v === 'function');
    if (fns.length === 0) {
      out[name] = { skipped: `bench/${name}.ts exports no function` };
      continue;
    }
    const section = {};
    for (const [fnName, fn] of fns) {
      const t0 = performance.now();
      section[fnName === 'default' ? 'result' : fnName] = await fn(opts);
      console.error(`micro: ${name}.${fnName} done in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    }
    out[name] = fns.length === 1 ? Object.values(section)[0] : section;
  } catch (err) {
    out[name] = {
      skipped: `failed: ${String(err?.stack ?? err)
        .split('\n')
        .slice(0, 3)
        .join(' | ')}`,
    };
  }
}
console.log(`BENCH_JSON ${JSON.stringify(out)}`);
// Stores opened by the benchmarks (Redis clients) must not keep this process alive.
process.exit(0);
