// Builds the portal and the console with Vite into web/dist/<app>/ (served at /portal/ and /console/).
// Skipped when nothing under web/ changed since the last build, so `npm test` and `npm start` stay fast.
import { existsSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const webRoot = new URL('.', import.meta.url).pathname;
const out = join(webRoot, 'dist');
const stamp = join(out, '.stamp');
const APPS = ['portal', 'console'];

function newest(dir, acc = 0) {
  for (const name of readdirSync(dir)) {
    if (name === 'dist' || name === 'node_modules') continue;
    const p = join(dir, name);
    const st = statSync(p);
    acc = st.isDirectory() ? newest(p, acc) : Math.max(acc, st.mtimeMs);
  }
  return acc;
}

export async function buildWeb({ force = false } = {}) {
  const built = existsSync(stamp) ? statSync(stamp).mtimeMs : 0;
  if (!force && built > newest(webRoot) && APPS.every((a) => existsSync(join(out, a, 'index.html')))) return false;
  const { build } = await import('vite');
  for (const app of APPS) {
    await build({
      configFile: false,
      root: join(webRoot, app),
      base: `/${app}/`,
      logLevel: 'warn',
      // JSX through Vite's own transform with Preact's automatic runtime: no plugin needed.
      oxc: { jsx: { runtime: 'automatic', importSource: 'preact' } },
      build: {
        outDir: join(out, app),
        emptyOutDir: true,
        // No inline scripts or styles (strict CSP) and no module-preload polyfill injected inline.
        assetsInlineLimit: 0,
        modulePreload: { polyfill: false },
        sourcemap: false,
        target: 'es2022',
        reportCompressedSize: false,
      },
    });
  }
  writeFileSync(stamp, String(Date.now()));
  return true;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const t = Date.now();
  await buildWeb({ force: process.argv.includes('--force') });
  console.log(`web: built in ${Date.now() - t} ms`);
}
