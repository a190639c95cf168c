/**
 * `kill -9` in the middle of a load, then a restart on the same data dir:
 *   1. the server comes back and serves;
 *   2. every audit event and usage row that was durable before the kill is still there, unchanged;
 *   3. nothing is double-counted or invented (each usage row and audit event belongs to one request sent);
 *   4. `sluice audit verify` accepts the chain, which continues across the crash;
 *   5. regression (issue 21: ~1.5 % of acknowledged requests had no usage row): every request
 *      acknowledged with a 200 before the kill has its usage row and its audit event (the local
 *      journal is written back at the restart).
 */
import { Agent, fetch as undiciFetch } from 'undici';
import { afterAll, describe, expect, it } from 'vitest';
import { cli, createKey, type SluiceProcess, startSluice, tempDir, writeConfig } from '../e2e/harness.js';
import { countBy, readRecords, sleep, waitFor } from './support.js';

let s: SluiceProcess | undefined;
afterAll(async () => {
  await s?.stop();
});

interface Sent {
  id: string | null;
  status: number | 'error';
}

/** Runs `workers` callers in a loop until `stop` is set; each call's request id and outcome is kept. */
function load(
  url: string,
  key: string,
  workers: number,
  stop: { now: boolean },
  sent: Sent[] = [],
): Promise<Sent[]> {
  const agent = new Agent({ connections: workers });
  const worker = async (w: number) => {
    for (let i = 0; !stop.now; i++) {
      const stream = (i + w) % 3 === 0;
      // The client names each request (x-request-id), so even a request whose answer was lost is known.
      const id = `crash-${w}-${i}`;
      try {
        const r = await undiciFetch(`${url}/v1/chat/completions`, {
          method: 'POST',
          dispatcher: agent,
          headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json', 'x-request-id': id },
          body: JSON.stringify({
            model: 'demo-model',
            stream,
            messages: [{ role: 'user', content: `n${i}` }],
          }),
        });
        await r.text();
        sent.push({ id: r.headers.get('x-request-id'), status: r.status });
      } catch {
        sent.push({ id, status: 'error' });
        await sleep(20); // the client backs off before its next call
      }
    }
  };
  return Promise.all(Array.from({ length: workers }, (_, w) => worker(w))).then(async () => {
    await agent.destroy();
    return sent;
  });
}

describe('kill -9 mid-load and restart', () => {
  it('loses no durable record, double-counts nothing, and the audit chain verifies', async () => {
    const dir = tempDir('sluice-crash-');
    const config = writeConfig(
      dir,
      `upstreams: [{ name: local, kind: mock, tokenDelay: 2ms, replyWords: 8 }]
models: [{ match: "*", upstream: local }]
tiers: { default: { limits: [{ id: rpm, requests: 100000, window: 1m }] } }
audit: { flushEvery: 50ms }
`,
    );
    s = await startSluice({ config, dataDir: dir });
    const { key } = await createKey(s);

    // 1. Load, then a snapshot of what is durable, then SIGKILL while the load still runs.
    const stop = { now: false };
    const sent: Sent[] = [];
    const running = load(s.url, key, 6, stop, sent);
    // Enough acknowledged traffic that some of it is durable in the database and some only in the journal.
    await waitFor(() => sent.filter((x) => x.status === 200).length >= 150, 25_000);
    // Some of it durable in the database (polled), the rest still only in the journal.
    const durable =
      (await waitFor(() => {
        const r = readRecords(dir);
        return r.audit.length > 20 ? r : undefined;
      }, 10_000)) ?? readRecords(dir);
    s.proc.kill('SIGKILL');
    await s.exited;
    // The load sees the crash (a failed call) before it stops.
    const atKill = sent.length;
    await waitFor(() => sent.slice(atKill).some((x) => x.status === 'error'), 5000);
    stop.now = true;
    const before = await running;
    expect(durable.audit.length).toBeGreaterThan(20);
    expect(before.filter((x) => x.status === 200).length).toBeGreaterThan(20);

    // 2. Restart on the same data dir: it serves again.
    s = await startSluice({ config, dataDir: dir });
    const again = await fetch(`${s.url}/v1/chat/completions`, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${key}`,
        'content-type': 'application/json',
        'x-request-id': 'after-restart',
      },
      body: JSON.stringify({ model: 'demo-model', messages: [{ role: 'user', content: 'back?' }] }),
    });
    expect(again.status).toBe(200);
    expect(await s.stop()).toBe(0);
    s = undefined;

    // 3. Everything durable before the kill is still there, byte for byte.
    const after = readRecords(dir);
    const hashes = new Map(after.audit.map((e) => [`${e.instance}/${e.seq}`, (e as { hash?: string }).hash]));
    for (const e of durable.audit) {
      expect(hashes.get(`${e.instance}/${e.seq}`)).toBe((e as { hash?: string }).hash);
    }
    const usageIds = new Set(after.usage.map((u) => u.request_id));
    for (const u of durable.usage) expect(usageIds.has(u.request_id)).toBe(true);

    // 4. Nothing double-counted, nothing invented: each row belongs to exactly one request we sent.
    const sentIds = new Set([...before.map((x) => x.id), 'after-restart']);
    const usage = countBy(after.usage);
    const audit = countBy(after.audit.filter((e) => e.action === 'chat.create'));
    for (const [id, n] of usage) {
      expect(sentIds.has(id), `usage row for unknown request ${id}`).toBe(true);
      expect(n).toBe(1);
    }
    for (const [id, n] of audit) {
      expect(sentIds.has(id), `audit event for unknown request ${id}`).toBe(true);
      expect(n).toBe(1);
    }
    // (Usage and audit are separate group commits: a kill can land between a request's two
    // records, so a durable usage row does not imply a durable audit event, nor the reverse.)
    expect(usage.get('after-restart')).toBe(1);
    expect(audit.get('after-restart')).toBe(1);

    // 5. Acknowledged means recorded: every 200 has its usage row and its audit event.
    const acked = before.filter((x) => x.status === 200).map((x) => x.id!);
    const lostUsage = acked.filter((id) => usage.get(id) !== 1);
    const lostAudit = acked.filter((id) => audit.get(id) !== 1);
    console.log(
      `[crash] acknowledged ${acked.length}, without usage row ${lostUsage.length}, without audit event ${lostAudit.length}`,
    );
    expect(lostUsage).toEqual([]);
    expect(lostAudit).toEqual([]);

    // 6. The chain verifies across the crash.
    const v = await cli(['audit', 'verify', '--data-dir', dir, '--config', config]);
    expect(v.code, v.stdout + v.stderr).toBe(0);
    expect(v.stdout).toMatch(/^ok /m);
  }, 90_000);
});
