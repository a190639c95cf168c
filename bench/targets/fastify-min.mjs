// A second baseline: the minimal useful gateway on Fastify. It parses the JSON body, checks an
// API key and two in-memory fixed-window limits (requests and tokens per key), forwards through an
// undici Pool and reads the upstream's usage (JSON body, or the include_usage chunk of a stream)
// to charge tokens. It shows what the framework plus the obvious work costs, with no Sluice code.
// Usage: node bench/targets/fastify-min.mjs --upstream http://127.0.0.1:PORT [--port N]
import { parseArgs } from 'node:util';
import Fastify from 'fastify';
import { Pool } from 'undici';

const { values } = parseArgs({
  options: { port: { type: 'string', default: '0' }, upstream: { type: 'string' } },
});
if (!values.upstream) throw new Error('--upstream is required');
const pool = new Pool(values.upstream, { connections: 256, pipelining: 1, keepAliveTimeout: 60_000 });

const WINDOW_MS = 60_000;
const LIMITS = { requests: 100_000_000, tokens: 1_000_000_000 };
/** key -> { start, requests, tokens } */
const windows = new Map();

function windowFor(key, now) {
  let w = windows.get(key);
  if (!w || now - w.start >= WINDOW_MS) {
    w = { start: now, requests: 0, tokens: 0 };
    windows.set(key, w);
  }
  return w;
}

const app = Fastify({ logger: false, bodyLimit: 4 * 1024 * 1024 });
app.post('/v1/chat/completions', async (request, reply) => {
  const auth = request.headers.authorization ?? '';
  if (!auth.startsWith('Bearer ')) return reply.code(401).send({ error: { message: 'missing key' } });
  const key = auth.slice(7);
  const body = request.body;
  if (!body || typeof body !== 'object' || !Array.isArray(body.messages)) {
    return reply.code(400).send({ error: { message: 'messages is required' } });
  }
  const w = windowFor(key, Date.now());
  if (w.requests + 1 > LIMITS.requests || w.tokens >= LIMITS.tokens) {
    return reply.code(429).send({ error: { message: 'rate limited' } });
  }
  w.requests += 1;
  const stream = body.stream === true;
  if (stream) body.stream_options = { include_usage: true };
  const up = await pool.request({
    path: '/v1/chat/completions',
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: 'Bearer upstream' },
    body: JSON.stringify(body),
  });
  reply.code(up.statusCode);
  if (!stream) {
    const json = await up.body.json();
    w.tokens += json?.usage?.total_tokens ?? 0;
    return reply.send(json);
  }
  reply.header('content-type', 'text/event-stream');
  reply.hijack();
  reply.raw.writeHead(up.statusCode, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
  let tail = '';
  for await (const chunk of up.body) {
    reply.raw.write(chunk);
    tail = (tail + chunk.toString('utf8')).slice(-4096);
  }
  const m = /"total_tokens":(\d+)/.exec(tail);
  if (m) w.tokens += Number(m[1]);
  reply.raw.end();
});
app.get('/healthz', async () => 'ok');

await app.listen({ port: Number(values.port), host: '127.0.0.1' });
console.log(`listening http://127.0.0.1:${app.server.address().port}`);
process.on('SIGTERM', () => process.exit(0));
