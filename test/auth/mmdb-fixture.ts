/**
 * A minimal MaxMind DB writer for tests (IPv4 trees, 24-bit records, `{country:{iso_code}}` records),
 * following the MaxMind DB File Format Specification 2.0. No real GeoIP database ships with the repo.
 */

const enc = new TextEncoder();

function ctrl(type: number, size: number): number[] {
  if (size >= 29) throw new Error('fixture writer: sizes >= 29 not supported');
  // Types 1..7 go in the top three bits; extended types (8+) put 0 there and type-7 in the next byte.
  return type <= 7 ? [(type << 5) | size] : [size, type - 7];
}

function uintBytes(v: bigint): number[] {
  const out: number[] = [];
  while (v > 0n) {
    out.unshift(Number(v & 255n));
    v >>= 8n;
  }
  return out;
}

type Val = string | { u16: number } | { u32: number } | { u64: bigint } | Val[] | { [k: string]: Val };

function encode(v: Val): number[] {
  if (typeof v === 'string') {
    const b = [...enc.encode(v)];
    return [...ctrl(2, b.length), ...b];
  }
  if (Array.isArray(v)) return [...ctrl(11, v.length), ...v.flatMap(encode)];
  if ('u16' in v && typeof v.u16 === 'number') {
    const b = uintBytes(BigInt(v.u16));
    return [...ctrl(5, b.length), ...b];
  }
  if ('u32' in v && typeof v.u32 === 'number') {
    const b = uintBytes(BigInt(v.u32));
    return [...ctrl(6, b.length), ...b];
  }
  if ('u64' in v && typeof v.u64 === 'bigint') {
    const b = uintBytes(v.u64);
    return [...ctrl(9, b.length), ...b];
  }
  const entries = Object.entries(v as Record<string, Val>);
  return [...ctrl(7, entries.length), ...entries.flatMap(([k, x]) => [...encode(k), ...encode(x)])];
}

interface TNode {
  kids: [TNode | Leaf, TNode | Leaf];
}
interface Leaf {
  data: number | null;
}
const isLeaf = (x: TNode | Leaf): x is Leaf => 'data' in x;

/** Builds an IPv4 MMDB mapping each `a.b.c.d/len` (len >= 1) to a country code. Later entries win. */
export function buildCountryMmdb(networks: { cidr: string; country: string }[]): Buffer {
  const data: number[] = [];
  const offsets = new Map<string, number>();
  for (const { country } of networks) {
    if (offsets.has(country)) continue;
    offsets.set(country, data.length);
    data.push(...encode({ country: { iso_code: country } }));
  }
  const root: TNode = { kids: [{ data: null }, { data: null }] };
  for (const { cidr, country } of networks) {
    const [a, l] = cidr.split('/');
    const ip = a!.split('.').reduce((acc, o) => acc * 256 + Number(o), 0);
    const len = Number(l);
    let node = root;
    for (let d = 0; d < len; d++) {
      const bit = Math.floor(ip / 2 ** (31 - d)) % 2;
      if (d === len - 1) {
        node.kids[bit] = { data: offsets.get(country)! };
        break;
      }
      const child = node.kids[bit]!;
      const next: TNode = isLeaf(child) ? { kids: [{ ...child }, { ...child }] } : child;
      node.kids[bit] = next;
      node = next;
    }
  }
  const nodes: TNode[] = [];
  const index = new Map<TNode, number>();
  const queue: TNode[] = [root];
  while (queue.length) {
    const n = queue.shift()!;
    index.set(n, nodes.length);
    nodes.push(n);
    for (const k of n.kids) if (!isLeaf(k)) queue.push(k);
  }
  const count = nodes.length;
  const rec = (x: TNode | Leaf) =>
    isLeaf(x) ? (x.data === null ? count : count + 16 + x.data) : index.get(x)!;
  const tree: number[] = [];
  for (const n of nodes)
    for (const k of n.kids) tree.push((rec(k) >> 16) & 255, (rec(k) >> 8) & 255, rec(k) & 255);
  const meta = encode({
    node_count: { u32: count },
    record_size: { u16: 24 },
    ip_version: { u16: 4 },
    database_type: 'Sluice-Test-Country',
    languages: ['en'],
    binary_format_major_version: { u16: 2 },
    binary_format_minor_version: { u16: 0 },
    build_epoch: { u64: 1_700_000_000n },
    description: { en: 'test fixture' },
  });
  const marker = [0xab, 0xcd, 0xef, ...enc.encode('MaxMind.com')];
  return Buffer.from([...tree, ...new Array(16).fill(0), ...data, ...marker, ...meta]);
}
