import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GeoLookup } from '../../src/auth/geo.js';
import { buildCountryMmdb } from './mmdb-fixture.js';

let dir: string;
let geo: GeoLookup;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'sluice-geo-'));
  const file = join(dir, 'country.mmdb');
  await writeFile(
    file,
    buildCountryMmdb([
      { cidr: '2.0.0.0/8', country: 'FR' },
      { cidr: '2.16.0.0/13', country: 'DE' },
      { cidr: '81.2.69.142/32', country: 'GB' },
    ]),
  );
  geo = await GeoLookup.open(file);
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('GeoLookup', () => {
  it('resolves countries, most specific network first', () => {
    expect(geo.databaseType).toBe('Sluice-Test-Country');
    expect(geo.country('2.1.2.3')).toBe('FR');
    expect(geo.country('2.17.0.1')).toBe('DE');
    expect(geo.country('81.2.69.142')).toBe('GB');
    expect(geo.country('81.2.69.143')).toBeNull();
    expect(geo.country('::ffff:2.1.2.3')).toBe('FR');
  });

  it('returns null instead of throwing for malformed or out-of-database addresses', () => {
    expect(geo.country('not an ip')).toBeNull();
    expect(geo.country('2001:db8::1')).toBeNull();
  });

  it('fails to open a file that is not an MMDB', async () => {
    const bad = join(dir, 'bad.mmdb');
    await writeFile(bad, 'hello');
    await expect(GeoLookup.open(bad)).rejects.toThrow();
    await expect(GeoLookup.open(join(dir, 'missing.mmdb'))).rejects.toThrow();
  });
});
