// Transpiles src/ to dist/ with esbuild (type checking is `npm run check`): fast enough to run
// before every `npm start` and `npm test`, so the CLI and end-to-end tests never run stale code.
import { cpSync, existsSync, readdirSync, readFileSync, renameSync, rmSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { build } from 'esbuild';

const root = new URL('..', import.meta.url).pathname;
const src = join(root, 'src');
// Built beside dist/ and swapped in at the end (two renames): a process running from dist/ (a
// `sluice simulate`, a server) while this runs keeps its files, and a failed build leaves the last
// good one. (The same depth as dist/, so every relative path in the output is the same.)
const dist = join(root, 'dist');
const out = join(root, `.dist-build-${process.pid}`);
const old = join(root, `.dist-old-${process.pid}`);
// (a build that fails, or is stopped, leaves neither behind)
process.on('exit', () => {
  rmSync(out, { recursive: true, force: true });
  rmSync(old, { recursive: true, force: true });
});
function walk(dir, acc = []) {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) walk(p, acc);
    else acc.push(p);
  }
  return acc;
}
const files = walk(src);
rmSync(out, { recursive: true, force: true });
await build({
  entryPoints: files.filter((f) => f.endsWith('.ts')),
  outdir: out,
  outbase: src,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  sourcemap: 'linked',
  logLevel: 'warning',
});
// The CLI (`bin/sluice.js`) runs from a bundle of the same sources: Node 20 loads ES modules one
// file at a time, and the ~760 files behind `sluice simulate` (Sluice's 400, kysely's 263, zod's 95)
// took ~640 ms of CPU to load before the first request; the bundle loads in ~380 ms. The per-file
// build above stays for the tests and for anything that imports one module. Packages stay outside
// the bundle (native addons, WebAssembly, CommonJS) except three with many files: kysely and zod
// (ES modules) and yaml (CommonJS, given a `require` for the Node built-ins it asks for).
// Code that finds files beside itself (`import.meta.url`) is pointed at its place in the per-file
// build, which holds those files.
const bundleDir = join(out, 'bundle');
const INLINED = new Set(['kysely', 'zod', 'yaml']);
await build({
  entryPoints: [join(src, 'cli', 'index.ts')],
  outdir: bundleDir,
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  sourcemap: 'linked',
  logLevel: 'warning',
  banner: {
    js: "import { createRequire as __sluiceRequire } from 'node:module'; const require = __sluiceRequire(import.meta.url);",
  },
  plugins: [
    {
      name: 'sluice-bundle',
      setup(b) {
        b.onResolve({ filter: /^[^./]/ }, (args) => {
          if (args.path.startsWith('node:')) return { external: true };
          const parts = args.path.split('/');
          const pkg = args.path.startsWith('@') ? `${parts[0]}/${parts[1]}` : parts[0];
          return INLINED.has(pkg) ? undefined : { external: true };
        });
        b.onLoad({ filter: /\.ts$/ }, (args) => {
          const text = readFileSync(args.path, 'utf8');
          if (!text.includes('import.meta.url')) return { contents: text, loader: 'ts' };
          const own = join(out, relative(src, args.path)).replace(/\.ts$/, '.js');
          const url = `new URL(${JSON.stringify(relative(bundleDir, own))}, import.meta.url).href`;
          return { contents: text.replaceAll('import.meta.url', url), loader: 'ts' };
        });
      },
    },
  ],
});
// Non-TS assets (Lua scripts, SQL, static web files) are copied beside the code that reads them.
for (const f of files.filter((f) => !f.endsWith('.ts'))) {
  cpSync(f, join(out, f.slice(src.length)));
}
// The portal and the console (web/): built with Vite only when their sources changed, then copied
// into dist/web/ where the planes serve them from.
try {
  const { buildWeb } = await import('../web/build.mjs');
  await buildWeb();
} catch (err) {
  if (!existsSync(join(root, 'web', 'dist', 'portal', 'index.html'))) throw err;
  console.warn(`build: web pages not rebuilt (${err.message}); using the last build`);
}
for (const app of ['portal', 'console'])
  cpSync(join(root, 'web', 'dist', app), join(out, 'web', app), { recursive: true });
if (!existsSync(join(out, 'cli', 'index.js')) || !existsSync(join(bundleDir, 'index.js'))) {
  console.error('build: dist/cli/index.js or dist/bundle/index.js missing');
  process.exit(1);
}
// The swap: the old dist/ aside, the new one in its place, the old one removed. Another build
// finishing at the same moment may take dist/ in between: then this one tries again.
for (let attempt = 0; ; attempt++) {
  try {
    if (existsSync(dist)) renameSync(dist, old);
  } catch (err) {
    if (err.code !== 'ENOENT') throw err;
  }
  try {
    renameSync(out, dist);
    break;
  } catch (err) {
    if (attempt >= 5 || (err.code !== 'ENOTEMPTY' && err.code !== 'EEXIST')) throw err;
  }
}
rmSync(old, { recursive: true, force: true });
