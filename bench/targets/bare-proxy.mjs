// The baseline: a bare pass-through proxy, node:http in and one undici Pool out, nothing parsed,
// hop-by-hop headers dropped. Whatever a gateway adds is measured against this.
//   --mode dispatch  (default, the `bare` target) request body read whole, then `pool.dispatch`
//                    with a raw handler writing head and chunks straight to the client socket, no
//                    stream objects in between: the floor, and the baseline the performance
//                    budget in docs/ARCHITECTURE.md refers to.
//   --mode pipe      (the optional `bare-pipe` target) request and response bodies piped as
//                    streams through `pool.request`: the naive proxy. Measured here it costs more
//                    CPU per request than a Fastify app that parses the body, so it is no floor.
// Usage: node bench/targets/bare-proxy.mjs --upstream http://127.0.0.1:PORT [--port N] [--mode M]
import { createServer } from 'node:http';
import { pipeline } from 'node:stream';
import { parseArgs } from 'node:util';
import { Pool } from 'undici';

const { values } = parseArgs({
  options: {
    port: { type: 'string', default: '0' },
    upstream: { type: 'string' },
    mode: { type: 'string', default: 'dispatch' },
  },
});
if (!values.upstream) throw new Error('--upstream is required');
if (values.mode !== 'pipe' && values.mode !== 'dispatch') throw new Error('--mode is pipe or dispatch');
const pool = new Pool(values.upstream, { connections: 256, pipelining: 1, keepAliveTimeout: 60_000 });

// RFC 9110 §7.6.1 hop-by-hop fields, plus host (the pool sets its own).
const HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'transfer-encoding',
  'te',
  'trailer',
  'upgrade',
  'host',
]);

function forwardHeaders(raw) {
  const out = [];
  for (let i = 0; i < raw.length; i += 2) {
    if (!HOP.has(raw[i].toLowerCase())) out.push(raw[i], raw[i + 1]);
  }
  return out;
}

function responseHeaders(headers) {
  const out = {};
  for (const k of Object.keys(headers)) if (!HOP.has(k)) out[k] = headers[k];
  return out;
}

function fail(res, err) {
  if (!res.headersSent) {
    res.writeHead(502, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ error: { message: String(err?.message ?? err), type: 'bad_gateway' } }));
  } else res.destroy();
}

function readBody(req) {
  return new Promise((resolve, reject) => {
    const parts = [];
    req.on('data', (c) => parts.push(c));
    req.on('end', () => resolve(parts.length === 1 ? parts[0] : Buffer.concat(parts)));
    req.on('error', reject);
  });
}

const hasBody = (req) => req.method !== 'GET' && req.method !== 'HEAD';

async function handlePipe(req, res) {
  try {
    const up = await pool.request({
      path: req.url,
      method: req.method,
      headers: forwardHeaders(req.rawHeaders),
      body: hasBody(req) ? req : null,
    });
    res.writeHead(up.statusCode, responseHeaders(up.headers));
    pipeline(up.body, res, () => {});
  } catch (err) {
    fail(res, err);
  }
}

async function handleDispatch(req, res) {
  let body = null;
  try {
    if (hasBody(req)) body = await readBody(req);
  } catch (err) {
    fail(res, err);
    return;
  }
  pool.dispatch(
    { path: req.url, method: req.method, headers: forwardHeaders(req.rawHeaders), body },
    {
      onRequestStart() {},
      onResponseStart(_controller, statusCode, headers) {
        res.writeHead(statusCode, responseHeaders(headers));
      },
      onResponseData(_controller, chunk) {
        res.write(chunk);
      },
      onResponseEnd() {
        res.end();
      },
      onResponseError(_controller, err) {
        fail(res, err);
      },
    },
  );
}

const server = createServer(values.mode === 'dispatch' ? handleDispatch : handlePipe);
server.keepAliveTimeout = 60_000;
server.listen(Number(values.port), '127.0.0.1', () => {
  console.log(`listening http://127.0.0.1:${server.address().port}`);
});
process.on('SIGTERM', () => process.exit(0));
