/**
 * Graceful shutdown of a real `sluice serve` process with streams open:
 *   1. SIGTERM: no new connections, open streams run to their end, exit 0, and every request has
 *      exactly one usage row and one audit event.
 *   2. The deadline passes first: open streams end with a well-formed SLUICE_SHUTTING_DOWN event.
 *   3. A second SIGTERM ends open streams at once the same way.
 */
import { Agent, fetch as undiciFetch } from 'undici';
import { describe, expect, it } from 'vitest';
import { createKey, type SluiceProcess, startSluice, tempDir, writeConfig } from '../e2e/harness.js';
import { countBy, isWireError, readRecords, sseData, startFaultStub, waitFor } from './support.js';

async function start(tokenDelay: string, deadline: string): Promise<{ s: SluiceProcess; key: string }> {
  const dir = tempDir('sluice-shutdown-');
  const config = writeConfig(
    dir,
    `upstreams: [{ name: local, kind: mock, tokenDelay: ${tokenDelay}, replyWords: 30 }]
models: [{ match: "*", upstream: local }]
tiers: { default: {} }
shutdown: { deadline: ${deadline} }
`,
  );
  const s = await startSluice({ config, dataDir: dir });
  const { key } = await createKey(s);
  return { s, key };
}

interface OpenStream {
  id: string;
  /** The whole body, once the stream ended; rejects if the connection broke. */
  text: Promise<string>;
}

/** Opens a chat stream and waits for its first bytes (so it is truly in flight). */
async function openStream(
  s: SluiceProcess,
  key: string,
  format: 'openai' | 'anthropic',
): Promise<OpenStream> {
  const anthropic = format === 'anthropic';
  const r = await fetch(`${s.url}${anthropic ? '/v1/messages' : '/v1/chat/completions'}`, {
    method: 'POST',
    headers: {
      ...(anthropic ? { 'x-api-key': key } : { authorization: `Bearer ${key}` }),
      'content-type': 'application/json',
    },
    body: JSON.stringify({
      model: anthropic ? 'demo-claude' : 'demo-model',
      stream: true,
      max_tokens: 100,
      messages: [{ role: 'user', content: 'tell me a story' }],
    }),
  });
  expect(r.status).toBe(200);
  const reader = r.body!.getReader();
  const first = await reader.read();
  const dec = new TextDecoder();
  const text = (async () => {
    let t = dec.decode(first.value, { stream: true });
    for (;;) {
      const c = await reader.read();
      if (c.done) return t + dec.decode();
      t += dec.decode(c.value, { stream: true });
    }
  })();
  text.catch(() => {});
  return { id: r.headers.get('x-request-id')!, text };
}

function expectOneRecordEach(dataDir: string, ids: string[]) {
  const rec = readRecords(dataDir);
  const usage = countBy(rec.usage);
  const audit = countBy(rec.audit);
  for (const id of ids) {
    expect(usage.get(id), `usage rows of ${id}`).toBe(1);
    expect(audit.get(id), `audit events of ${id}`).toBe(1);
  }
}

