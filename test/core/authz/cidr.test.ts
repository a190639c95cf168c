import { isIP } from 'node:net';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  clientIp,
  compileCidrs,
  formatIp,
  isValidCidr,
  normalizeIp,
  parseCidr,
  parseIp,
} from '../../../src/core/authz/cidr.js';

// Independent oracle: addresses as BigInt, IPv4 in the mapped range ::ffff:0:0/96, full-length groups.
const MAPPED = 0xffffn << 32n;
const v4Text = (n: bigint) => [24n, 16n, 8n, 0n].map((s) => String((n >> s) & 255n)).join('.');
const v6Full = (n: bigint) =>
  Array.from({ length: 8 }, (_, i) => ((n >> BigInt(112 - i * 16)) & 0xffffn).toString(16)).join(':');
const inRange = (ip: bigint, net: bigint, len: number) => {
  const shift = BigInt(128 - len);
  return ip >> shift === net >> shift;
};
/**
 * Oracle entry in the 128-bit space. IPv4 entries are mapped (::ffff:a.b.c.d/96+len); IPv6 entries match
 * only IPv6 addresses (`::/0` is "all IPv6", not IPv4 too), which the `v` tag enforces.
 */
const oracleEntry = (e: { v: 4 | 6; addr: bigint; len: number }) =>
  e.v === 4 ? { v: 4, net: MAPPED | e.addr, len: e.len + 96 } : { v: 6, net: e.addr, len: e.len };

const arbV4 = fc.bigInt({ min: 0n, max: 0xffffffffn });
const arbV6 = fc.bigInt({ min: 0n, max: (1n << 128n) - 1n }).filter((n) => n >> 32n !== 0xffffn);
const arbEntry = fc.oneof(
  fc.record({ v: fc.constant(4 as const), addr: arbV4, len: fc.integer({ min: 0, max: 32 }) }),
  fc.record({ v: fc.constant(6 as const), addr: arbV6, len: fc.integer({ min: 0, max: 128 }) }),
);
const entryText = (e: { v: 4 | 6; addr: bigint; len: number }) =>
  e.v === 4 ? `${v4Text(e.addr)}/${e.len}` : `${v6Full(e.addr)}/${e.len}`;

describe('parseIp and formatIp', () => {
  it('parses IPv4 and refuses malformed IPv4', () => {
    expect(parseIp('10.1.2.3')).toBe(0x0a010203);
    expect(parseIp('255.255.255.255')).toBe(0xffffffff);
    for (const bad of ['256.0.0.1', '1.2.3', '1.2.3.4.5', '01.2.3.4', '1..2.3', '', 'a.b.c.d', '1.2.3.4 ']) {
      expect(parseIp(bad), bad).toBeNull();
    }
  });

  it('parses IPv6 forms and treats IPv4-mapped IPv6 as IPv4', () => {
    expect(parseIp('::')).toEqual([0, 0, 0, 0]);
    expect(parseIp('::1')).toEqual([0, 0, 0, 1]);
    expect(parseIp('2001:DB8::1')).toEqual([0x20010db8, 0, 0, 1]);
    expect(parseIp('::ffff:1.2.3.4')).toBe(0x01020304);
    expect(parseIp('::ffff:0102:0304')).toBe(0x01020304);
    expect(parseIp('64:ff9b::1.2.3.4')).toEqual([0x0064ff9b, 0, 0, 0x01020304]);
    expect(parseIp('fe80::1%eth0')).toEqual([0xfe800000, 0, 0, 1]);
    for (const bad of [
      ':::',
      '1::2::3',
      '1:2:3:4:5:6:7:8:9',
      '12345::',
      'g::1',
      '1:2:3:4:5:6:7',
      '::1.2.3',
    ]) {
      expect(parseIp(bad), bad).toBeNull();
    }
  });

  it('agrees with node:net on which random strings are addresses', () => {
    fc.assert(
      fc.property(fc.stringMatching(/^[0-9a-fA-F:.]{0,20}$/), (s) => {
        // node:net accepts leading-zero IPv4 octets inside IPv6; we refuse them everywhere (ambiguous).
        if (/(^|[.:])0\d/.test(s) && s.includes('.')) return;
        expect(parseIp(s) !== null).toBe(isIP(s) !== 0);
      }),
      { numRuns: 3000 },
    );
  });

  it('formats canonically: IPv6 like the WHATWG URL parser, round-tripping every address', () => {
    fc.assert(
      fc.property(arbV6, (n) => {
        const canon = new URL(`http://[${v6Full(n)}]/`).hostname.slice(1, -1);
        expect(normalizeIp(v6Full(n))).toBe(canon);
        expect(parseIp(formatIp(parseIp(canon)!))).toEqual(parseIp(v6Full(n)));
      }),
      { numRuns: 500 },
    );
    fc.assert(
      fc.property(arbV4, (n) => {
        expect(formatIp(parseIp(v4Text(n))!)).toBe(v4Text(n));
      }),
    );
  });
});

