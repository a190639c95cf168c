/**
 * Unmodified stream events go out as they arrive (issue 10, items 2 and 6): the upstream sends its
 * first events and then waits on a promise the test holds. The client must read those events
 * before the test lets the upstream go on; a gateway that held the first event back (buffering in
 * a transform, waiting for the next chunk, or for the end of the stream) would never deliver it and
 * the test would time out. No timers: every wait is on a promise or an event.
 *
 * Runs through a real listener (a real client, the openai provider's relay, `respond`) with output
 * screening at its defaults, off, and with the journal barrier and a forced-shutdown guard in place
 * (what `sluice serve` wires), since each adds a layer around the stream.
 */
import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { request } from 'undici';
import { afterEach, describe, expect, it } from 'vitest';
import { auth, BASE_YAML, harness } from './support.js';

const chunk = (delta: Record<string, unknown>, finish: string | null = null) =>
  `data: ${JSON.stringify({ id: 'c1', object: 'chat.completion.chunk', created: 1, model: 'm', choices: [{ index: 0, delta, finish_reason: finish }] })}\n\n`;
const FIRST = chunk({ role: 'assistant', content: '' }) + chunk({ content: 'Hello there' });
const REST = `${chunk({ content: ', friend.' })}${chunk({}, 'stop')}data: ${JSON.stringify({ id: 'c1', object: 'chat.completion.chunk', created: 1, model: 'm', choices: [], usage: { prompt_tokens: 5, completion_tokens: 3, total_tokens: 8 } })}\n\ndata: [DONE]\n\n`;

/** The text deltas of a chat stream, joined. */
function textOf(sse: string): string {
  let text = '';
  for (const line of sse.split('\n'))
    if (line.startsWith('data: {')) text += JSON.parse(line.slice(6)).choices[0]?.delta?.content ?? '';
  return text;
}

interface HeldUpstream {
  url: string;
  /** Lets the upstream send the rest of its stream. */
  release(): void;
  /** Resolves once the upstream has written its first events. */
  firstSent: Promise<void>;
  close(): Promise<void>;
}

/** An OpenAI-compatible upstream that sends FIRST, waits for `release()`, then sends REST. */
async function heldUpstream(): Promise<HeldUpstream> {
  let release!: () => void;
  const released = new Promise<void>((r) => {
    release = r;
  });
  let sent!: () => void;
  const firstSent = new Promise<void>((r) => {
    sent = r;
  });
  const open = new Set<ServerResponse>();
  const server: Server = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      open.add(res);
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write(FIRST, () => sent());
      void released.then(() => {
        res.end(REST);
        open.delete(res);
      });
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/v1`,
    release,
    firstSent,
    close: async () => {
      release();
      for (const res of open) res.destroy();
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

const yamlFor = (url: string, screening: string) =>
  BASE_YAML.replace(
    '  - name: mock\n    kind: mock',
    `  - name: mock\n    kind: openai\n    baseUrl: ${url}`,
  ) + screening;

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0)) await c();
});

async function firstEventThenRest(screening: string, extraDeps: Record<string, unknown> = {}) {
  const up = await heldUpstream();
  cleanups.push(up.close);
  const h = harness({ yaml: yamlFor(up.url, screening), deps: extraDeps });
  await h.app.listen({ port: 0, host: '127.0.0.1' });
  cleanups.push(() => h.app.close());
  const { port } = h.app.server.address() as AddressInfo;
  const res = await request(`http://127.0.0.1:${port}/v1/chat/completions`, {
    method: 'POST',
    headers: { ...auth, 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'gpt-x', stream: true, messages: [{ role: 'user', content: 'hi' }] }),
  });
  expect(res.statusCode).toBe(200);
  const it = res.body[Symbol.asyncIterator]();
  // 1. The upstream sent its first events and now waits: the client reads them without a release.
  await up.firstSent;
  let got = '';
  while (!got.includes('Hello there')) {
    const r = await it.next();
    expect(r.done).toBe(false);
    got += Buffer.from(r.value as Uint8Array).toString('utf8');
  }
  expect(got).toBe(FIRST);
  // 2. Released, the rest follows, and the call settles with the upstream's usage.
  up.release();
  for (let r = await it.next(); !r.done; r = await it.next())
    got += Buffer.from(r.value as Uint8Array).toString('utf8');
  // The rest as the caller's SDK reads it (output screening may re-cut text deltas it inspected).
  expect(textOf(got)).toBe('Hello there, friend.');
  expect(got.endsWith(`${chunk({}, 'stop')}data: [DONE]\n\n`)).toBe(true);
  // The caller did not ask for include_usage: the usage-only chunk the gateway asked for is dropped.
  expect(got).not.toContain('"usage"');
  await h.settled(res.headers['x-request-id'] as string);
  expect(h.usage).toHaveLength(1);
  expect(h.usage[0]).toMatchObject({ inputTokens: 5, outputTokens: 3 });
}

describe('a streamed answer is not held back', () => {
  it('the first events reach the client before the upstream sends the rest (default screening)', async () => {
    await firstEventThenRest('');
  });

  it('the same with output screening off', async () => {
    await firstEventThenRest('screening:\n  output: { secrets: off, pii: off }\n');
  });

  it('the same with the journal barrier and the forced-shutdown guard around the stream', async () => {
    let barriers = 0;
    await firstEventThenRest('', {
      recorded: async () => {
        barriers++;
      },
      forceEnd: new AbortController().signal,
    });
    expect(barriers).toBe(1);
  });
});
