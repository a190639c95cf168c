// Transpiles src/ to dist/ with esbuild (type checking is `npm run check`): fast enough to run
// before every `npm start` and `npm test`, so the CLI and end-to-end tests never run stale code.
import { cpSync, existsSync, readdirSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { build } from 'esbuild';

const root = new URL('..', import.meta.url).pathname;
const src = join(root, 'src');
const out = join(root, 'dist');
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
if (!existsSync(join(out, 'cli', 'index.js'))) {
  console.error('build: dist/cli/index.js missing');
  process.exit(1);
}
