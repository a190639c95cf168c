// Starting the proxies under test. Each resolves to `{ name, url, pid, headers, ... }`; `headers`
// are what a client must send to that target (its key, or Portkey's routing headers).
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { freePort, startProcess } from './procs.mjs';

const HERE = new URL('..', import.meta.url).pathname;
const URL_LINE = /listening (http:\/\/127\.0\.0\.1:\d+)/;

export async function startStub({ core }) {
  const proc = await startProcess({
    name: 'stub',
    args: [join(HERE, 'targets', 'stub-model.mjs')],
    core,
    ready: URL_LINE,
    timeoutMs: 10_000,
  });
  proc.url = proc.match;
  return proc;
}

export async function startBare({ core, upstreamUrl, mode = 'dispatch' }) {
  const proc = await startProcess({
    name: mode === 'dispatch' ? 'bare' : `bare-${mode}`,
    args: [join(HERE, 'targets', 'bare-proxy.mjs'), '--upstream', upstreamUrl, '--mode', mode],
    core,
    ready: URL_LINE,
    timeoutMs: 10_000,
  });
  proc.url = proc.match;
  proc.headers = { authorization: 'Bearer x' };
  return proc;
}

export async function startFastifyMin({ core, upstreamUrl }) {
  const proc = await startProcess({
    name: 'fastify-min',
    args: [join(HERE, 'targets', 'fastify-min.mjs'), '--upstream', upstreamUrl],
    core,
    ready: URL_LINE,
    timeoutMs: 15_000,
  });
  proc.url = proc.match;
  proc.headers = { authorization: 'Bearer bench-key' };
  return proc;
}

/** Where `@portkey-ai/gateway` keeps its Node server (its `start:node` script runs this file). */
export function portkeyScript() {
  const require = createRequire(import.meta.url);
  const pkg = require.resolve('@portkey-ai/gateway/package.json');
  return join(dirname(pkg), 'build', 'start-server.js');
}

export async function startPortkey({ core, upstreamUrl }) {
  const port = await freePort();
  const proc = await startProcess({
    name: 'portkey',
    args: [portkeyScript(), `--port=${port}`, '--headless'],
    core,
    ready: /Ready for connections|running at/,
    timeoutMs: 30_000,
  });
  proc.url = `http://127.0.0.1:${port}`;
  proc.headers = {
    authorization: 'Bearer x',
    'x-portkey-provider': 'openai',
    'x-portkey-custom-host': `${upstreamUrl}/v1`,
  };
  return proc;
}
