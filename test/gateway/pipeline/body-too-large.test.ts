/**
 * Regression (issue 10): a body over `hardening.maxBodyBytes` was answered by a reset connection;
 * the openai SDK saw EPIPE, reported APIConnectionError and sent the 12 MB again. Now the 413 is
 * answered at once and the rest of the body is read and discarded (bounded) before the connection
 * closes, so the client reads the answer.
 */
import { type AddressInfo, connect } from 'node:net';
import OpenAI, { APIConnectionError, APIError } from 'openai';
import { afterEach, describe, expect, it } from 'vitest';
import { LINGER_MAX_BYTES } from '../../../src/gateway/pipeline/edge.js';
import { harness, KEY } from './support.js';

describe('a body over the cap', () => {
  const closers: (() => Promise<unknown>)[] = [];
  afterEach(async () => {
    for (const c of closers.splice(0)) await c();
  });

  it('the openai SDK surfaces APIError 413 (not a connection error) and does not retry', async () => {
    const h = harness();
    await h.app.listen({ port: 0, host: '127.0.0.1' });
    closers.push(() => h.app.close());
    let requests = 0;
    h.app.server.on('request', () => requests++);
    const port = (h.app.server.address() as AddressInfo).port;
    const client = new OpenAI({ apiKey: KEY, baseURL: `http://127.0.0.1:${port}/v1`, maxRetries: 2 });
    const big = 'x'.repeat(12 * 1024 * 1024);
    let caught: unknown;
    try {
      await client.chat.completions.create({
        model: 'mock-chat',
        messages: [{ role: 'user', content: big }],
      });
    } catch (err) {
      caught = err;
    }
    expect(caught).not.toBeInstanceOf(APIConnectionError);
    expect(caught).toBeInstanceOf(APIError);
    expect((caught as APIError).status).toBe(413);
    expect((caught as APIError).code).toBe('SLUICE_BODY_TOO_LARGE');
    expect(requests).toBe(1);
    expect(h.audit).toEqual([expect.objectContaining({ reason: 'SLUICE_BODY_TOO_LARGE' })]);
  });

  it('reads and discards at most LINGER_MAX_BYTES of a refused body, then closes the connection', async () => {
    const h = harness();
    await h.app.listen({ port: 0, host: '127.0.0.1' });
    closers.push(() => h.app.close());
    const port = (h.app.server.address() as AddressInfo).port;
    const socket = connect(port, '127.0.0.1');
    let answer = '';
    socket.on('data', (d) => (answer += d.toString('latin1')));
    const closed = new Promise<void>((resolve) => socket.on('close', () => resolve()));
    socket.on('error', () => {});
    // 1. Announce far more than the bound, then keep sending until the server closes.
    socket.write(
      'POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n' +
        `authorization: Bearer ${KEY}\r\ncontent-length: ${4 * LINGER_MAX_BYTES}\r\n\r\n`,
    );
    const chunk = Buffer.alloc(1024 * 1024, 0x20);
    let sent = 0;
    let open = true;
    void closed.then(() => (open = false));
    while (open && sent < 4 * LINGER_MAX_BYTES) {
      if (!socket.write(chunk))
        await new Promise<void>((r) => {
          // one pair of listeners per wait, both removed when either fires (no pile-up on the socket)
          const done = () => {
            socket.off('drain', done).off('close', done);
            r();
          };
          socket.once('drain', done).once('close', done);
        });
      sent += chunk.length;
    }
    await closed;
    // 2. The 413 arrived first; the server stopped reading past the bound (plus what was in flight).
    expect(answer.startsWith('HTTP/1.1 413')).toBe(true);
    expect(answer).toContain('SLUICE_BODY_TOO_LARGE');
    expect(sent).toBeGreaterThan(LINGER_MAX_BYTES);
    expect(sent).toBeLessThan(4 * LINGER_MAX_BYTES);
  });
});
