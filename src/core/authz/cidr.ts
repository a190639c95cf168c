/**
 * IP addresses and CIDR sets, parsed by hand (no allocation for IPv4) and compiled once.
 *
 * An IPv4 address is a uint32 `number`; an IPv6 address is four uint32 words. IPv4-mapped IPv6
 * (`::ffff:1.2.3.4`, which is what Node reports on dual-stack sockets) is treated as the IPv4 address,
 * both in addresses and in CIDR entries (`::ffff:10.0.0.0/104` is `10.0.0.0/8`). Other IPv6 entries
 * match IPv6 addresses only: `::/0` means "all IPv6", not "everything".
 */

/** Four uint32 words, most significant first. */
export type Ip6 = readonly [number, number, number, number];
/** A parsed address: IPv4 as a uint32 number, IPv6 as four words. */
export type ParsedIp = number | Ip6;

function parseIPv4(s: string, start = 0, end = s.length): number | null {
  let out = 0;
  let octet = 0;
  let digits = 0;
  let parts = 0;
  for (let i = start; i < end; i++) {
    const c = s.charCodeAt(i);
    if (c === 46 /* . */) {
      if (digits === 0) return null;
      out = out * 256 + octet;
      parts++;
      if (parts > 3) return null;
      octet = 0;
      digits = 0;
    } else if (c >= 48 && c <= 57) {
      // Leading zeros are refused: `010` is octal to some parsers and decimal to others.
      if (digits > 0 && octet === 0) return null;
      octet = octet * 10 + (c - 48);
      if (octet > 255) return null;
      digits++;
    } else {
      return null;
    }
  }
  if (digits === 0 || parts !== 3) return null;
  return out * 256 + octet;
}

function hexGroup(s: string, start: number, end: number): number {
  const len = end - start;
  if (len < 1 || len > 4) return -1;
  let v = 0;
  for (let i = start; i < end; i++) {
    const c = s.charCodeAt(i);
    let d: number;
    if (c >= 48 && c <= 57) d = c - 48;
    else if (c >= 97 && c <= 102) d = c - 87;
    else if (c >= 65 && c <= 70) d = c - 55;
    else return -1;
    v = v * 16 + d;
  }
  return v;
}

/** Parses the groups of one side of `::` into `out`; returns the count of 16-bit groups or -1. */
function parseGroups(s: string, start: number, end: number, out: number[], allowV4Tail: boolean): number {
  if (start === end) return 0;
  let n = 0;
  let from = start;
  for (let i = start; i <= end; i++) {
    if (i === end || s.charCodeAt(i) === 58 /* : */) {
      if (i === end && allowV4Tail && s.indexOf('.', from) !== -1 && s.indexOf('.', from) < end) {
        const v4 = parseIPv4(s, from, end);
        if (v4 === null) return -1;
        out.push(Math.floor(v4 / 65536), v4 % 65536);
        return n + 2;
      }
      const g = hexGroup(s, from, i);
      if (g < 0) return -1;
      out.push(g);
      n++;
      from = i + 1;
    }
  }
  return n;
}

function parseIPv6(s: string): Ip6 | null {
  const dbl = s.indexOf('::');
  const groups: number[] = [];
  if (dbl === -1) {
    if (parseGroups(s, 0, s.length, groups, true) !== 8) return null;
  } else {
    if (s.indexOf('::', dbl + 1) !== -1) return null;
    const head: number[] = [];
    const tail: number[] = [];
    const h = parseGroups(s, 0, dbl, head, false);
    const t = parseGroups(s, dbl + 2, s.length, tail, true);
    if (h < 0 || t < 0 || h + t > 7) return null;
    groups.push(...head);
    for (let i = h + t; i < 8; i++) groups.push(0);
    groups.push(...tail);
  }
  return [
    (groups[0]! * 65536 + groups[1]!) >>> 0,
    (groups[2]! * 65536 + groups[3]!) >>> 0,
    (groups[4]! * 65536 + groups[5]!) >>> 0,
    (groups[6]! * 65536 + groups[7]!) >>> 0,
  ];
}

/**
 * Parses an IPv4 or IPv6 address (zone ids `%eth0` are dropped). IPv4-mapped IPv6 becomes IPv4.
 * Returns null when the text is not an address; never throws.
 */
export function parseIp(text: string): ParsedIp | null {
  if (text.indexOf(':') === -1) return parseIPv4(text);
  const pct = text.indexOf('%');
  const w = parseIPv6(pct === -1 ? text : text.slice(0, pct));
  if (w === null) return null;
  if (w[0] === 0 && w[1] === 0 && w[2] === 0xffff) return w[3];
  return w;
}

