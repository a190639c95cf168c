/**
 * undici, loaded on first use. Loading it costs ~100 ms of CPU, which every CLI command paid at
 * start although only a gateway with HTTP upstreams (or an upstream-passthrough endpoint) calls it:
 * `sluice simulate`, `sluice screen` and a gateway on the mock upstream never do. undici is a
 * CommonJS package, so a synchronous require gives the same module an `import` would.
 */
import { createRequire } from 'node:module';

type Undici = typeof import('undici');
let loaded: Undici | undefined;

export function undici(): Undici {
  loaded ??= createRequire(import.meta.url)('undici') as Undici;
  return loaded;
}
