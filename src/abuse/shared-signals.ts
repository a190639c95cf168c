/**
 * The abuse signals that must be global, shared through Redis when it is configured, so a campaign
 * split across instances behind a load balancer is still seen:
 *
 * - distinct networks per key, and the address ranges (/16, IPv6 /32) they fall in (key sharing):
 *   HyperLogLogs per key and minute;
 * - distinct keys and tenants per prompt template and network (template campaigns): HyperLogLogs
 *   per template, network and minute;
 * - distinct failed credentials per /24 (credential stuffing): HyperLogLogs per range and minute.
 *
 * Every structure expires on its own (minute buckets, TTL just past the longest window). Each batch
 * of the engine sends ONE pipeline (PFADD + EXPIRE + PFCOUNT over the window's buckets): one round
 * trip per batch, never one per request. The counts come back a round trip later and are judged by
 * the same thresholds as the local detectors; only what the local view misses becomes a finding.
 * Bounds: HyperLogLog counts are within about 1 % (standard error 0.81 %); windows are whole
 * minutes (the last 5 or 10 buckets, the current one included). Without Redis nothing is shared.
 */
import { Redis } from 'ioredis';
import type { SluiceConfig } from '../config/schema.js';
import { type Finding, KEY_SHARING_NEW_NETS } from '../core/anomaly/detectors.js';
import { rangeOfNet } from '../core/anomaly/text.js';

/** The commands used, as ioredis offers them (a Redis or Cluster client; keys share a hash tag). */
export interface SharedPipeline {
  pfadd(key: string, ...elements: string[]): SharedPipeline;
  expire(key: string, seconds: number): SharedPipeline;
  pfcount(...keys: string[]): SharedPipeline;
  exec(): Promise<[Error | null, unknown][] | null>;
}
export interface SharedRedis {
  pipeline(): SharedPipeline;
}

export interface SharedSignalsOptions {
  redis: SharedRedis;
  /** Key prefix (several deployments or tests on one Redis). Default `sluice:abuse:`. */
  prefix?: string;
  onError?: (err: Error) => void;
}

/** What the local detectors know, for turning a global count into a finding. */
export interface LocalView {
  /** The key was in use before `t` (here). */
  keyKnownBefore(keyId: string, t: number): boolean;
  /** Keys seen here sending template `t` from `net` since `since`, with their tenants. */
  templateKeysOn(t: number, net: string, since: number): { keys: string[]; tenants: string[] };
  /** The local count the detector already judges (so only what it misses is reported). */
  localNewNets(keyId: string, since: number): number;
  /**
   * The key's requests seen here in the last 5 minutes and the 5 before (each instance sees its
   * share of both, so their ratio is the key's).
   */
  requestsRecentAndBefore(keyId: string, now: number): { recent: number; before: number };
}

const MIN = 60_000;

export class SharedSignals {
  private readonly prefix: string;
  private keyNets = new Map<
    string,
    { tenantId: string; nets: Set<string>; ranges: Set<string>; ips: Set<string> }
  >();
  private tplNets = new Map<
    string,
    { t: number; net: string; action: string; keys: Set<string>; tenants: Set<string> }
  >();
  private failed = new Map<string, { creds: Set<string>; ips: Set<string> }>();
  private inflight: Promise<void> = Promise.resolve();

  constructor(private readonly opts: SharedSignalsOptions) {
    this.prefix = opts.prefix ?? 'sluice:abuse:';
  }

  /** A request (in the engine's batch); `templates` only for public addresses (see isInternalAddress). */
  recordRequest(
    keyId: string,
    tenantId: string,
    ip: string,
    net: string,
    action: string,
    template: number,
    tail: number,
  ): void {
    let k = this.keyNets.get(keyId);
    if (!k) {
      k = { tenantId, nets: new Set(), ranges: new Set(), ips: new Set() };
      this.keyNets.set(keyId, k);
    }
    if (!k.nets.has(net)) {
      k.nets.add(net);
      k.ranges.add(rangeOfNet(net));
    }
    if (k.ips.size < 50) k.ips.add(ip);
    for (const t of [template, tail]) {
      if (!t) continue;
      const id = `${t.toString(36)}|${net}`;
      let s = this.tplNets.get(id);
      if (!s) {
        s = { t, net, action, keys: new Set(), tenants: new Set() };
        this.tplNets.set(id, s);
      }
      s.action = action;
      s.keys.add(keyId);
      s.tenants.add(tenantId);
    }
  }

  recordFailure(net: string, ip: string, credential: number): void {
    let f = this.failed.get(net);
    if (!f) {
      f = { creds: new Set(), ips: new Set() };
      this.failed.set(net, f);
    }
    f.creds.add(credential.toString(36));
    if (f.ips.size < 100) f.ips.add(ip);
  }

