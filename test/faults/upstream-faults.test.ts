/**
 * Upstream faults through a real `sluice serve` process: an upstream that hangs (504), resets the
 * connection (502), breaks or stalls mid-stream (the client's stream ends with a well-formed error
 * event). In each case: one audit event per request, a usage row exactly when the upstream
 * produced something, the token reservation settled to what was produced (refunded when nothing
 * was), and the concurrency slot released.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createKey, type SluiceProcess, startSluice, tempDir, writeConfig } from '../e2e/harness.js';
import {
  countBy,
  type FaultStub,
  isWireError,
  readRecords,
  sseData,
  startFaultStub,
  waitFor,
} from './support.js';

let s: SluiceProcess;
let stub: FaultStub;
let key: string;
let keyId: string;
const sent: string[] = [];

beforeAll(async () => {
  stub = await startFaultStub();
  const dir = tempDir('sluice-faults-');
  const up = (name: string) =>
    `  - { name: ${name}, kind: openai, baseUrl: "${stub.url}", timeouts: { headers: 1s, body: 1s } }`;
  const config = writeConfig(
    dir,
    `upstreams:
${up('hang')}
${up('reset')}
${up('brk')}
${up('ok')}
models:
  - { match: "hang-*", upstream: hang }
  - { match: "reset-*", upstream: reset }
  - { match: "break-*", upstream: brk }
  - { match: "stall-*", upstream: brk }
  - { match: "script-*", upstream: ok }
  - { match: "*", upstream: ok }
tiers:
  default:
    limits:
      - { id: tokens, tokens: 10000000, window: 30d }
      - { id: conc, concurrent: 1 }
`,
  );
  s = await startSluice({ config, dataDir: dir });
  ({ key, id: keyId } = await createKey(s));
});
afterAll(async () => {
  expect(await s?.stop()).toBe(0);
  await stub?.close();
});

async function chat(model: string, stream = false) {
  const r = await fetch(`${s.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body: JSON.stringify({
      model,
      stream,
      max_tokens: 500,
      messages: [{ role: 'user', content: 'hi there' }],
    }),
  });
  const id = r.headers.get('x-request-id')!;
  sent.push(id);
  return { r, id, text: await r.text() };
}

/** Token and concurrency use as the caller sees it. */
async function limitUse(): Promise<{ tokens: number; conc: number }> {
  const me = await (
    await fetch(`${s.url}/sluice/v1/me`, { headers: { authorization: `Bearer ${key}` } })
  ).json();
  const get = (id: string) => me.limits.find((l: { id: string }) => l.id === id)?.used as number;
  return { tokens: get('tokens'), conc: get('conc') };
}

/** Waits until the request's audit event (and usage row, when expected) are in the database. */
async function recorded(id: string, usageRows: number) {
  return waitFor(() => {
    const rec = readRecords(s.dataDir);
    const a = rec.audit.filter((e) => e.request_id === id);
    const u = rec.usage.filter((e) => e.request_id === id);
    return a.length >= 1 && u.length >= usageRows ? { audit: a, usage: u, all: rec } : undefined;
  });
}

