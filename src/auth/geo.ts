/**
 * Country of an address from a MaxMind-format database (GeoLite2-Country/City or any MMDB with
 * `country.iso_code`), read with the `maxmind` package. Optional: without `geo.database` no lookup
 * exists, and the access policy refuses country rules at config check.
 */
import maxmind, { type Reader, type Response } from 'maxmind';
import { formatIp, parseIp } from '../core/authz/cidr.js';

interface CountryRecord {
  country?: { iso_code?: string };
  registered_country?: { iso_code?: string };
}

export interface GeoOptions {
  /** Reopen the file when it changes on disk (maxmind's own watcher); default false. */
  watch?: boolean;
  /** Decoded records kept in maxmind's LRU; default 10 000. */
  cacheSize?: number;
}

/** Country lookups; `country` never throws and returns null for unknown, private or malformed addresses. */
export interface CountryLookup {
  country(ip: string): string | null;
}

export class GeoLookup implements CountryLookup {
  private constructor(private readonly reader: Reader<Response>) {}

  /** Opens the database; throws if the file is missing or not an MMDB (config check should fail). */
  static async open(path: string, opts: GeoOptions = {}): Promise<GeoLookup> {
    const reader = await maxmind.open<Response>(path, {
      watchForUpdates: opts.watch ?? false,
      watchForUpdatesNonPersistent: true,
      cache: { max: opts.cacheSize ?? 10_000 },
    });
    return new GeoLookup(reader);
  }

  /** ISO 3166-1 alpha-2 code in upper case (the country, else the registered country), or null. */
  country(ip: string): string | null {
    // Canonical form first: IPv4-mapped IPv6 (`::ffff:1.2.3.4`) is looked up as IPv4.
    const p = parseIp(ip);
    if (p === null) return null;
    let rec: CountryRecord | null;
    try {
      rec = this.reader.get(formatIp(p)) as CountryRecord | null;
    } catch {
      return null;
    }
    const code = rec?.country?.iso_code ?? rec?.registered_country?.iso_code;
    return typeof code === 'string' ? code.toUpperCase() : null;
  }

  /** What kind of database this is, for `sluice doctor` (e.g. `GeoLite2-Country`). */
  get databaseType(): string {
    return this.reader.metadata.databaseType;
  }
}