  get pending(): boolean {
    return this.keyNets.size > 0 || this.tplNets.size > 0 || this.failed.size > 0;
  }

  /** Resolves once every batch sent so far was answered and judged. */
  settled(): Promise<void> {
    return this.inflight;
  }

  /**
   * Sends what was recorded since the last call in one pipeline; the global counts are judged
   * against the thresholds (`k` = sensitivity) and what the local view misses goes to `onFindings`.
   */
  send(now: number, k: number, local: LocalView, onFindings: (f: Finding[]) => void): void {
    if (!this.pending) return;
    const keyNets = this.keyNets;
    const tplNets = this.tplNets;
    const failed = this.failed;
    this.keyNets = new Map();
    this.tplNets = new Map();
    this.failed = new Map();
    const b = Math.floor(now / MIN);
    const pipe = this.opts.redis.pipeline();
    // Positions of the PFCOUNT answers among the pipeline's answers (PFADD and EXPIRE answer too).
    const countAt: number[] = [];
    let cmds = 0;
    const p = {
      pfadd(key: string, ...el: string[]) {
        pipe.pfadd(key, ...el);
        cmds++;
        return p;
      },
      expire(key: string, seconds: number) {
        pipe.expire(key, seconds);
        cmds++;
        return p;
      },
      pfcount(...keys: string[]) {
        pipe.pfcount(...keys);
        countAt.push(cmds++);
        return p;
      },
    };
    const reads: ((counts: number[]) => Finding | null)[] = [];
    let at = 0;
    const buckets = (base: string, from: number, to: number) => {
      const out: string[] = [];
      for (let i = from; i <= to; i++) out.push(`${base}:${b - i}`);
      return out;
    };
    for (const [keyId, v] of keyNets) {
      // {keyId} is a hash tag: a key's buckets live in one cluster slot, so one PFCOUNT unions them.
      const base = `${this.prefix}kn:{${keyId}}`;
      p.pfadd(`${base}:${b}`, ...v.nets).expire(`${base}:${b}`, 31 * 60);
      p.pfcount(...buckets(base, 0, 4))
        .pfcount(...buckets(base, 0, 29))
        .pfcount(...buckets(base, 5, 29));
      // The address ranges of those networks (same hash tag, same slot), counted the same way.
      const rbase = `${this.prefix}kr:{${keyId}}`;
      p.pfadd(`${rbase}:${b}`, ...v.ranges).expire(`${rbase}:${b}`, 31 * 60);
      p.pfcount(...buckets(rbase, 0, 4))
        .pfcount(...buckets(rbase, 0, 29))
        .pfcount(...buckets(rbase, 5, 29));
      // The networks of the 5 minutes before the last 5 (the local rule's per-request test).
      p.pfcount(...buckets(base, 5, 9));
      const first = at;
      at += 7;
      reads.push((c) => {
        const all = c[first + 1]!;
        const before = c[first + 2]!;
        const fresh = Math.min(c[first]!, all - before);
        const rangesBefore = c[first + 5]!;
        const freshRanges = Math.min(c[first + 3]!, c[first + 4]! - rangesBefore);
        // The key's first 2 minutes are its baseline (as in the local rule): judged only once those
        // minutes are 5 minutes old, so "before" holds them. A key called from dozens of networks
        // since it was first seen (an edge deployment, a mobile app) had "used 12 before".
        if (!local.keyKnownBefore(keyId, now - 7 * MIN)) return null;
        // The local rule's two tests: new networks, 3x those used before; or new address ranges,
        // 2x the ranges used before.
        if (before <= 0) return null;
        const many = fresh >= KEY_SHARING_NEW_NETS * k && fresh >= 3 * (before + 1);
        const spread = freshRanges >= KEY_SHARING_NEW_NETS * k && freshRanges >= 2 * (rangesBefore + 1);
        if (!many && !spread) return null;
        // A key already used from more than 3 networks (a mobile app's users, an edge deployment):
        // also its new networks per request at least twice its networks per request of the 5
        // minutes before, as locally (`moreNetworksPerRequest`): such an app gets more networks as it
        // gets busier. The request counts are this instance's: its share of both windows.
        if (before > 3) {
          const r = local.requestsRecentAndBefore(keyId, now);
          if (fresh * Math.max(r.before, 1) < 2 * c[first + 6]! * Math.max(r.recent, 1)) return null;
        }
        if (local.localNewNets(keyId, now - 5 * MIN) >= fresh) return null;
        return {
          detector: 'key-sharing',
          category: 'shared-credential',
          score: Math.min(1, 0.55 + fresh / 40),
          suggest: fresh >= 10 * k ? 'quarantine' : 'flag',
          subject: { keyId, tenantId: v.tenantId },
          capability: '*',
          reason: `key used from about ${fresh} new networks (${freshRanges} new address ranges) in 5 min across instances (it had used about ${before} before)`,
          related: { keys: [keyId], ips: [...v.ips], tenants: [v.tenantId] },
          signals: { newNetworks: fresh, newRanges: freshRanges, previousNetworks: before, shared: 'redis' },
        };
      });
    }
    for (const v of tplNets.values()) {
      const base = `${this.prefix}tpl:{${v.t.toString(36)}|${v.net}}`;
      p.pfadd(`${base}:k:${b}`, ...v.keys).expire(`${base}:k:${b}`, 11 * 60);
      p.pfadd(`${base}:t:${b}`, ...v.tenants).expire(`${base}:t:${b}`, 11 * 60);
      p.pfcount(...buckets(`${base}:k`, 0, 9)).pfcount(...buckets(`${base}:t`, 0, 9));
      const first = at;
      at += 2;
      reads.push((c) => {
        const keys = c[first]!;
        const tenants = c[first + 1]!;
        // One network hosting the template for many tenants' keys: the campaign rule of the local
        // detector (>= 6 keys of >= 5 tenants, >= 3 keys per network) on the global counts.
        if (keys < 6 * k || tenants < 5 * k) return null;
        const here = local.templateKeysOn(v.t, v.net, now - 10 * MIN);
        if (here.keys.length === 0) return null;
        return {
          detector: 'template-campaign',
          category: 'automated-abuse',
          score: Math.min(1, 0.6 + keys / 50),
          suggest: 'quarantine',
          subject: { net: v.net },
          capability: v.action,
          reason: `same prompt template from about ${keys} keys of ${tenants} tenants through ${v.net} in 10 min, across instances`,
          related: { keys: here.keys, ips: [], tenants: here.tenants },
          signals: { template: v.t.toString(16), keys, tenants, networks: 1, shared: 'redis' },
        };
      });
    }
    for (const [net, v] of failed) {
      const base = `${this.prefix}fc:{${net}}`;
      p.pfadd(`${base}:${b}`, ...v.creds).expire(`${base}:${b}`, 6 * 60);
      p.pfcount(...buckets(base, 0, 4));
      const first = at;
      at += 1;
      reads.push((c) => {
        const distinct = c[first]!;
        if (distinct < 10 * k) return null;
        const ips = [...v.ips];
        return {
          detector: 'credential-stuffing',
          category: 'credential-abuse',
          score: Math.min(1, 0.6 + distinct / 100),
          suggest: 'quarantine',
          subject: { net, ip: ips[0] },
          capability: '*',
          reason: `about ${distinct} different invalid credentials from ${net} in 5 min, across instances`,
          related: { keys: [], ips, tenants: [] },
          signals: { distinctCredentials: distinct, ips: ips.length, shared: 'redis' },
        };
      });
    }
    const sent = pipe
      .exec()
      .then((res) => {
        if (!res) return;
        for (const [err] of res) if (err) throw err;
        const counts = countAt.map((i) => Number(res[i]?.[1] ?? 0));
        const findings: Finding[] = [];
        for (const read of reads) {
          const f = read(counts);
          if (f) findings.push(f);
        }
        if (findings.length > 0) onFindings(findings);
      })
      .catch((err: Error) => this.opts.onError?.(err));
    this.inflight = this.inflight.then(() => sent);
  }
}

/**
 * The shared signals for a deployment with Redis (`redis.url`, or `limits.url` with
 * `limits.store: redis`; a cluster with `limits.urls`); undefined without Redis (per instance).
 */
export function openSharedSignals(
  cfg: SluiceConfig,
  onError: (err: Error) => void,
): { shared: SharedSignals; close: () => Promise<void> } | undefined {
  const url = cfg.redis?.url ?? (cfg.limits.store === 'redis' ? cfg.limits.url : undefined);
  const urls = cfg.limits.store === 'redis' ? cfg.limits.urls : undefined;
  if (!url && !urls) return undefined;
  // No offline queue and one retry: a Redis that is down costs the batch its shared counts, never waits.
  const options = { maxRetriesPerRequest: 1, enableOfflineQueue: false, lazyConnect: false };
  const redis = urls ? new Redis.Cluster(urls, { redisOptions: options }) : new Redis(url!, options);
  redis.on('error', onError);
  return {
    shared: new SharedSignals({ redis: redis as unknown as SharedRedis, onError }),
    close: async () => {
      await redis.quit().catch(() => redis.disconnect());
    },
  };
}
