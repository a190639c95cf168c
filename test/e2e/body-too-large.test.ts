/**
 * Regression (issue 10): a body over `hardening.maxBodyBytes` was answered by a reset connection;
 * the openai SDK saw EPIPE, reported APIConnectionError and sent the 12 MB again. The 413 must be
 * readable: `sluice serve` as a process, the real `openai` SDK, requests counted at the server
 * (the audit log has one event per request that reached it).
 */
import OpenAI, { APIConnectionError, APIError } from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readRecords } from '../faults/support.js';
import { createKey, type SluiceProcess, startSluice } from './harness.js';

describe('a 12 MB body against the default 4 MiB cap', () => {
  let s: SluiceProcess;
  let key: string;
  beforeAll(async () => {
    s = await startSluice();
    key = (await createKey(s)).key;
  }, 60_000);
  afterAll(async () => {
    await s?.stop();
  });

  it('the openai SDK surfaces APIError 413, not APIConnectionError, and does not retry', async () => {
    const client = new OpenAI({ apiKey: key, baseURL: `${s.url}/v1`, maxRetries: 2 });
    const big = 'x'.repeat(12 * 1024 * 1024);
    let caught: unknown;
    for (let i = 0; i < 3; i++) {
      caught = undefined;
      try {
        await client.chat.completions.create({
          model: 'demo-model',
          messages: [{ role: 'user', content: big }],
        });
      } catch (err) {
        caught = err;
      }
      expect(caught).not.toBeInstanceOf(APIConnectionError);
      expect(caught).toBeInstanceOf(APIError);
      expect((caught as APIError).status).toBe(413);
    }
    await s.stop();
    const refused = readRecords(s.dataDir).audit.filter((e) => e.reason === 'SLUICE_BODY_TOO_LARGE');
    // Three calls, three requests: none was retried.
    expect(refused).toHaveLength(3);
  }, 60_000);
});
