/**
 * A stub OpenAI-compatible model server on loopback, for end-to-end tests: streams slowly, records
 * what it received (headers, bodies) and when a client went away mid-stream.
 */
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface StubUpstream {
  url: string;
  received: { headers: IncomingMessage['headers']; body: any }[];
  aborted: number;
  completed: number;
  close(): Promise<void>;
}

export async function startStubUpstream(
  opts: { chunkDelayMs?: number; chunks?: number } = {},
): Promise<StubUpstream> {
  const delay = opts.chunkDelayMs ?? 50;
  const n = opts.chunks ?? 20;
  const state: StubUpstream = { url: '', received: [], aborted: 0, completed: 0, close: async () => {} };
  const server: Server = createServer((req, res) => {
    let raw = '';
    req.on('data', (d) => (raw += d));
    req.on('end', async () => {
      const body = raw ? JSON.parse(raw) : null;
      state.received.push({ headers: req.headers, body });
      if (!body?.stream) {
        res.writeHead(200, {
          'content-type': 'application/json',
          'x-ratelimit-remaining-requests': '999',
          'set-cookie': 'up=1',
        });
        res.end(
          JSON.stringify({
            id: 'chatcmpl-stub',
            object: 'chat.completion',
            created: 1,
            model: body?.model,
            choices: [
              { index: 0, message: { role: 'assistant', content: 'stub reply' }, finish_reason: 'stop' },
            ],
            usage: { prompt_tokens: 7, completion_tokens: 2, total_tokens: 9 },
          }),
        );
        state.completed++;
        return;
      }
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      let closed = false;
      res.on('close', () => {
        if (!res.writableFinished) {
          closed = true;
          state.aborted++;
        }
      });
      for (let i = 0; i < n && !closed; i++) {
        const chunk = {
          id: 'c',
          object: 'chat.completion.chunk',
          created: 1,
          model: body.model,
          choices: [{ index: 0, delta: { content: `w${i} ` }, finish_reason: null }],
        };
        res.write(`data: ${JSON.stringify(chunk)}\n\n`);
        await new Promise((r) => setTimeout(r, delay));
      }
      if (closed) return;
      if (body.stream_options?.include_usage) {
        res.write(
          `data: ${JSON.stringify({ id: 'c', object: 'chat.completion.chunk', created: 1, model: body.model, choices: [], usage: { prompt_tokens: 7, completion_tokens: n, total_tokens: 7 + n } })}\n\n`,
        );
      }
      res.end('data: [DONE]\n\n');
      state.completed++;
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  state.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`;
  state.close = () =>
    new Promise((r) => {
      server.closeAllConnections();
      server.close(() => r());
    });
  return state;
}