describe('upstream faults', () => {
  it('an upstream that never sends headers: 504 SLUICE_UPSTREAM_TIMEOUT, reservation refunded', async () => {
    const before = await limitUse();
    const { r, id, text } = await chat('hang-1');
    expect(r.status).toBe(504);
    expect(isWireError('openai', JSON.parse(text))).toBe(true);
    expect(JSON.parse(text).error.code).toBe('SLUICE_UPSTREAM_TIMEOUT');
    const rec = (await recorded(id, 0))!;
    expect(rec.audit).toHaveLength(1);
    expect(rec.audit[0]).toMatchObject({ decision: 'error', reason: 'SLUICE_UPSTREAM_TIMEOUT' });
    expect(rec.usage).toHaveLength(0);
    const after = await waitFor(async () => {
      const u = await limitUse();
      return u.conc === 0 && u.tokens <= before.tokens + 1 ? u : undefined;
    });
    expect(after).toBeDefined();
  });

  it('an upstream that resets the connection: 502 SLUICE_UPSTREAM_ERROR, reservation refunded', async () => {
    const before = await limitUse();
    const { r, id, text } = await chat('reset-1');
    expect(r.status).toBe(502);
    expect(JSON.parse(text).error.code).toBe('SLUICE_UPSTREAM_ERROR');
    // Bytes had been sent: never retried (a retry could charge the caller twice).
    expect(stub.received.filter((x) => x.model === 'reset-1')).toHaveLength(1);
    const rec = (await recorded(id, 0))!;
    expect(rec.audit).toHaveLength(1);
    expect(rec.usage).toHaveLength(0);
    const after = await waitFor(async () => {
      const u = await limitUse();
      return u.conc === 0 && u.tokens <= before.tokens + 1 ? u : undefined;
    });
    expect(after).toBeDefined();
  });

  it.each([
    ['break-1', 'resets after 5 chunks'],
    ['stall-1', 'goes silent after 3 chunks'],
  ])(
    'a stream that %s (%s) ends with a well-formed error event; usage = what was produced',
    async (model) => {
      const before = await limitUse();
      const { r, id, text } = await chat(model, true);
      expect(r.status).toBe(200);
      const events = sseData(text);
      const chunks = events.slice(0, -1).map((d) => JSON.parse(d));
      expect(chunks.length).toBeGreaterThan(0);
      for (const c of chunks) expect(c.object).toBe('chat.completion.chunk');
      const last = JSON.parse(events.at(-1)!);
      expect(isWireError('openai', last)).toBe(true);
      expect(['SLUICE_UPSTREAM_ERROR', 'SLUICE_UPSTREAM_TIMEOUT']).toContain(last.error.code);
      expect(text.endsWith('\n\n')).toBe(true);

      const rec = (await recorded(id, 1))!;
      expect(rec.audit).toHaveLength(1);
      expect(rec.usage).toHaveLength(1);
      const row = rec.usage[0]!;
      // Output is estimated from the text produced ("hello world " per chunk, 4 chars a token).
      expect(row.output_tokens).toBe(Math.ceil((chunks.length * 12) / 4));
      // The reservation (prompt + 500 max_tokens) was replaced by the usage actually produced.
      const after = await waitFor(async () => {
        const u = await limitUse();
        return u.conc === 0 && u.tokens > before.tokens ? u : undefined;
      });
      expect(after!.tokens - before.tokens).toBeGreaterThanOrEqual(row.input_tokens + row.output_tokens - 1);
      expect(after!.tokens - before.tokens).toBeLessThanOrEqual(row.input_tokens + row.output_tokens + 1);
    },
  );

  it('a healthy call after the faults works (the concurrency slot of 1 is free)', async () => {
    const { r } = await chat('fine-1', true);
    expect(r.status).toBe(200);
  });

  it('nothing lost or double-counted: one audit event per request sent, usage only for answers', async () => {
    // hang and reset produced nothing; the two broken streams and the healthy call did.
    const answered = sent.slice(2);
    const rec = (await waitFor(() => {
      const x = readRecords(s.dataDir);
      const a = countBy(x.audit);
      const u = countBy(x.usage);
      return sent.every((id) => a.has(id)) && answered.every((id) => u.has(id)) ? x : undefined;
    }))!;
    expect(rec).toBeDefined();
    const audit = countBy(rec.audit);
    const usage = countBy(rec.usage);
    for (const id of sent) expect(audit.get(id)).toBe(1);
    expect([...usage.values()].every((n) => n === 1)).toBe(true);
    expect(sent.filter((id) => usage.has(id))).toEqual(answered);
    expect(answered).toHaveLength(3);
    expect(rec.usage.every((u) => u.key_id === keyId)).toBe(true);
  });

  // Regression (src/providers/http-upstream.ts `count`): upstream-reported usage was trusted without
  // a bound, so one answer claiming 1e300 prompt tokens wrote 1e300 into the ledger and settled the
  // key's token limit into a debt it never left (Retry-After ~6e296 s).
  it('regression: an absurd usage report from the upstream does not lock the key out', async () => {
    const k = await createKey(s);
    stub.scripts.set('absurd', {
      status: 200,
      headers: { 'content-type': 'application/json' },
      chunks: [
        JSON.stringify({
          id: 'x',
          object: 'chat.completion',
          choices: [{ index: 0, message: { role: 'assistant', content: 'ok' }, finish_reason: 'stop' }],
          usage: { prompt_tokens: 1e300, completion_tokens: 1 },
        }),
      ],
      end: 'end',
    });
    const call = () =>
      fetch(`${s.url}/v1/chat/completions`, {
        method: 'POST',
        headers: { authorization: `Bearer ${k.key}`, 'content-type': 'application/json' },
        body: JSON.stringify({
          model: 'script-1',
          x_script: 'absurd',
          messages: [{ role: 'user', content: 'x' }],
        }),
      });
    expect((await call()).status).toBe(200);
    // The absurd usage is settled after the answer: poll until this key's concurrency slot is free.
    const settled = await waitFor(async () => {
      const me = await (
        await fetch(`${s.url}/sluice/v1/me`, { headers: { authorization: `Bearer ${k.key}` } })
      ).json();
      return me.limits.find((l: { id: string }) => l.id === 'conc')?.used === 0;
    });
    expect(settled).toBe(true);
    expect((await call()).status).toBe(200);
  });
});
