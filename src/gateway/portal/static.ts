/**
 * Serves a built single-page app (web/portal or web/console, built by Vite) from memory under a
 * prefix, with a strict Content-Security-Policy: scripts, styles and connections only from this
 * origin, no inline script, no framing. Assets are read once at start (a few hundred KiB).
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, extname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance, FastifyReply } from 'fastify';

export const STRICT_CSP =
  "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.json': 'application/json',
};

/** Where the built app lives: `dist/web/<app>` beside the compiled code, else `web/dist/<app>` in a checkout. */
export function webDir(app: 'portal' | 'console'): string | null {
  const here = dirname(fileURLToPath(import.meta.url));
  for (const d of [join(here, '..', '..', 'web', app), join(here, '..', '..', '..', 'web', 'dist', app)])
    if (existsSync(join(d, 'index.html'))) return d;
  return null;
}

function load(dir: string): Map<string, Buffer> {
  const files = new Map<string, Buffer>();
  const walk = (d: string, rel: string) => {
    for (const name of readdirSync(d)) {
      const p = join(d, name);
      if (statSync(p).isDirectory()) walk(p, `${rel}${name}/`);
      else files.set(`${rel}${name}`, readFileSync(p));
    }
  };
  walk(dir, '');
  return files;
}

function securityHeaders(reply: FastifyReply): void {
  reply.header('content-security-policy', STRICT_CSP);
  reply.header('x-content-type-options', 'nosniff');
  reply.header('x-frame-options', 'DENY');
  reply.header('referrer-policy', 'no-referrer');
  reply.header('cross-origin-opener-policy', 'same-origin');
}

/** Registers GET `<prefix>` and `<prefix>*`: files by path, anything else gets index.html (client routing). */
export function serveApp(app: FastifyInstance, prefix: '/portal' | '/console', dir: string | null): void {
  const files = dir ? load(dir) : new Map<string, Buffer>();
  const send = (reply: FastifyReply, path: string) => {
    securityHeaders(reply);
    const hit = files.get(path);
    const name = hit ? path : 'index.html';
    const body = hit ?? files.get('index.html');
    if (!body) {
      return reply
        .code(503)
        .type('text/plain; charset=utf-8')
        .send(`The ${prefix.slice(1)} is not built: run "node scripts/build.mjs".\n`);
    }
    // Hashed asset names never change content; index.html must be re-read on every visit.
    reply.header(
      'cache-control',
      name.startsWith('assets/') ? 'public, max-age=31536000, immutable' : 'no-store',
    );
    return reply.type(TYPES[extname(name)] ?? 'application/octet-stream').send(body);
  };
  // With `ignoreTrailingSlash` (the data plane) `/portal/` lands here too: only the bare prefix redirects.
  app.get(prefix, (req, reply) =>
    req.url.split('?')[0] === prefix ? reply.redirect(`${prefix}/`) : send(reply, 'index.html'),
  );
  app.get(`${prefix}/*`, (req, reply) => {
    const path = (req.params as { '*': string })['*'] ?? '';
    return send(reply, path === '' ? 'index.html' : path);
  });
}