/** Canonical text of a parsed address: dotted IPv4, RFC 5952 IPv6 (lower case, longest zero run as `::`). */
export function formatIp(ip: ParsedIp): string {
  if (typeof ip === 'number') return `${ip >>> 24}.${(ip >>> 16) & 255}.${(ip >>> 8) & 255}.${ip & 255}`;
  const g: number[] = [];
  for (const w of ip) g.push(w >>> 16, w & 0xffff);
  let bestStart = -1;
  let bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (g[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLen && j - i > 1) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = g.map((x) => x.toString(16));
  if (bestStart === -1) return hex.join(':');
  return `${hex.slice(0, bestStart).join(':')}::${hex.slice(bestStart + bestLen).join(':')}`;
}

/** Normalises an address to its canonical text, or null when it is not an address. */
export function normalizeIp(text: string): string | null {
  const p = parseIp(text);
  return p === null ? null : formatIp(p);
}

export interface Cidr {
  v: 4 | 6;
  /** Prefix length in the address family of `v` (mapped IPv6 entries are converted to IPv4). */
  len: number;
  /** Network (host bits cleared): uint32 for v4, four words for v6. */
  net: ParsedIp;
}

/** Parses `addr/len` or a bare address (a /32 or /128). Host bits are cleared. Null when invalid. */
export function parseCidr(text: string): Cidr | null {
  const t = text.trim();
  const slash = t.indexOf('/');
  const addrText = slash === -1 ? t : t.slice(0, slash);
  let len: number | null = null;
  if (slash !== -1) {
    const lt = t.slice(slash + 1);
    if (!/^\d{1,3}$/.test(lt)) return null;
    len = Number(lt);
  }
  if (addrText.indexOf(':') === -1) {
    const a = parseIPv4(addrText);
    if (a === null) return null;
    const l = len ?? 32;
    if (l > 32) return null;
    return { v: 4, len: l, net: (a & mask4(l)) >>> 0 };
  }
  const w = parseIPv6(addrText);
  if (w === null) return null;
  const l = len ?? 128;
  if (l > 128) return null;
  if (w[0] === 0 && w[1] === 0 && w[2] === 0xffff && l >= 96) {
    return { v: 4, len: l - 96, net: (w[3] & mask4(l - 96)) >>> 0 };
  }
  return { v: 6, len: l, net: mask6(w, l) };
}

/** True when `text` is a valid CIDR or address; for validating key records on write. */
export function isValidCidr(text: string): boolean {
  return parseCidr(text) !== null;
}

function mask4(len: number): number {
  return len === 0 ? 0 : (0xffffffff << (32 - len)) >>> 0;
}

function mask6(w: Ip6, len: number): Ip6 {
  const out = [0, 0, 0, 0];
  for (let i = 0; i < 4; i++) {
    const bits = Math.max(0, Math.min(32, len - i * 32));
    out[i] = (w[i]! & mask4(bits)) >>> 0;
  }
  return out as unknown as Ip6;
}

/** A compiled set of CIDR ranges. `has` never throws: an unparseable address is simply not in the set. */
export interface CidrMatcher {
  has(ip: string): boolean;
  hasParsed(ip: ParsedIp): boolean;
  /** Number of entries compiled in. */
  readonly size: number;
}

/** Up to this many entries per family a linear scan beats hashing (no string keys, no allocation). */
const LINEAR_MAX = 16;

class CidrSet implements CidrMatcher {
  readonly size: number;
  // Small lists: parallel arrays scanned linearly.
  private readonly v4Net: number[] = [];
  private readonly v4Mask: number[] = [];
  private readonly v6List: Cidr[] = [];
  // Large lists: one hash set per distinct prefix length.
  private readonly v4ByLen: { len: number; set: Set<number> }[] = [];
  private readonly v6ByLen: { len: number; set: Set<string> }[] = [];
  private readonly v4Linear: boolean;
  private readonly v6Linear: boolean;

  constructor(entries: Cidr[]) {
    this.size = entries.length;
    const v4 = entries.filter((e) => e.v === 4);
    const v6 = entries.filter((e) => e.v === 6);
    this.v4Linear = v4.length <= LINEAR_MAX;
    this.v6Linear = v6.length <= LINEAR_MAX;
    if (this.v4Linear) {
      for (const e of v4) {
        this.v4Net.push(e.net as number);
        this.v4Mask.push(mask4(e.len));
      }
    } else {
      const by = new Map<number, Set<number>>();
      for (const e of v4) {
        const s = by.get(e.len) ?? new Set<number>();
        by.set(e.len, s);
        s.add(key4(e.net as number, e.len));
      }
      for (const [len, set] of [...by].sort((a, b) => b[0] - a[0])) this.v4ByLen.push({ len, set });
    }
    if (this.v6Linear) {
      this.v6List.push(...v6);
    } else {
      const by = new Map<number, Set<string>>();
      for (const e of v6) {
        const s = by.get(e.len) ?? new Set<string>();
        by.set(e.len, s);
        s.add(key6(e.net as Ip6, e.len));
      }
      for (const [len, set] of [...by].sort((a, b) => b[0] - a[0])) this.v6ByLen.push({ len, set });
    }
  }

  has(ip: string): boolean {
    const p = parseIp(ip);
    return p !== null && this.hasParsed(p);
  }

  hasParsed(ip: ParsedIp): boolean {
    if (typeof ip === 'number') {
      if (this.v4Linear) {
        const nets = this.v4Net;
        const masks = this.v4Mask;
        for (let i = 0; i < nets.length; i++) if ((ip & masks[i]!) >>> 0 === nets[i]) return true;
        return false;
      }
      for (const { len, set } of this.v4ByLen) if (set.has(key4(ip, len))) return true;
      return false;
    }
    if (this.v6Linear) {
      for (const e of this.v6List) if (in6(ip, e.net as Ip6, e.len)) return true;
      return false;
    }
    for (const { len, set } of this.v6ByLen) if (set.has(key6(ip, len))) return true;
    return false;
  }
}

function key4(ip: number, len: number): number {
  return len === 0 ? 0 : ip >>> (32 - len);
}

function key6(ip: Ip6, len: number): string {
  let k = '';
  for (let i = 0; i < 4 && len > i * 32; i++) {
    const bits = Math.min(32, len - i * 32);
    k += `${(ip[i]! & mask4(bits)) >>> 0}.`;
  }
  return k;
}

function in6(ip: Ip6, net: Ip6, len: number): boolean {
  for (let i = 0; i < 4; i++) {
    const bits = len - i * 32;
    if (bits <= 0) return true;
    const m = mask4(Math.min(bits, 32));
    if ((ip[i]! & m) >>> 0 !== net[i]) return false;
  }
  return true;
}

export class CidrError extends Error {
  constructor(readonly invalid: string[]) {
    super(`not an IP address or CIDR range: ${invalid.map((s) => JSON.stringify(s)).join(', ')}`);
    this.name = 'CidrError';
  }
}

/**
 * Compiles a list of CIDR ranges or addresses (IPv4 and IPv6 mixed) once.
 * Throws CidrError naming every invalid entry, unless `lenient`: then invalid entries are skipped
 * (used for records read back from storage, which were validated on write).
 */
export function compileCidrs(list: readonly string[], opts: { lenient?: boolean } = {}): CidrMatcher {
  const entries: Cidr[] = [];
  const invalid: string[] = [];
  for (const s of list) {
    const c = parseCidr(s);
    if (c) entries.push(c);
    else invalid.push(s);
  }
  if (invalid.length > 0 && !opts.lenient) throw new CidrError(invalid);
  return new CidrSet(entries);
}

/** Strips a port (`1.2.3.4:80`, `[2001:db8::1]:443`) and brackets from a forwarded address. */
function stripPort(s: string): string {
  if (s.charCodeAt(0) === 91 /* [ */) {
    const close = s.indexOf(']');
    return close === -1 ? s : s.slice(1, close);
  }
  const colon = s.indexOf(':');
  if (colon !== -1 && s.indexOf(':', colon + 1) === -1) return s.slice(0, colon);
  return s;
}

/** More hops than this in X-Forwarded-For are not walked: no real proxy chain is that long. */
const MAX_FORWARDED_HOPS = 32;

/**
 * The client's address: starting from the socket peer, walk `X-Forwarded-For` right to left while the
 * current hop is a trusted proxy. The first untrusted address is the client. A header sent by an
 * untrusted peer is ignored entirely (it could say anything). An unparseable entry stops the walk at the
 * last address that a trusted hop vouched for. Returns canonical text (IPv4-mapped IPv6 as IPv4).
 */
export function clientIp(
  remoteAddress: string,
  xForwardedFor: string | readonly string[] | null | undefined,
  trustedProxies: CidrMatcher,
): string {
  const peer = parseIp(remoteAddress);
  if (peer === null) return remoteAddress;
  let current = formatIp(peer);
  if (!xForwardedFor || trustedProxies.size === 0 || !trustedProxies.hasParsed(peer)) return current;
  const header = typeof xForwardedFor === 'string' ? xForwardedFor : xForwardedFor.join(',');
  const parts = header.split(',');
  const stop = Math.max(0, parts.length - MAX_FORWARDED_HOPS);
  for (let i = parts.length - 1; i >= stop; i--) {
    const p = parseIp(stripPort(parts[i]!.trim()));
    if (p === null) return current;
    current = formatIp(p);
    if (!trustedProxies.hasParsed(p)) return current;
  }
  return current;
}
