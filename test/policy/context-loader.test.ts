/**
 * ContextLoader (src/wiring/policy.ts) loads the context services a policy names; the geo database
 * code (maxmind) is imported only then, so this pins that the deferred import still yields a working
 * lookup, kept across a reload with the same setting and dropped when the setting goes.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigSchema } from '../../src/config/schema.js';
import { ContextLoader } from '../../src/wiring/policy.js';
import { buildCountryMmdb } from '../auth/mmdb-fixture.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'sluice-context-'));
  await writeFile(join(dir, 'country.mmdb'), buildCountryMmdb([{ cidr: '2.0.0.0/8', country: 'FR' }]));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const config = (geo?: { database: string }) =>
  ConfigSchema.parse({
    upstreams: [{ name: 'm', kind: 'mock' }],
    models: [{ match: '*', upstream: 'm' }],
    tiers: { default: {} },
    ...(geo ? { geo } : {}),
  });

describe('ContextLoader', () => {
  it('opens the geo database a policy names (relative to the config file), keeps it, drops it', async () => {
    const loader = new ContextLoader(dir);
    // 1. A policy naming the database: countries resolve.
    const first = await loader.load(config({ database: 'country.mmdb' }));
    expect(first.geo?.country('2.1.2.3')).toBe('FR');
    expect(first.geo?.country('81.2.69.142')).toBeNull();
    // 2. A reload with the same setting keeps the same lookup.
    expect((await loader.load(config({ database: 'country.mmdb' }))).geo).toBe(first.geo);
    // 3. A policy without it: no lookup.
    expect((await loader.load(config())).geo).toBeNull();
  });
});