describe('compileCidrs', () => {
  it('matches exactly like a BigInt oracle for small and large mixed lists', () => {
    fc.assert(
      fc.property(
        fc.array(arbEntry, { minLength: 0, maxLength: 40 }),
        fc.array(
          fc.oneof(
            arbV4.map((a) => ({ v: 4 as const, a })),
            arbV6.map((a) => ({ v: 6 as const, a })),
          ),
          {
            maxLength: 20,
          },
        ),
        fc.array(fc.nat(), { maxLength: 10 }),
        (entries, ips, picks) => {
          const m = compileCidrs(entries.map(entryText));
          const oracle = entries.map(oracleEntry);
          // Addresses inside the entries too, so matches are common, not just misses.
          const near = entries.length
            ? picks.map((i) => {
                const e = entries[i % entries.length]!;
                return { v: e.v, a: e.addr };
              })
            : [];
          for (const { v, a } of [...ips, ...near]) {
            const text = v === 4 ? v4Text(a) : v6Full(a);
            const big = v === 4 ? MAPPED | a : a;
            expect(m.has(text), `${text} in ${entries.map(entryText)}`).toBe(
              oracle.some((o) => o.v === v && inRange(big, o.net, o.len)),
            );
          }
        },
      ),
      { numRuns: 300 },
    );
  });

  it('treats mapped IPv6 entries and addresses as IPv4', () => {
    const m = compileCidrs(['::ffff:10.0.0.0/104', '2001:db8::/32']);
    expect(m.has('10.9.8.7')).toBe(true);
    expect(m.has('::ffff:10.9.8.7')).toBe(true);
    expect(m.has('11.0.0.1')).toBe(false);
    expect(m.has('2001:db8:ffff::1')).toBe(true);
    expect(m.has('2001:db9::1')).toBe(false);
    expect(m.has('not an ip')).toBe(false);
    expect(compileCidrs(['0.0.0.0/0']).has('::1')).toBe(false);
  });

  it('refuses invalid entries by name, or skips them when lenient', () => {
    expect(() => compileCidrs(['10.0.0.0/8', '10.0.0.0/33', 'nope'])).toThrow(/"10.0.0.0\/33", "nope"/);
    expect(compileCidrs(['nope', '10.0.0.0/8'], { lenient: true }).size).toBe(1);
    expect(isValidCidr('2001:db8::/129')).toBe(false);
    expect(parseCidr('10.1.2.3/8')).toEqual({ v: 4, len: 8, net: 0x0a000000 });
  });
});

describe('clientIp', () => {
  const trusted = compileCidrs(['10.0.0.0/8', 'fd00::/8']);

  it('ignores X-Forwarded-For from an untrusted peer (spoofing)', () => {
    expect(clientIp('203.0.113.9', '10.1.1.1, 198.51.100.1', trusted)).toBe('203.0.113.9');
    expect(clientIp('::ffff:203.0.113.9', '1.1.1.1', trusted)).toBe('203.0.113.9');
  });

  it('walks right to left through trusted proxies only', () => {
    // client 198.51.100.7 -> proxy 10.0.0.2 -> proxy 10.0.0.1 (peer); the leftmost entry is client-supplied.
    expect(clientIp('10.0.0.1', '6.6.6.6, 198.51.100.7, 10.0.0.2', trusted)).toBe('198.51.100.7');
    expect(clientIp('::ffff:10.0.0.1', ['6.6.6.6, 198.51.100.7', '10.0.0.2'], trusted)).toBe('198.51.100.7');
    expect(clientIp('fd00::1', '[2001:db8::5]:443, fd00::2', trusted)).toBe('2001:db8::5');
    expect(clientIp('10.0.0.1', '198.51.100.7:5555', trusted)).toBe('198.51.100.7');
  });

  it('stops at the last vouched address on garbage, and at the leftmost when all hops are trusted', () => {
    expect(clientIp('10.0.0.1', 'garbage, 10.0.0.3', trusted)).toBe('10.0.0.3');
    expect(clientIp('10.0.0.1', '10.0.0.4, 10.0.0.3', trusted)).toBe('10.0.0.4');
    expect(clientIp('10.0.0.1', undefined, trusted)).toBe('10.0.0.1');
    expect(clientIp('10.0.0.1', '1.2.3.4', compileCidrs([]))).toBe('10.0.0.1');
  });
});
