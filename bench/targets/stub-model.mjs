// A stub OpenAI-compatible model server: a fixed small chat.completion with usage, or an SSE
// stream of a few chunks (tiny delays between them), the include_usage chunk and [DONE].
// Usage: node bench/targets/stub-model.mjs [--port N] [--chunks N] [--chunk-delay-ms N]
// Prints `listening http://127.0.0.1:PORT` once ready. Binds to loopback only.
import { createServer } from 'node:http';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: {
    port: { type: 'string', default: '0' },
    chunks: { type: 'string', default: '5' },
    'chunk-delay-ms': { type: 'string', default: '2' },
  },
});
const CHUNKS = Number(values.chunks);
const CHUNK_DELAY = Number(values['chunk-delay-ms']);
const CREATED = Math.floor(Date.now() / 1000);
const WORDS = ['Hello', ' there', '!', ' How', ' can', ' I', ' help', '?'];

function completion(model) {
  return JSON.stringify({
    id: 'chatcmpl-bench',
    object: 'chat.completion',
    created: CREATED,
    model,
    choices: [
      {
        index: 0,
        message: { role: 'assistant', content: 'Hello there! How can I help?' },
        finish_reason: 'stop',
      },
    ],
    usage: { prompt_tokens: 12, completion_tokens: 8, total_tokens: 20 },
  });
}

function chunk(model, delta, finish) {
  return `data: ${JSON.stringify({
    id: 'chatcmpl-bench',
    object: 'chat.completion.chunk',
    created: CREATED,
    model,
    choices: [{ index: 0, delta, finish_reason: finish }],
  })}\n\n`;
}

function usageChunk(model) {
  return `data: ${JSON.stringify({
    id: 'chatcmpl-bench',
    object: 'chat.completion.chunk',
    created: CREATED,
    model,
    choices: [],
    usage: { prompt_tokens: 12, completion_tokens: CHUNKS, total_tokens: 12 + CHUNKS },
  })}\n\n`;
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function stream(res, model, includeUsage) {
  res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
  res.write(chunk(model, { role: 'assistant', content: '' }, null));
  for (let i = 0; i < CHUNKS; i++) {
    if (CHUNK_DELAY > 0) await sleep(CHUNK_DELAY);
    if (res.destroyed) return;
    res.write(chunk(model, { content: WORDS[i % WORDS.length] }, null));
  }
  res.write(chunk(model, {}, 'stop'));
  if (includeUsage) res.write(usageChunk(model));
  res.end('data: [DONE]\n\n');
}

const server = createServer((req, res) => {
  const url = req.url ?? '/';
  if (req.method === 'GET' && (url === '/healthz' || url === '/v1/healthz')) {
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.end('ok');
    return;
  }
  if (req.method === 'GET' && url.startsWith('/v1/models')) {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(
      JSON.stringify({ object: 'list', data: [{ id: 'gpt-4o-mini', object: 'model', owned_by: 'bench' }] }),
    );
    return;
  }
  if (req.method !== 'POST' || !url.startsWith('/v1/chat/completions')) {
    res.writeHead(404, { 'content-type': 'application/json' });
    res.end('{"error":{"message":"not found","type":"invalid_request_error"}}');
    return;
  }
  const parts = [];
  req.on('data', (c) => parts.push(c));
  req.on('end', () => {
    let body = {};
    try {
      body = JSON.parse(Buffer.concat(parts).toString('utf8'));
    } catch {
      res.writeHead(400, { 'content-type': 'application/json' });
      res.end('{"error":{"message":"bad json","type":"invalid_request_error"}}');
      return;
    }
    const model = typeof body.model === 'string' ? body.model : 'gpt-4o-mini';
    if (body.stream === true) {
      stream(res, model, body.stream_options?.include_usage === true).catch(() => res.destroy());
      return;
    }
    const payload = completion(model);
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) });
    res.end(payload);
  });
});
server.keepAliveTimeout = 60_000;
server.listen(Number(values.port), '127.0.0.1', () => {
  console.log(`listening http://127.0.0.1:${server.address().port}`);
});
process.on('SIGTERM', () => process.exit(0));
