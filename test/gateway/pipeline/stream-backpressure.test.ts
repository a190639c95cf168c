/**
 * A streamed answer honours backpressure (issue 10 item 6: `respond` writes the stream to the Node
 * response itself, waiting for `drain`). The client stops reading until the gateway's response
 * buffer is full (a write returned false); from then on the gateway must not write again before
 * `drain`. A gateway that wrote without waiting would keep buffering the upstream's answer in memory:
 * the test counts writes made while the response still needs to drain. Then the client reads, every
 * byte arrives in order, and the call settles with the upstream's usage. No timers: every wait is on
 * a promise or an event.
 */
import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { request } from 'undici';
import { afterEach, describe, expect, it } from 'vitest';
import { auth, BASE_YAML, harness } from './support.js';

const PIECE = 'x'.repeat(16 * 1024);
/** What the upstream may send at most; far more than loopback socket buffers hold. */
const MAX_BYTES = 32 * 1024 * 1024;
const chunk = (delta: Record<string, unknown>, finish: string | null = null) =>
  `data: ${JSON.stringify({ id: 'c1', object: 'chat.completion.chunk', created: 1, model: 'm', choices: [{ index: 0, delta, finish_reason: finish }] })}\n\n`;
const END = `${chunk({}, 'stop')}data: ${JSON.stringify({ id: 'c1', object: 'chat.completion.chunk', created: 1, model: 'm', choices: [], usage: { prompt_tokens: 5, completion_tokens: 7, total_tokens: 12 } })}\n\ndata: [DONE]\n\n`;

interface PushedUpstream {
  url: string;
  /** Resolves with the number of text pieces sent once the stream has ended. */
  ended: Promise<number>;
  close(): Promise<void>;
}

/** An OpenAI-compatible upstream streaming MAX_BYTES of text pieces, honouring its own `drain`, then the end. */
async function bigUpstream(): Promise<PushedUpstream> {
  let done!: (n: number) => void;
  const ended = new Promise<number>((r) => {
    done = r;
  });
  const open = new Set<ServerResponse>();
  const server: Server = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      open.add(res);
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      let bytes = 0;
      let pieces = 0;
      const more = () => {
        while (bytes < MAX_BYTES) {
          const line = chunk({ content: PIECE });
          bytes += line.length;
          pieces++;
          if (!res.write(line)) {
            res.once('drain', more);
            return;
          }
        }
        finish();
      };
      const finish = () => {
        res.end(chunk({ content: 'end' }) + END);
        open.delete(res);
        done(pieces + 1);
      };
      more();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/v1`,
    ended,
    close: async () => {
      for (const res of open) res.destroy();
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0)) await c();
});

describe('a streamed answer to a client that stops reading', () => {
  it('is not written on while the response needs to drain; every byte arrives once the client reads', async () => {
    const up = await bigUpstream();
    cleanups.push(up.close);
    const yaml =
      BASE_YAML.replace(
        '  - name: mock\n    kind: mock',
        `  - name: mock\n    kind: openai\n    baseUrl: ${up.url}`,
      ) + 'screening:\n  output: { secrets: off, pii: off }\n';
    const h = harness({ yaml });
    // Watches the gateway's writes to the response: pushed back, and written while still full.
    const seen = { pushedBack: 0, writesWhileFull: 0 };
    let full!: () => void;
    const filled = new Promise<void>((r) => {
      full = r;
    });
    h.app.addHook('onRequest', (_req, reply, done) => {
      const raw = reply.raw;
      const write = raw.write.bind(raw) as (...a: unknown[]) => boolean;
      raw.write = ((...a: unknown[]) => {
        if (raw.writableNeedDrain) seen.writesWhileFull++;
        const ok = write(...a);
        if (!ok) {
          seen.pushedBack++;
          full();
        }
        return ok;
      }) as typeof raw.write;
      done();
    });
    await h.app.listen({ port: 0, host: '127.0.0.1' });
    cleanups.push(() => h.app.close());
    const { port } = h.app.server.address() as AddressInfo;
    const res = await request(`http://127.0.0.1:${port}/v1/chat/completions`, {
      method: 'POST',
      headers: { ...auth, 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'gpt-x', stream: true, messages: [{ role: 'user', content: 'hi' }] }),
    });
    expect(res.statusCode).toBe(200);
    // The client reads nothing until the gateway's response buffer is full.
    await filled;
    // Now the client reads: everything arrives, in order, and the call settles with the usage.
    let pieces = 0;
    let tail = '';
    let buffered = '';
    for await (const b of res.body) {
      buffered += Buffer.from(b as Uint8Array).toString('utf8');
      const events = buffered.split('\n\n');
      buffered = events.pop()!;
      for (const e of events) {
        if (!e.startsWith('data: {')) continue;
        const content = JSON.parse(e.slice(6)).choices[0]?.delta?.content;
        if (content === PIECE) pieces++;
        else if (typeof content === 'string') tail = content;
      }
    }
    expect(pieces + 1).toBe(await up.ended);
    expect(seen.pushedBack).toBeGreaterThan(0);
    expect(seen.writesWhileFull).toBe(0);
    expect(tail).toBe('end');
    await h.settled(res.headers['x-request-id'] as string);
    expect(h.usage).toHaveLength(1);
    expect(h.usage[0]).toMatchObject({ inputTokens: 5, outputTokens: 7 });
  });
});
