/**
 * Regression (issue 21): CLI invalidations were never published while Redis was up (the publisher
 * has no offline queue and published before it connected): a key revoked with `sluice keys revoke`
 * kept working for up to a second after the CLI returned. The CLI now waits for its connection and
 * for Redis to accept the publication, so once it returns the running instance has been told.
 *
 *   1. A running instance with Redis pub/sub; a caller keeps the key hot in its cache (a request every
 *      few ms, so the cache entry is never older than the 1 s TTL when the revoke lands).
 *   2. `sluice keys revoke` returns.
 *   3. The very next request, and every one after it, is refused with SLUICE_KEY_REVOKED.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { cli, createKey, type SluiceProcess, startSluice, tempDir, writeConfig } from '../e2e/harness.js';
import { freePort, type PrivateRedis, privateRedis } from '../stores/limit-redis-server.js';

let s: SluiceProcess | undefined;
let redis: PrivateRedis | undefined;
afterAll(async () => {
  await s?.stop();
  await redis?.kill();
});

describe('CLI publications', () => {
  it('regression: `sluice keys revoke` returning means the running instance refuses the key', async () => {
    const port = await freePort();
    redis = privateRedis(port);
    await redis.start();
    const dir = tempDir('sluice-publish-');
    const config = writeConfig(
      dir,
      `upstreams: [{ name: local, kind: mock }]
models: [{ match: "*", upstream: local }]
tiers: { default: {} }
redis: { url: "redis://127.0.0.1:${port}" }
`,
    );
    s = await startSluice({ config, dataDir: dir });
    const { id, key } = await createKey(s);
    const call = async () => {
      const r = await fetch(`${s!.url}/v1/models`, { headers: { authorization: `Bearer ${key}` } });
      const body = await r.text();
      return { status: r.status, body };
    };
    expect((await call()).status).toBe(200);

    // 1. Keep the key hot.
    const outcomes: { at: number; status: number; body: string }[] = [];
    let stop = false;
    const hot = (async () => {
      while (!stop) {
        const at = Date.now(); // when sent: only requests sent after the CLI returned must be refused
        const o = { at, ...(await call()) };
        outcomes.push(o);
        // A client stops at its first refusal; hammering on with a dead key would (rightly) run into
        // the per-address budget of failed authentications (429) instead of the revocation (401).
        if (o.status !== 200) break;
      }
    })();

    // 2. Revoke through the CLI (a separate, short-lived process).
    const r = await cli(['keys', 'revoke', id, '--data-dir', dir, '--config', config]);
    expect(r.code, r.stderr).toBe(0);
    const returnedAt = Date.now();
    expect(r.stderr).not.toContain('redis publish failed');

    // 3. The next request is refused, and so is every request sent after the CLI returned.
    const next = await call();
    stop = true;
    await hot;
    expect(next.status).toBe(401);
    expect(next.body).toContain('SLUICE_KEY_REVOKED');
    const after = outcomes.filter((o) => o.at >= returnedAt);
    expect(after.filter((o) => o.status !== 401)).toEqual([]);
    // The hot loop really did keep the key cached right up to the revoke.
    expect(outcomes.filter((o) => o.status === 200).length).toBeGreaterThan(5);
  }, 60_000);
});