describe('graceful shutdown', () => {
  it('SIGTERM: stops accepting, finishes open streams, flushes, exits 0', async () => {
    const { s, key } = await start('25ms', '30s');
    const streams = await Promise.all(
      ['openai', 'anthropic', 'openai', 'anthropic', 'openai', 'openai'].map((f) =>
        openStream(s, key, f as 'openai' | 'anthropic'),
      ),
    );
    const t0 = Date.now();
    s.proc.kill('SIGTERM');
    // 1. A new connection is not accepted (the listener is closed): poll until the close happened.
    const tryConnect = async () => {
      const fresh = new Agent();
      try {
        return await undiciFetch(`${s.url}/healthz`, { dispatcher: fresh }).then(
          async (r) => {
            await r.arrayBuffer();
            return `status ${r.status}`;
          },
          (e: Error & { cause?: { code?: string } }) => e.cause?.code ?? e.message,
        );
      } finally {
        await fresh.close();
      }
    };
    const refused = await waitFor(async () => {
      const r = await tryConnect();
      return r === 'ECONNREFUSED' ? r : undefined;
    }, 5000);
    expect(refused).toBe('ECONNREFUSED');
    // 2. Every open stream runs to its normal end.
    const bodies = await Promise.all(streams.map((x) => x.text));
    for (const [i, b] of bodies.entries()) {
      if (i % 2 === 1 && i < 4) expect(b).toContain('event: message_stop');
      else expect(b.trimEnd().endsWith('data: [DONE]')).toBe(true);
      expect(b).not.toContain('SLUICE_SHUTTING_DOWN');
    }
    // 3. Exit 0, long before the deadline.
    expect(await s.exited).toBe(0);
    expect(Date.now() - t0).toBeLessThan(10_000);
    // 4. Flushed: one usage row and one audit event per request.
    expectOneRecordEach(
      s.dataDir,
      streams.map((x) => x.id),
    );
  });

  it('the deadline ends streams still open with a well-formed error event, then exits 0', async () => {
    const { s, key } = await start('150ms', '1s');
    const streams = await Promise.all(
      (['openai', 'anthropic', 'openai'] as const).map((f) => openStream(s, key, f)),
    );
    const t0 = Date.now();
    s.proc.kill('SIGTERM');
    const bodies = await Promise.all(streams.map((x) => x.text));
    const ended = Date.now() - t0;
    expect(ended).toBeGreaterThanOrEqual(900);
    expect(ended).toBeLessThan(3000); // 30 words at 150 ms would take 4.5 s
    for (const [i, b] of bodies.entries()) {
      const events = sseData(b);
      const last = JSON.parse(events.at(-1)!);
      const format = i === 1 ? 'anthropic' : 'openai';
      expect(isWireError(format, last), b.slice(-300)).toBe(true);
      expect(JSON.stringify(last)).toContain('SLUICE_SHUTTING_DOWN');
      if (format === 'anthropic') expect(b).toMatch(/event: error\ndata: [^\n]+\n\n$/);
    }
    expect(await s.exited).toBe(0);
    expectOneRecordEach(
      s.dataDir,
      streams.map((x) => x.id),
    );
  });

  it('a second SIGTERM ends open streams at once with the error event, then exits 0', async () => {
    const { s, key } = await start('150ms', '60s');
    const streams = await Promise.all((['openai', 'anthropic'] as const).map((f) => openStream(s, key, f)));
    const t0 = Date.now();
    s.proc.kill('SIGTERM');
    // The first signal was handled (the process said so) before the second is sent.
    expect(await waitFor(() => s.output().includes('SIGTERM, draining'), 5000)).toBe(true);
    s.proc.kill('SIGTERM');
    const bodies = await Promise.all(streams.map((x) => x.text));
    expect(Date.now() - t0).toBeLessThan(3000);
    for (const b of bodies) expect(b).toContain('SLUICE_SHUTTING_DOWN');
    expect(await s.exited).toBe(0);
    expect(Date.now() - t0).toBeLessThan(5000);
    expect(s.output()).toContain('second SIGTERM');
    expectOneRecordEach(
      s.dataDir,
      streams.map((x) => x.id),
    );
  });

  // Regression (src/gateway/app.ts `forward`): the upstream call's signal ignored `deps.forceEnd`, so a
  // request still waiting for upstream headers when the deadline passed was cut by
  // closeAllConnections (the client saw a socket reset, the audit said SLUICE_UPSTREAM_ERROR).
  it('regression: a request still waiting for the upstream at the deadline gets 503 SLUICE_SHUTTING_DOWN', async () => {
    const stub = await startFaultStub();
    const dir = tempDir('sluice-shutdown-');
    const config = writeConfig(
      dir,
      `upstreams: [{ name: oa, kind: openai, baseUrl: "${stub.url}" }]
models: [{ match: "*", upstream: oa }]
tiers: { default: {} }
shutdown: { deadline: 1s }
`,
    );
    const s = await startSluice({ config, dataDir: dir });
    try {
      const { key } = await createKey(s);
      const pending = fetch(`${s.url}/v1/chat/completions`, {
        method: 'POST',
        headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'hang-1', messages: [{ role: 'user', content: 'x' }] }),
      }).then(
        async (r) => ({ status: r.status, body: await r.text() }),
        () => ({ status: 0, body: '' }),
      );
      // The request is at the upstream, waiting for headers, before the signal.
      expect(await waitFor(() => stub.received.some((r) => r.model === 'hang-1'), 5000)).toBe(true);
      s.proc.kill('SIGTERM');
      const r = await pending;
      expect(await s.exited).toBe(0);
      expect(r.status).toBe(503);
      expect(r.body).toContain('SLUICE_SHUTTING_DOWN');
    } finally {
      await s.stop();
      await stub.close();
    }
  });
});
