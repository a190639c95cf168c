/**
 * `sluice tenants tier` as a process (built CLI, `node scripts/build.mjs` first) on a SQLite data dir:
 * shows, pins, refuses an unknown tier, unpins; each override is in the audit trail.
 */
import { describe, expect, it } from 'vitest';
import { cli, createKey, tempDir, writeConfig } from '../e2e/harness.js';

describe('sluice tenants tier', () => {
  it('shows, pins, refuses an unknown tier, unpins', async () => {
    const dir = tempDir('sluice-tenants-cli-');
    const config = writeConfig(
      dir,
      `upstreams: [{ name: local, kind: mock }]
models: [{ match: "*", upstream: local }]
tiers: { bronze: {}, silver: {} }
promotion: { ladder: [bronze, silver], rules: { silver: { minRequests: 10 } } }
storage: { dataDir: ${JSON.stringify(`${dir}/data`)} }
`,
    );
    const run = (...args: string[]) => cli(['tenants', 'tier', ...args, '--config', config]);
    await createKey({ dataDir: `${dir}/data`, configFile: config }, [], 'acme', 'bronze');
    expect((await run()).stdout).toBe('no tenant has an earned or pinned tier yet\n');
    const set = await run('acme', '--set', 'silver');
    expect(set.code).toBe(0);
    expect(set.stdout).toMatch(/^acme: silver \(pinned\) since \S+ — set by cli/);
    const bad = await run('acme', '--set', 'platinum');
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toContain('unknown tier "platinum" (the policy has: bronze, silver)');
    expect((await run('nobody', '--set', 'silver')).stderr).toContain('no tenant "nobody"');
    const un = JSON.parse((await run('acme', '--unpin', '--json')).stdout);
    expect(un).toMatchObject({ tenantId: 'acme', tier: 'silver', pinned: false });
    const audit = await cli(['audit', 'export', '--config', config]);
    expect(audit.stdout).toContain('cli.tenants.tier.set');
    expect(audit.stdout).toContain('cli.tenants.tier.unpin');
  }, 120_000);
});
