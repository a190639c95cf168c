/**
 * REFERENCE COPY, for tests only: src/core/anomaly/detectors.ts as it was at a08a4b0, before the
 * speed changes of branch abu. test/core/anomaly/reference.test.ts replays generated traces through
 * it and through the current detectors and requires the same findings, in the same order. Do not
 * change it (except to follow a deliberate change of what the detectors decide).
 * Followed since: the style-shift ring (`ringShift`, session 6), copied from the current code;
 * end-user rotation's "came back" meaning seen again 10 s or more after the first request
 * (`RETURN_GAP_MS`, session 7); the output shift (`outputShift`, session 7), copied; distillation's flag on the last minute alone (session 7);
 * key sharing's baseline of the key's first ESTABLISH_MS and no new-key finding for a key first
 * seen within OBSERVED_MS of the first observation, and no distillation finding for a key whose
 * last 5 minutes came from many end users (`manyPeopleAsking`, copied), and a slot over 3x the
 * baseline + 3 folded into it at an hour's time constant once settled (`foldRate`), and a burst
 * remembered before the baseline has settled (`spike`) (session 8); a template campaign's networks
 * host the template for three tenants, not two, key sharing's flag at 6 new networks, not 8, and
 * end-user rotation's scripted path (new ids spent in bursts within RETURN_GAP_MS, from 20 a minute),
 * and no style shift to a bin that holds a tenth of the key's history (`knownMode`), and a /16's
 * credential stuffing flagged from 12 distinct credentials, and key sharing of a key used from more
 * than 3 networks only when its new networks per request doubled, and a spike that began before
 * the baseline settled judged once it has gone on 90 s (session 9); end-user rotation's scripted
 * path also when a fifth of the new ids were spent in bursts and almost none came back, and from 8
 * new ids a minute (6 more than twice the key's before), and key sharing also from 6 new address
 * ranges (/16, IPv6 /32) twice the key's old networks (session 10); a client used from one /22
 * only, by 3 tenants there in 10 minutes, after 5 minutes of watching (`evalClient`), and key
 * sharing's new ranges twice the key's old ranges, not its old networks, and a shared client
 * fingerprint that tenants on other networks use too only flagged, and a style shift to a kind of
 * call never made (`novelKind`, copied) or a much larger output budget asked for (`budgetShift`,
 * copied) (session 11); a never-made kind after 15-29 requests when it comes from a network new
 * this minute, and key sharing of a key of more than 3 networks also when its new networks brought
 * 3 client products (user agents' first tokens) it never used (`newClientProducts`) (session 12).
 */
/**
 * The anomaly detectors. Pure: time comes in as `now` (ms), nothing is read from the world.
 *
 * `observe` is the hot path: O(1) amortised work per request (a few map updates and slot adds);
 * each subject (key, tenant, network, template) is evaluated at most once per `EVAL_EVERY_MS`,
 * and that evaluation (a scan of bounded maps) is the batched, heavier part. Memory is bounded:
 * every map has a cap and drops its oldest entries first.
 */

import { type InjectionAttempt, InjectionAttempts } from '../../../../src/core/anomaly/injection.js';
import {
  blockOf,
  clientHash,
  fnv,
  isInternalAddress,
  lengthClassOf,
  netOf,
  REASONING,
  rangeOfNet,
  rawClientHash,
  templateHashes,
  wideNetOf,
} from '../../../../src/core/anomaly/text.js';
import { capMap, RecentSet, SlotRing } from './window.js';

export const DETECTORS = [
  'volume-spike',
  'style-shift',
  'key-sharing',
  'end-user-rotation',
  'credential-stuffing',
  'template-campaign',
  'client-fingerprint',
  'distillation',
  'injection-attempts',
] as const;
export type DetectorName = (typeof DETECTORS)[number];

/** What the request path tells the detectors about one answered (or refused) request. */
export interface Observation {
  requestId: string;
  keyId: string;
  tenantId: string;
  ip: string;
  userAgent: string | null;
  /** Request header names in the order the client sent them (credentials and ids excluded by the caller). */
  headerNames: readonly string[];
  /**
   * Or the raw headers as Node keeps them (name, value, name, value, ...): names are lower-cased and
   * filtered (see `clientFingerprint`) when the batch runs, not on the request's turn. Wins over `headerNames`.
   */
  rawHeaders?: readonly string[];
  endUser: string | null;
  /** The output budget the call asks for (session 11). */
  maxTokens?: number;
  /** `chat.create`, `images.generate`, ... */
  action: string;
  endpoint: string;
  model: string | null;
  /** The prompt text, or a bounded prefix of it. */
  prompt: string;
  /**
   * Or the request body, and the endpoint it was sent to: the abuse engine extracts the prompt from
   * it in its batch (set `prompt` to '' then).
   */
  body?: Record<string, unknown>;
  bodyEndpoint?: string;
  inputTokens: number;
  outputTokens: number;
  status: number;
}

/** A failed authentication (bad, unknown or revoked credential). */
export interface AuthFailure {
  ip: string;
  /** A hash of the presented credential (never the credential itself); 0 when none was presented. */
  credential: number;
  userAgent: string | null;
}

/** The readable category a person sees (never the detector's internals). */
export type Category =
  | 'unusual-volume'
  | 'unusual-usage'
  | 'shared-credential'
  | 'automated-abuse'
  | 'credential-abuse'
  | 'model-extraction'
  | 'prompt-injection';

export interface Finding {
  detector: DetectorName;
  category: Category;
  /** 0..1; 1 is certain. */
  score: number;
  /** The detector's own suggestion; the policy decides. High-confidence findings suggest quarantine. */
  suggest: 'flag' | 'quarantine';
  /** Who: a key (with its tenant), a tenant, or a network (credential stuffing). */
  subject: { keyId?: string; tenantId?: string; net?: string; ip?: string };
  /** The capability to pause: an action such as `chat.create`, or `*`. */
  capability: string;
  reason: string;
  related: { keys: string[]; ips: string[]; tenants: string[] };
  signals: Record<string, number | string>;
}

export interface DetectorTuning {
  /** Multiplies every count threshold (2 = twice as much evidence needed). */
  sensitivity: number;
  /** Caps on tracked subjects (oldest dropped first). */
  maxKeys: number;
  maxTenants: number;
  maxNets: number;
  maxTemplates: number;
}

const SLOT_MS = 10_000;
const SLOTS = 60; // 10 minutes of 10 s slots
const EVAL_EVERY_MS = 2_000;
const MAX_KEYS = 50_000;
const MAX_TENANTS = 20_000;
const MAX_NETS = 50_000;
const MAX_TEMPLATES = 20_000;
const MIN = 60_000;
const ESTABLISH_MS = 2 * MIN;
const OBSERVED_MS = 10 * MIN;
const RETURN_GAP_MS = 10_000;
/**
 * Requests from new end-user ids in a minute before rotation is considered. 25 caught one more
 * slow rotation (20-35 new ids a minute) of twelve in traffic written without sight of this
 * detector, and flagged a product launch whose users mostly ask once; 40 is kept.
 */
const EU_NEW_PER_MIN = 40;

// Series of a key's SlotRing.
const S_REQ = 0;
const S_REASON = 1;
const S_OUT = 2;
const S_EU = 3;
const S_EU_NEW = 4;
const SERIES = 5;

const ENDPOINTS = ['chat', 'completions', 'embeddings', 'images', 'responses', 'messages', 'tasks'];
const MIX_BINS = ENDPOINTS.length * 4 + 8;
/**
 * Kinds of call whose first use after a history is judged (`novelKind`): embeddings and images.
 * (`/v1/messages` too until late in session 11: it caught no abuser the other rules missed and
 * flagged a pipeline of independent-b that uses both OpenAI and Anthropic clients.)
 */
const NOVEL_KINDS = (1 << ENDPOINTS.indexOf('embeddings')) | (1 << ENDPOINTS.indexOf('images'));
/** How long after its first call a new kind is counted. */
const NOVEL_WINDOW_MS = 2 * 60_000;
/** The smallest output budget a call must ask for to count in a budget shift (`budgetShift`). */
const BUDGET_FLOOR = 2000;
/** Requests in the ring a slow key's style shift is judged on (as many as a window needs). */
const MIX_RING = 8;

interface Rate {
  ring: SlotRing;
  /** EWMA of requests per slot over closed slots. */
  base: number;
  /** Closed slots folded into `base`. */
  baseSlots: number;
  lastFolded: number;
  firstSeen: number;
  spiking: boolean;
  /** Spikes this subject has shown before (a repeat is a pattern, not an attack). */
  spikes: number;
  lastSpikeEnd: number;
  spikeFrom: number;
}

interface KeyState extends Rate {
  keyId: string;
  tenantId: string;
  nets: RecentSet<string>;
  ranges: RecentSet<string>;
  ips: RecentSet<string>;
  uas: RecentSet<string>;
  endUsers: RecentSet<string>;
  /** Template counts in the current and previous 2-minute epoch (for "templated" sweeps), by `template | 0`. */
  tpl: Map<number, number>;
  tplPrev: Map<number, number>;
  tplEpoch: number;
  mixBase: Float64Array;
  mixBaseN: number;
  mixRecent: Float64Array;
  mixRecentN: number;
  mixWindow: number;
  /**
   * The last MIX_RING requests' bins (endpoint x length, model) and times: a slow key's shift is
   * judged on its latest requests as they come, not only when a 15 s window that began before the
   * shift closes (see `ringShift`).
   */
  mixRing: Uint8Array;
  mixRingT: Float64Array;
  mixRingN: number;
  mixRingEval: number;
  /** Endpoints the key has called (bit `endpointIndex`), and a kind of call it never made before (see `novelKind`). */
  kinds: number;
  novel: number;
  novelSince: number;
  novelCount: number;
  novelTotal: number;
  novelHistory: number;
  /** The largest output budget the key asked for (outside a run of much larger ones), and such a run. */
  budgetMax: number;
  budgetSince: number;
  budgetCount: number;
  nextEval: number;
  lastAction: string;
}

/** Only what a detector reads: every field here costs a map update per request or per new network. */
interface NetState {
  net: string;
  ips: RecentSet<string>;
  /** Client fingerprint (`fp | 0`) -> tenants that used it from here. */
  fpTenants: Map<number, RecentSet<string>>;
  fpKeys: Map<number, RecentSet<string>>;
  /** Failed credentials and the addresses they came from: made at the first failure from here. */
  failed: RecentSet<number> | null;
  failedIps: RecentSet<string> | null;
  nextFailEval: number;
}

/** Only what `evalTemplate` and `templateKeysOn` read, once a second key, tenant or network sent it. */
interface TemplateSenders {
  keys: RecentSet<string>;
  tenants: RecentSet<string>;
  /** key -> net it sent this template from (last seen). */
  keyNet: Map<string, string>;
  keyTenant: Map<string, string>;
}

/**
 * A template. Most are only ever sent by one key from one network (a prompt that is nobody else's):
 * that sender is kept inline (first and last sighting), and the collections are made when a second
 * key, tenant or network sends it — one object per template instead of five, for the same counts.
 */
interface TemplateState {
  key: string;
  tenant: string;
  net: string;
  first: number;
  last: number;
  senders: TemplateSenders | null;
}

/** The collections of a template seen so far from its one sender (what they would hold by now). */
function sendersOf(ts: TemplateState): TemplateSenders {
  const keys = new RecentSet<string>(512);
  const tenants = new RecentSet<string>(512);
  keys.touch(ts.key, ts.first);
  keys.touch(ts.key, ts.last);
  tenants.touch(ts.tenant, ts.first);
  tenants.touch(ts.tenant, ts.last);
  return { keys, tenants, keyNet: new Map([[ts.key, ts.net]]), keyTenant: new Map([[ts.key, ts.tenant]]) };
}

function newRate(now: number): Rate {
  return {
    ring: new SlotRing(SLOTS, SLOT_MS, SERIES),
    base: 0,
    baseSlots: 0,
    lastFolded: Math.floor(now / SLOT_MS),
    firstSeen: now,
    spiking: false,
    spikes: 0,
    lastSpikeEnd: 0,
    spikeFrom: -1,
  };
}

function endpointIndex(endpoint: string): number {
  const i = ENDPOINTS.indexOf(endpoint);
  return i < 0 ? ENDPOINTS.length - 1 : i;
}

function modelBin(model: string | null): number {
  return ENDPOINTS.length * 4 + (model ? (model.length * 31 + model.charCodeAt(model.length - 1)) % 8 : 0);
}

function round(x: number, d = 2): number {
  const m = 10 ** d;
  return Math.round(x * m) / m;
}

/**
 * All detectors over all subjects. Findings come back from `observe`/`authFailed` when an
 * evaluation crosses a threshold; the caller (the abuse engine) applies policy and deduplicates.
 */
export class AnomalyDetectors {
  private readonly keys = new Map<string, KeyState>();
  private readonly tenants = new Map<string, Rate & { nextEval: number }>();
  private readonly nets = new Map<string, NetState>();
  private readonly wideNets = new Map<string, NetState>();
  /**
   * By template fingerprint as a signed 32-bit integer (`t | 0`, one-to-one with the unsigned hash):
   * a small integer is a Map key V8 hashes and compares without boxing; above 2^31 the unsigned
   * value is a heap number, boxed again on every lookup. The same goes for `tpl` and the fingerprint maps.
   */
  private readonly templates = new Map<number, TemplateState>();
  private readonly clients = new Map<
    number,
    {
      tenants: RecentSet<string>;
      tenantBlock: Map<string, string>;
      keys: RecentSet<string>;
      keyBlock: Map<string, string>;
    }
  >();
  private readonly k: number;
  private readonly caps: { keys: number; tenants: number; nets: number; templates: number };
  private readonly injections: InjectionAttempts;
  private startedAt = Number.NaN;

  constructor(tuning: Partial<DetectorTuning> = {}) {
    this.k = tuning.sensitivity ?? 1;
    this.caps = {
      keys: tuning.maxKeys ?? MAX_KEYS,
      tenants: tuning.maxTenants ?? MAX_TENANTS,
      nets: tuning.maxNets ?? MAX_NETS,
      templates: tuning.maxTemplates ?? MAX_TEMPLATES,
    };
    this.injections = new InjectionAttempts(this.k, this.caps.keys);
  }

  /** The key's answered requests over the last `slots` ten-second slots (0 for a key never observed). */
  private readonly answered = (keyId: string, slots: number): number => {
    const key = this.keys.get(keyId);
    return key ? key.ring.sum(this.injectionNow, S_REQ, slots) : 0;
  };
  private injectionNow = 0;

  /**
   * A screening verdict that counts as an injection attempt (see injection.ts): O(1); a finding
   * when the key's attempts are many and most of what it sends.
   */
  injectionAttempt(a: InjectionAttempt, now: number): Finding | null {
    this.injectionNow = now;
    return this.injections.attempt(a, now, this.answered);
  }

  /** The last observation's template fingerprints and network (for signals shared across instances). */
  lastTemplate = 0;
  lastTail = 0;
  lastNet = '';
  lastPublic = false;

  /** Findings of the last `observe`/`authFailed` call (reused: read them before the next call). */
  private readonly out: Finding[] = [];

  /**
   * One observation: O(1) amortised, no allocation once its subjects are known. Returns findings
   * (usually none) in an array that the next call reuses.
   */
  observe(o: Observation, now: number): Finding[] {
    const findings = this.out;
    findings.length = 0;
    if (Number.isNaN(this.startedAt)) this.startedAt = now;
    const text = o.prompt;
    const { template, tail } = templateHashes(text);
    const reasoning = text.length > 0 && REASONING.test(text.length > 800 ? text.slice(0, 800) : text);
    const lengthClass = lengthClassOf(text.length);
    const net = netOf(o.ip);
    const key = this.keyState(o, now);
    this.lastTemplate = template;
    this.lastTail = tail;
    this.lastNet = net;
    this.lastPublic = !isInternalAddress(o.ip);

    // Key counters.
    foldRate(key, now);
    key.ring.add(now, S_REQ, 1);
    if (reasoning) key.ring.add(now, S_REASON, 1);
    key.ring.add(now, S_OUT, o.outputTokens);
    if (key.nets.see(net, now)) key.ranges.see(rangeOfNet(net), now);
    key.ips.see(o.ip, now);
    key.uas.see(o.userAgent ?? '-', now);
    if (o.endUser) {
      key.ring.add(now, S_EU, 1);
      if (key.endUsers.see(o.endUser, now)) key.ring.add(now, S_EU_NEW, 1);
    }
    const epoch = Math.floor(now / (2 * MIN));
    if (epoch !== key.tplEpoch) {
      key.tplPrev = epoch === key.tplEpoch + 1 ? key.tpl : new Map();
      key.tpl = new Map();
      key.tplEpoch = epoch;
    }
    if (template) {
      const id = template | 0;
      const c = (key.tpl.get(id) ?? 0) + 1;
      key.tpl.set(id, c);
      if (key.tpl.size > 512) key.tpl.clear();
    }
    // The recent mix closes after 15 s with enough requests to compare (or after 60 s regardless).
    const mixAge = now - key.mixWindow;
    if ((mixAge >= 15_000 && key.mixRecentN >= 8 * this.k) || mixAge >= 60_000)
      this.closeMixWindow(key, now, now, findings);
    const ep = endpointIndex(o.endpoint);
    this.novelKind(key, ep, net, now, findings);
    if (o.maxTokens !== undefined && o.maxTokens >= 0) this.budgetShift(key, o.maxTokens, now, findings);
    const binA = ep * 4 + lengthClass;
    const binB = modelBin(o.model);
    key.mixRecent[binA]! += 1;
    key.mixRecent[binB]! += 1;
    key.mixRecentN++;
    const at = key.mixRingN % MIX_RING;
    key.mixRing[2 * at] = binA;
    key.mixRing[2 * at + 1] = binB;
    key.mixRingT[at] = now;
    key.mixRingN++;
    if (key.mixRingN >= MIX_RING && now >= key.mixRingEval) this.ringShift(key, now, findings);

    // Tenant counters.
    let tenant = this.tenants.get(o.tenantId);
    if (!tenant) {
      tenant = { ...newRate(now), nextEval: 0 };
      this.tenants.set(o.tenantId, tenant);
      capMap(this.tenants, this.caps.tenants);
    }
    foldRate(tenant, now);
    tenant.ring.add(now, S_REQ, 1);

    // Network and template counters (cross-key correlation), for public addresses only (see
    // isInternalAddress): behind an undeclared proxy every tenant would share one network.
    if (this.lastPublic) {
      this.correlate(o, template, tail, net, now, findings);
    }

    // Batched evaluations.
    if (now >= key.nextEval) {
      key.nextEval = now + EVAL_EVERY_MS;
      this.evalKey(key, o, now, findings);
    }
    if (now >= tenant.nextEval) {
      tenant.nextEval = now + EVAL_EVERY_MS;
      const v = spike(tenant, now, this.k * 3);
      if (v)
        findings.push({
          detector: 'volume-spike',
          category: 'unusual-volume',
          score: v.score,
          suggest: 'flag',
          subject: { tenantId: o.tenantId },
          capability: '*',
          reason: `tenant request rate ${round(v.rate)}/s is ${round(v.ratio, 1)}x its usual ${round(v.base, 3)}/s`,
          related: { keys: [o.keyId], ips: [o.ip], tenants: [o.tenantId] },
          signals: { rate: round(v.rate), baseline: round(v.base, 3) },
        });
    }
    return findings;
  }

  /** Cross-key correlation: who shares a network or a client fingerprint. */
  private correlate(
    o: Observation,
    template: number,
    tail: number,
    net: string,
    now: number,
    findings: Finding[],
  ): void {
    const n = this.netState(this.nets, net);
    n.ips.see(o.ip, now);
    const ch = o.rawHeaders
      ? rawClientHash(o.userAgent, o.rawHeaders)
      : clientHash(o.userAgent, o.headerNames);
    const fp = fnv(net, ch);
    const since = now - 10 * MIN;
    // The fingerprint is evaluated when a tenant or key joins it (or comes back within the window):
    // its counts only grow then; between joins they can only shrink.
    const joined = seeIn(n.fpTenants, fp | 0, o.tenantId, now, 64) < since;
    const keyJoined = seeIn(n.fpKeys, fp | 0, o.keyId, now, 256) < since;
    if (template) this.correlateTemplate(o, template, net, now, findings);
    if (tail) this.correlateTemplate(o, tail, net, now, findings);
    if (joined || keyJoined) this.evalFingerprint(n, fp, ch, o, now, findings);
    // The client on any network (session 11).
    let c = this.clients.get(ch | 0);
    if (!c) {
      c = {
        tenants: new RecentSet(64),
        tenantBlock: new Map(),
        keys: new RecentSet(256),
        keyBlock: new Map(),
      };
      this.clients.set(ch | 0, c);
      capMap(this.clients, 4096);
    }
    const tenantJoined = c.tenants.touch(o.tenantId, now) < since;
    const keyJoinedClient = c.keys.touch(o.keyId, now) < since;
    const block = blockOf(o.ip);
    if (keyJoinedClient) {
      c.keyBlock.set(o.keyId, block);
      capMap(c.keyBlock, 256);
    }
    if (tenantJoined) {
      c.tenantBlock.set(o.tenantId, block);
      capMap(c.tenantBlock, 64);
      this.evalClient(c, block, o, now, findings);
    }
  }

  /** A client that only this /22 used in the last hour, shared by 3 tenants there in 10 minutes. */
  private evalClient(
    c: {
      tenants: RecentSet<string>;
      tenantBlock: Map<string, string>;
      keys: RecentSet<string>;
      keyBlock: Map<string, string>;
    },
    block: string,
    o: Observation,
    now: number,
    out: Finding[],
  ): void {
    if (now - this.startedAt < 5 * MIN) return;
    const since = now - 10 * MIN;
    const hour = c.tenants.membersSeenSince(now - 60 * MIN, 64);
    if (hour.some((t) => c.tenantBlock.get(t) !== block)) return;
    const here = hour.filter((t) => c.tenants.lastSeen(t)! >= since).length;
    if (here < 3 * this.k) return;
    const keys = c.keys.membersSeenSince(since, 256).filter((k) => c.keyBlock.get(k) === block);
    const votes = new Map<string, number>();
    let capability = o.action;
    let best = 0;
    for (const k of keys) {
      const a = this.keys.get(k)?.lastAction;
      if (!a) continue;
      const v = (votes.get(a) ?? 0) + 1;
      votes.set(a, v);
      if (v > best) {
        best = v;
        capability = a;
      }
    }
    out.push({
      detector: 'client-fingerprint',
      category: 'automated-abuse',
      score: Math.min(1, 0.5 + here / 20),
      suggest: here >= 6 * this.k ? 'quarantine' : 'flag',
      subject: { net: block },
      capability,
      reason: `one client, used from no other network in an hour, used by ${keys.length} keys of ${here} tenants from ${block} in 10 min`,
      related: { keys, ips: [o.ip], tenants: c.tenants.membersSeenSince(since, 100) },
      signals: { tenants: here, keys: keys.length },
    });
  }

  /** Who sends the same prompt template, from which networks. */
  private correlateTemplate(o: Observation, t: number, net: string, now: number, findings: Finding[]): void {
    const since = now - 10 * MIN;
    let ts = this.templates.get(t | 0);
    if (!ts) {
      ts = { key: o.keyId, tenant: o.tenantId, net, first: now, last: now, senders: null };
      this.templates.set(t | 0, ts);
      capMap(this.templates, this.caps.templates);
      this.evalTemplate(t, ts, o, now, findings);
      return;
    }
    // Evaluated at once when a key or tenant joins (or comes back within the window), or a key moves
    // network: only then can its counts grow (a lockstep round is over in seconds).
    let s = ts.senders;
    if (!s) {
      if (ts.key === o.keyId && ts.tenant === o.tenantId && ts.net === net) {
        const prev = ts.last;
        ts.last = now;
        if (prev < since) this.evalTemplate(t, ts, o, now, findings);
        return;
      }
      s = ts.senders = sendersOf(ts);
    }
    let changed = s.keys.touch(o.keyId, now) < since;
    if (s.tenants.touch(o.tenantId, now) < since) changed = true;
    if (s.keyNet.get(o.keyId) !== net) {
      s.keyNet.set(o.keyId, net);
      capMap(s.keyNet, 512);
      changed = true;
    }
    if (s.keyTenant.get(o.keyId) !== o.tenantId) {
      s.keyTenant.set(o.keyId, o.tenantId);
      capMap(s.keyTenant, 512);
      changed = true;
    }
    if (changed) this.evalTemplate(t, ts, o, now, findings);
  }

  /** A failed authentication: credential stuffing is many different credentials from one range. */
  authFailed(a: AuthFailure, now: number): Finding[] {
    const findings = this.out;
    findings.length = 0;
    const net = netOf(a.ip);
    const wide = wideNetOf(a.ip);
    for (const [map, id, need, flagAt] of [
      [this.nets, net, 10, 10],
      [this.wideNets, wide, 25, 12],
    ] as const) {
      if (!id) continue;
      const n = this.netState(map, id);
      n.failed ??= new RecentSet(512);
      n.failedIps ??= new RecentSet(256);
      n.failed.see(a.credential, now);
      n.failedIps.see(a.ip, now);
      if (now < n.nextFailEval) continue;
      n.nextFailEval = now + 1000;
      const distinct = n.failed.countSeenSince(now - 5 * MIN);
      if (distinct >= flagAt * this.k) {
        const ips = n.failedIps.membersSeenSince(now - 5 * MIN, 100);
        findings.push({
          detector: 'credential-stuffing',
          category: 'credential-abuse',
          score: Math.min(1, 0.6 + distinct / (need * 10)),
          suggest: distinct >= need * this.k ? 'quarantine' : 'flag',
          subject: { net: id, ip: a.ip },
          capability: '*',
          reason: `${distinct} different invalid credentials from ${id} in 5 min`,
          related: { keys: [], ips, tenants: [] },
          signals: { distinctCredentials: distinct, ips: ips.length },
        });
      }
    }
    return findings;
  }

  /** True if this key was already in use before `t` (a known client in a range under suspicion). */
  keyKnownBefore(keyId: string, t: number): boolean {
    const s = this.keys.get(keyId);
    return s !== undefined && s.firstSeen < t;
  }

  /** Keys seen here sending template `t` from `net` since `since`, and their tenants. */
  templateKeysOn(t: number, net: string, since: number): { keys: string[]; tenants: string[] } {
    const ts = this.templates.get(t | 0);
    const keys: string[] = [];
    const tenants = new Set<string>();
    if (!ts) return { keys, tenants: [] };
    if (!ts.senders) {
      if (ts.net === net && ts.last >= since)
        return { keys: [ts.key], tenants: ts.tenant ? [ts.tenant] : [] };
      return { keys, tenants: [] };
    }
    const s = ts.senders;
    for (const [k, n] of s.keyNet) {
      if (n !== net || (s.keys.lastSeen(k) ?? 0) < since) continue;
      keys.push(k);
      const tn = s.keyTenant.get(k);
      if (tn) tenants.add(tn);
    }
    return { keys, tenants: [...tenants] };
  }

  /** Networks this key used for the first time since `since` (here). */
  localNewNets(keyId: string, since: number): number {
    return this.keys.get(keyId)?.nets.countNewSince(since) ?? 0;
  }

  /** Sizes of the state maps, for metrics and tests of boundedness. */
  sizes(): { keys: number; tenants: number; nets: number; templates: number; clients: number } {
    return {
      keys: this.keys.size,
      tenants: this.tenants.size,
      nets: this.nets.size + this.wideNets.size,
      templates: this.templates.size,
      clients: this.clients.size,
    };
  }

  private keyState(o: Observation, now: number): KeyState {
    let s = this.keys.get(o.keyId);
    if (!s) {
      s = {
        ...newRate(now),
        keyId: o.keyId,
        tenantId: o.tenantId,
        nets: new RecentSet(256),
        ranges: new RecentSet(256),
        ips: new RecentSet(256),
        uas: new RecentSet(32),
        endUsers: new RecentSet(4096),
        tpl: new Map(),
        tplPrev: new Map(),
        tplEpoch: Math.floor(now / (2 * MIN)),
        mixBase: new Float64Array(MIX_BINS),
        mixBaseN: 0,
        mixRecent: new Float64Array(MIX_BINS),
        mixRecentN: 0,
        mixWindow: now,
        mixRing: new Uint8Array(2 * MIX_RING),
        mixRingT: new Float64Array(MIX_RING),
        mixRingN: 0,
        mixRingEval: 0,
        kinds: 0,
        novel: -1,
        novelSince: 0,
        novelCount: 0,
        novelTotal: 0,
        novelHistory: 0,
        budgetMax: 0,
        budgetSince: 0,
        budgetCount: 0,
        nextEval: 0,
        lastAction: o.action,
      };
      this.keys.set(o.keyId, s);
      capMap(this.keys, this.caps.keys);
    }
    s.lastAction = o.action;
    return s;
  }

  private netState(map: Map<string, NetState>, net: string): NetState {
    let n = map.get(net);
    if (!n) {
      n = {
        net,
        ips: new RecentSet(256),
        fpTenants: new Map(),
        fpKeys: new Map(),
        failed: null,
        failedIps: null,
        nextFailEval: 0,
      };
      map.set(net, n);
      capMap(map, this.caps.nets);
    }
    return n;
  }

  /** Most of the last 5 minutes' requests name an end user, ≥ 5 of them, ≤ 5 requests each. */
  private manyPeopleAsking(s: KeyState, now: number, n5: number): boolean {
    const eu5 = s.ring.sum(now, S_EU, 30);
    if (eu5 < 0.8 * n5) return false;
    const users = s.endUsers.countSeenSince(now - 5 * MIN);
    return users >= 5 && eu5 <= 5 * users;
  }

  /** Whether the key's last minute was spread over many end users at an ordinary pace each. */
  private moreEndUsers(s: KeyState, now: number): boolean {
    const n1 = s.ring.sum(now, S_REQ, 6);
    const eu1 = s.ring.sum(now, S_EU, 6);
    if (n1 === 0 || eu1 < 0.8 * n1) return false;
    const users = s.endUsers.countSeenSince(now - MIN);
    return users >= 10 && eu1 / users <= 10;
  }

  private evalKey(s: KeyState, o: Observation, now: number, out: Finding[]): void {
    const k = this.k;
    const subject = { keyId: s.keyId, tenantId: s.tenantId };
    const age = now - s.firstSeen;

    // Volume spike against the key's own baseline — unless the growth is more people rather than
    // one client going wild: most requests of the last minute name an end user, from ≥ 10 distinct
    // end users sending ≤ 10 requests a minute each (a launch). End users that never come back are
    // end-user rotation's business (below).
    const v = spike(s, now, k);
    if (v && !this.moreEndUsers(s, now))
      out.push({
        detector: 'volume-spike',
        category: 'unusual-volume',
        score: v.score,
        suggest: 'flag',
        subject,
        capability: '*',
        reason: `request rate ${round(v.rate)}/s is ${round(v.ratio, 1)}x this key's usual ${round(v.base, 3)}/s`,
        related: { keys: [s.keyId], ips: s.ips.membersSeenSince(now - MIN, 10), tenants: [s.tenantId] },
        signals: { rate: round(v.rate), baseline: round(v.base, 3) },
      });

    // Key sharing: many networks this key never used before, within minutes (after its first
    // ESTABLISH_MS, its baseline).
    const newNets = s.nets.countNewSince(
      age < ESTABLISH_MS ? now - 5 * MIN : Math.max(now - 5 * MIN, s.firstSeen + ESTABLISH_MS),
    );
    const oldNets = s.nets.size - newNets;
    const newUas = s.uas.countNewSince(now - 5 * MIN);
    const since = Math.max(now - 5 * MIN, s.firstSeen + ESTABLISH_MS);
    const newRanges = s.ranges.countNewSince(since);
    const slots = Math.min(30, Math.ceil((now - since) / SLOT_MS));
    const recentReqs = s.ring.sum(now, S_REQ, slots);
    const beforeReqs = s.ring.sum(now, S_REQ, slots + 30) - recentReqs;
    const perRequest =
      newNets * Math.max(beforeReqs, 1) >=
      2 * s.nets.countActiveBefore(since, since - 5 * MIN) * Math.max(recentReqs, 1);
    if (
      age >= ESTABLISH_MS &&
      oldNets > 0 &&
      ((newNets >= 6 * k && newNets >= 3 * (oldNets + 1)) ||
        (newRanges >= 6 * k && newRanges >= 2 * (s.ranges.size - newRanges + 1))) &&
      (oldNets <= 3 || perRequest || newClientProducts(s.uas, since) >= 3)
    ) {
      out.push({
        detector: 'key-sharing',
        category: 'shared-credential',
        score: Math.min(1, 0.55 + newNets / 40 + (newUas >= 2 ? 0.2 : 0)),
        suggest: newNets >= 10 * k ? 'quarantine' : 'flag',
        subject,
        capability: '*',
        reason: `key used from ${newNets} new networks (${newRanges} new address ranges) in 5 min (it had used ${oldNets} before)`,
        related: { keys: [s.keyId], ips: s.ips.membersSeenSince(now - 5 * MIN, 50), tenants: [s.tenantId] },
        signals: { newNetworks: newNets, newRanges, previousNetworks: oldNets, newUserAgents: newUas },
      });
    } else if (age < ESTABLISH_MS && newNets >= 24 * k && s.firstSeen - this.startedAt >= OBSERVED_MS) {
      out.push({
        detector: 'key-sharing',
        category: 'shared-credential',
        score: 0.5,
        suggest: 'flag',
        subject,
        capability: '*',
        reason: `a new key used from ${newNets} networks in its first minutes`,
        related: { keys: [s.keyId], ips: s.ips.membersSeenSince(now - 5 * MIN, 50), tenants: [s.tenantId] },
        signals: { newNetworks: newNets },
      });
    }

    // End-user rotation: a surge of end-user ids that never come back. Against the key's own
    // minutes 3 to 10 ago (a product whose customers are mostly new has always looked like that),
    // and only if the new ids do not return (a launch's new users keep chatting).
    const euNew = s.ring.sum(now, S_EU_NEW, 6);
    if (age >= 5 * MIN && euNew >= 8 * k) {
      const eu = s.ring.sum(now, S_EU, 6);
      const euBefore = s.ring.sum(now, S_EU, SLOTS) - s.ring.sum(now, S_EU, 18);
      const newPerMinBefore = (s.ring.sum(now, S_EU_NEW, SLOTS) - s.ring.sum(now, S_EU_NEW, 18)) / 7;
      const { first, returned, burstOnly } = s.endUsers.returnedOf(
        now - 3 * MIN,
        now - 20_000,
        RETURN_GAP_MS,
      );
      const rotating =
        euBefore >= 10 * k &&
        euNew >= EU_NEW_PER_MIN * k &&
        euNew >= 3 * newPerMinBefore + 20 * k &&
        first >= 20 * k &&
        returned <= 0.1 * first;
      const scripted =
        !rotating &&
        euBefore >= 10 * k &&
        euNew >= 2 * newPerMinBefore + 6 * k &&
        first >= 20 * k &&
        ((burstOnly >= 0.5 * first && returned <= 0.25 * first) ||
          (burstOnly >= 0.2 * first && returned <= 0.1 * first && 3 * returned <= burstOnly));
      if (rotating || scripted)
        out.push({
          detector: 'end-user-rotation',
          category: 'automated-abuse',
          score: Math.min(1, 0.5 + euNew / 400),
          suggest: 'flag',
          subject,
          capability: '*',
          reason: rotating
            ? `${euNew} of ${eu} requests in the last minute came from end-user ids never seen before; ${first - returned} of ${first} new end users of the last 3 minutes were not seen again ${RETURN_GAP_MS / 1000} s or more after their first request`
            : `${euNew} of ${eu} requests in the last minute came from end-user ids never seen before; ${burstOnly} of ${first} new end users of the last 3 minutes sent all their requests within ${RETURN_GAP_MS / 1000} s and were not seen again`,
          related: { keys: [s.keyId], ips: s.ips.membersSeenSince(now - MIN, 10), tenants: [s.tenantId] },
          signals: {
            endUserRequests: eu,
            newEndUsers: euNew,
            newPerMinuteBefore: round(newPerMinBefore, 1),
            returned,
            first,
            burstOnly,
          },
        });
    }

    // Distillation: sustained reasoning-extraction prompts with long answers.
    const n5 = s.ring.sum(now, S_REQ, 30);
    const r5 = s.ring.sum(now, S_REASON, 30);
    const out5 = s.ring.sum(now, S_OUT, 30);
    const meanOut = n5 > 0 ? out5 / n5 : 0;
    // The last minute must be busy too: a researcher's occasional long question is not a sweep.
    const n1 = s.ring.sum(now, S_REQ, 6);
    const five = r5 / n5 >= 0.6 && meanOut >= 350;
    const r1 = s.ring.sum(now, S_REASON, 6);
    const outMin = s.ring.sum(now, S_OUT, 6);
    if (
      n5 >= 12 * k &&
      n1 >= 12 * k &&
      (five || (r1 >= 0.6 * n1 && outMin >= 350 * n1)) &&
      !this.manyPeopleAsking(s, now, n5)
    ) {
      let top = 0;
      for (const c of s.tpl.values()) if (c > top) top = c;
      for (const c of s.tplPrev.values()) if (c > top) top = c;
      const strong = n5 >= 60 * k && r5 / n5 >= 0.7 && meanOut >= 500;
      out.push({
        detector: 'distillation',
        category: 'model-extraction',
        score: Math.min(1, 0.5 + n5 / 400 + (strong ? 0.2 : 0)),
        suggest: strong ? 'quarantine' : 'flag',
        subject,
        capability: o.action,
        reason: five
          ? `${r5} of ${n5} requests in 5 min ask for step-by-step reasoning, averaging ${Math.round(meanOut)} output tokens`
          : `${r1} of ${n1} requests in the last minute ask for step-by-step reasoning, averaging ${Math.round(outMin / n1)} output tokens`,
        related: { keys: [s.keyId], ips: s.ips.membersSeenSince(now - 5 * MIN, 10), tenants: [s.tenantId] },
        signals: { requests: n5, reasoning: r5, meanOutputTokens: Math.round(meanOut), topTemplate: top },
      });
    }

    // Output shift (a style shift in what is generated, not in what is asked): the last minute's
    // answers average 1,000 tokens or more, eight times the key's minutes 2 to 10 ago. A key that
    // turned from short help answers to whole novel chapters at the same request rate (traffic
    // written without sight of these detectors: examples/scenarios/independent) changed neither its
    // endpoint, nor its model, nor its prompt lengths. The minute's output is summed first: few keys
    // pass it.
    const out1 = n1 >= 8 * k && age >= 5 * MIN ? s.ring.sum(now, S_OUT, 6) : 0;
    if (out1 >= 1000 * n1) this.outputShift(s, now, n1, out1, subject, out);
  }

  /** The output-shift finding of a key whose last minute's answers were long (see evalKey). */
  private outputShift(
    s: KeyState,
    now: number,
    n1: number,
    out1: number,
    subject: Finding['subject'],
    out: Finding[],
  ): void {
    const k = this.k;
    const nB = s.ring.sum(now, S_REQ, SLOTS) - s.ring.sum(now, S_REQ, 12);
    if (nB < 30 * k) return;
    const meanB = (s.ring.sum(now, S_OUT, SLOTS) - s.ring.sum(now, S_OUT, 12)) / nB;
    const mean1 = out1 / n1;
    const ratio = mean1 / Math.max(meanB, 50);
    if (ratio < 8 * k) return;
    out.push({
      detector: 'style-shift',
      category: 'unusual-usage',
      score: Math.min(1, 0.5 + Math.log10(ratio) / 5),
      suggest: 'flag',
      subject,
      capability: '*',
      reason: `answers of the last minute average ${Math.round(mean1)} output tokens, ${round(ratio, 1)}x this key's usual ${Math.round(meanB)}`,
      related: { keys: [s.keyId], ips: s.ips.membersSeenSince(now - MIN, 10), tenants: [s.tenantId] },
      signals: { meanOutputTokens: Math.round(mean1), baselineOutputTokens: Math.round(meanB), requests: n1 },
    });
  }

  /**
   * Style shift in what the key asks to be generated: ≥ 4 calls within 2 minutes asking for an
   * output budget (`max_tokens` and its kin) of ≥ 2,000 tokens and ≥ 4x the most it asked for in
   * ≥ 30 requests over ≥ 5 minutes. Known when a call is forwarded, a minute or more before the long
   * answers that the output shift waits for (a support bot turned to writing 2,000-word articles).
   */
  private budgetShift(s: KeyState, budget: number, now: number, out: Finding[]): void {
    const k = this.k;
    const big =
      budget >= BUDGET_FLOOR &&
      budget >= 4 * Math.max(s.budgetMax, 1) &&
      s.mixRingN >= 30 * k &&
      now - s.firstSeen >= 5 * MIN;
    const running = s.budgetCount > 0 && now - s.budgetSince <= NOVEL_WINDOW_MS;
    if (!big) {
      if (!running) {
        s.budgetCount = 0;
        if (budget > s.budgetMax) s.budgetMax = budget;
      }
      return;
    }
    if (!running) {
      s.budgetSince = now;
      s.budgetCount = 0;
    }
    if (++s.budgetCount !== 4 * k) return;
    out.push({
      detector: 'style-shift',
      category: 'unusual-usage',
      score: 0.6,
      suggest: 'flag',
      subject: { keyId: s.keyId, tenantId: s.tenantId },
      capability: s.lastAction,
      reason: `${s.budgetCount} calls in ${Math.round((now - s.budgetSince) / 1000)} s asked for up to ${budget} output tokens; its ${s.mixRingN} earlier requests asked for at most ${s.budgetMax}`,
      related: { keys: [s.keyId], ips: s.ips.membersSeenSince(now - MIN, 10), tenants: [s.tenantId] },
      signals: { budget, previousBudget: s.budgetMax, calls: s.budgetCount },
    });
  }

  /**
   * Style shift to a kind of call the key had never made (embeddings, images), first called after
   * ≥ 30 requests over ≥ 5 minutes of something else, and ≥ 4 of them making ≥ a quarter of the
   * key's requests within the next 2 minutes. A key that keeps
   * some of its old traffic (a support bot that turns a third of its calls to images or embeddings)
   * never reaches the histogram distance of the other tests; one image request is a try. Chat,
   * completions and responses are one kind here: pipelines move between them.
   */
  private novelKind(s: KeyState, ep: number, net: string, now: number, out: Finding[]): void {
    const k = this.k;
    if (s.novel >= 0) {
      if (now - s.novelSince > NOVEL_WINDOW_MS) s.novel = -1;
      else {
        s.novelTotal++;
        if (ep === s.novel) s.novelCount++;
        if (s.novelCount >= 4 * k && s.novelCount >= 0.25 * s.novelTotal) {
          out.push({
            detector: 'style-shift',
            category: 'unusual-usage',
            score: Math.min(1, 0.5 + s.novelCount / s.novelTotal / 2),
            suggest: 'flag',
            subject: { keyId: s.keyId, tenantId: s.tenantId },
            capability: s.lastAction,
            reason: `started calling ${ENDPOINTS[s.novel]}, which its ${s.novelHistory} earlier requests never did: ${s.novelCount} of its ${s.novelTotal} requests since`,
            related: { keys: [s.keyId], ips: s.ips.membersSeenSince(now - MIN, 10), tenants: [s.tenantId] },
            signals: { newKind: s.novelCount, requests: s.novelTotal, history: s.novelHistory },
          });
          s.novel = -1;
        }
      }
    }
    const bit = 1 << ep;
    if ((s.kinds & bit) !== 0) return;
    s.kinds |= bit;
    if ((NOVEL_KINDS & bit) === 0 || s.mixRingN < 15 * k || now - s.firstSeen < 5 * MIN) return;
    if (s.mixRingN < 30 * k && !(s.nets.firstSeenOf(net) >= Math.max(now - MIN, s.firstSeen + ESTABLISH_MS)))
      return;
    s.novel = ep;
    s.novelSince = now;
    s.novelCount = 1;
    s.novelTotal = 1;
    s.novelHistory = s.mixRingN;
  }

  /**
   * Style shift on the key's last MIX_RING requests, for a slow key: when they span at least 15 s
   * (fewer than 8 requests per 15 s; a faster key's windows fill in 15 s and are judged at their
   * close), they are compared with the history the same way as a closed window. A window that began
   * before the shift mixes old requests with new ones and may not cross 0.7; the next one takes
   * another 8 requests, which for a key sending one request every 3-4 s was a minute. At most one
   * evaluation per second per key; none for 15 s after a finding.
   */
  private ringShift(s: KeyState, now: number, out: Finding[]): void {
    if (this.k > 1 || s.mixBaseN < 60 * this.k) return;
    const oldest = s.mixRingT[s.mixRingN % MIX_RING]!;
    if (now - oldest < 15_000) return;
    s.mixRingEval = now + 1000;
    // TV distance of the ring's histogram against the history's, per part (endpoint x length; model):
    // 1/2 (sum over the ring's bins of |r/n - p| - p, plus 1), the bins the ring lacks adding p each.
    const ring = s.mixRing;
    const base = s.mixBase;
    const bn = s.mixBaseN;
    let a = 1;
    let b = 1;
    let top = -1;
    let topExcess = Number.NEGATIVE_INFINITY;
    for (let j = 0; j < 2 * MIX_RING; j++) {
      const bin = ring[j]!;
      // Each distinct bin once: count it where it first appears in the ring.
      let first = true;
      let r = 0;
      for (let m = 0; m < 2 * MIX_RING; m++) {
        if (ring[m] !== bin) continue;
        if (m < j) first = false;
        r++;
      }
      if (!first) continue;
      const p = base[bin]! / bn;
      const d = Math.abs(r / MIX_RING - p) - p;
      if (bin < ENDPOINTS.length * 4) a += d;
      else b += d;
      const excess = r - base[bin]! * (MIX_RING / bn);
      if (excess > topExcess) {
        topExcess = excess;
        top = bin;
      }
    }
    const tv = Math.max(a, b) / 2;
    // A higher bar than a window's 0.7: the ring is judged after every request, not once per
    // window, so chance runs (8 embeddings in a row from a key that sends a quarter of them) are
    // tested far more often; a key that switched (7 of its last 8) to what it rarely did reaches 0.8.
    if (tv < 0.8 || s.mixBase[top]! >= 0.1 * bn) return;
    s.mixRingEval = now + 15_000;
    out.push({
      detector: 'style-shift',
      category: 'unusual-usage',
      score: Math.min(1, tv),
      suggest: 'flag',
      subject: { keyId: s.keyId, tenantId: s.tenantId },
      capability: s.lastAction,
      reason:
        top < ENDPOINTS.length * 4
          ? `the mix of endpoints and prompt lengths changed sharply (now mostly ${ENDPOINTS[Math.floor(top / 4)]} calls)`
          : 'the mix of models changed sharply',
      related: { keys: [s.keyId], ips: s.ips.membersSeenSince(now - MIN, 10), tenants: [s.tenantId] },
      signals: { distance: round(tv), recent: MIX_RING, history: bn },
    });
  }

  /** Style shift: the last 15 s of endpoint/model/length mix against the key's history. */
  private closeMixWindow(s: KeyState, window: number, now: number, out: Finding[]): void {
    const rn = s.mixRecentN;
    if (rn >= 8 * this.k && s.mixBaseN >= 60 * this.k) {
      // Total-variation distance of each histogram (endpoint x length class; model), the larger one.
      let a = 0;
      let b = 0;
      for (let i = 0; i < MIX_BINS; i++) {
        const d = Math.abs(s.mixRecent[i]! / rn - s.mixBase[i]! / s.mixBaseN);
        if (i < ENDPOINTS.length * 4) a += d;
        else b += d;
      }
      const tv = Math.max(a, b) / 2;
      if (tv >= 0.7) {
        let bin = 0;
        for (let i = 0; i < MIX_BINS; i++)
          if (
            s.mixRecent[i]! - s.mixBase[i]! * (rn / s.mixBaseN) >
            s.mixRecent[bin]! - s.mixBase[bin]! * (rn / s.mixBaseN)
          )
            bin = i;
        if (s.mixBase[bin]! < 0.1 * s.mixBaseN)
          out.push({
            detector: 'style-shift',
            category: 'unusual-usage',
            score: Math.min(1, tv),
            suggest: 'flag',
            subject: { keyId: s.keyId, tenantId: s.tenantId },
            capability: s.lastAction,
            reason:
              bin < ENDPOINTS.length * 4
                ? `the mix of endpoints and prompt lengths changed sharply (now mostly ${ENDPOINTS[Math.floor(bin / 4)]} calls)`
                : 'the mix of models changed sharply',
            related: { keys: [s.keyId], ips: s.ips.membersSeenSince(now - MIN, 10), tenants: [s.tenantId] },
            signals: { distance: round(tv), recent: rn, history: s.mixBaseN },
          });
      }
    }
    // Fold the window into the history, which forgets slowly (half weight every ~2000 requests).
    for (let i = 0; i < MIX_BINS; i++) s.mixBase[i]! += s.mixRecent[i]!;
    s.mixBaseN += rn;
    if (s.mixBaseN > 4000) {
      for (let i = 0; i < MIX_BINS; i++) s.mixBase[i]! *= 0.5;
      s.mixBaseN *= 0.5;
    }
    s.mixRecent.fill(0);
    s.mixRecentN = 0;
    s.mixWindow = window;
  }

  /** Client fingerprint (user agent + header order + network) shared by keys of many tenants. */
  private evalFingerprint(
    n: NetState,
    fp: number,
    ch: number,
    o: Observation,
    now: number,
    out: Finding[],
  ): void {
    const since = now - 10 * MIN;
    const ts = n.fpTenants.get(fp | 0);
    if (!ts) return;
    const ft = ts.countSeenSince(since);
    if (ft < 4 * this.k) return;
    const keys = n.fpKeys.get(fp | 0)?.membersSeenSince(since, 500) ?? [];
    // The capability the fingerprint's keys mostly use (not whichever request happened to trigger).
    const votes = new Map<string, number>();
    let capability = o.action;
    let best = 0;
    for (const k of keys) {
      const a = this.keys.get(k)?.lastAction;
      if (!a) continue;
      const v = (votes.get(a) ?? 0) + 1;
      votes.set(a, v);
      if (v > best) {
        best = v;
        capability = a;
      }
    }
    // Tenants that used this client from other /22s in the last hour (session 11).
    const c = this.clients.get(ch | 0);
    const block = blockOf(o.ip);
    const elsewhere = c
      ? c.tenants.membersSeenSince(now - 60 * MIN, 64).filter((t) => c.tenantBlock.get(t) !== block).length
      : 0;
    const common = elsewhere >= 3 * this.k;
    out.push({
      detector: 'client-fingerprint',
      category: 'automated-abuse',
      score: Math.min(1, 0.5 + ft / 20),
      suggest: ft >= 6 * this.k && !common ? 'quarantine' : 'flag',
      subject: { net: n.net },
      capability,
      reason: `one client fingerprint used by ${keys.length} keys of ${ft} tenants from ${n.net} in 10 min${common ? ` (a client ${elsewhere} tenants use from other networks)` : ''}`,
      related: { keys, ips: n.ips.membersSeenSince(since, 50), tenants: ts.membersSeenSince(since, 100) },
      signals: { tenants: ft, keys: keys.length, tenantsElsewhere: elsewhere },
    });
  }

  private evalTemplate(t: number, state: TemplateState, o: Observation, now: number, out: Finding[]): void {
    const since = now - 10 * MIN;
    // One sender: one tenant at most (its count as the collections would give it).
    if (!state.senders && (state.last >= since ? 1 : 0) < 5 * this.k) return;
    state.senders ??= sendersOf(state);
    const ts = state.senders;
    const tenants = ts.tenants.countSeenSince(since);
    if (tenants < 5 * this.k) return;
    const keys = ts.keys.membersSeenSince(since, 512);
    // Members: keys whose network hosts this template for at least two tenants (proxies shared by
    // accounts); a popular template used independently comes from each tenant's own network.
    const perNet = new Map<string, Set<string>>();
    for (const key of keys) {
      const net = ts.keyNet.get(key);
      const tenant = ts.keyTenant.get(key);
      if (!net || !tenant) continue;
      let set = perNet.get(net);
      if (!set) {
        set = new Set();
        perNet.set(net, set);
      }
      set.add(tenant);
    }
    const members: string[] = [];
    const memberTenants = new Set<string>();
    const memberNets: string[] = [];
    for (const [net, set] of perNet) {
      if (set.size < 3) continue;
      memberNets.push(net);
      for (const tn of set) memberTenants.add(tn);
    }
    for (const key of keys) {
      const net = ts.keyNet.get(key);
      if (net && (perNet.get(net)?.size ?? 0) >= 3) members.push(key);
    }
    if (memberTenants.size < 5 * this.k || members.length < 6 * this.k) return;
    if (members.length / memberNets.length < 3) return;
    out.push({
      detector: 'template-campaign',
      category: 'automated-abuse',
      score: Math.min(1, 0.6 + members.length / 50),
      suggest: 'quarantine',
      subject: { net: memberNets[0] },
      capability: o.action,
      reason: `same prompt template from ${members.length} keys of ${memberTenants.size} tenants through ${memberNets.length} networks in 10 min`,
      related: { keys: members, ips: [], tenants: [...memberTenants].slice(0, 100) },
      signals: {
        template: t.toString(16),
        keys: members.length,
        tenants: memberTenants.size,
        networks: memberNets.length,
      },
    });
  }
}

/** Records `member` in the set of `k`; returns when it was last seen there before (-Infinity if new). */
function seeIn<K, M>(map: Map<K, RecentSet<M>>, k: K, member: M, now: number, cap: number): number {
  let s = map.get(k);
  if (!s) {
    s = new RecentSet<M>(cap);
    map.set(k, s);
    capMap(map, 256);
  }
  return s.touch(member, now);
}

/** Folds closed slots into the EWMA baseline (10-minute time constant; slower while spiking). */
function foldRate(r: Rate, now: number): void {
  const cur = Math.floor(now / SLOT_MS);
  if (cur <= r.lastFolded) return;
  const from = Math.max(r.lastFolded, cur - SLOTS);
  for (let id = from; id < cur; id++) {
    const v = r.ring.at(id, S_REQ);
    const outlier = r.spiking || v > 3 * r.base + 3;
    const alpha =
      r.baseSlots < 30 ? (r.spiking ? 1 / 360 : 1 / (r.baseSlots + 1)) : outlier ? 1 / 360 : 1 / 60;
    r.base += alpha * (v - r.base);
    r.baseSlots++;
  }
  // A long idle gap folds as zeros (bounded by the ring), so the baseline decays with silence.
  if (cur - r.lastFolded > SLOTS) {
    const idle = cur - r.lastFolded - SLOTS;
    r.base *= Math.exp(-idle / 60);
    r.baseSlots += idle;
  }
  r.lastFolded = cur;
}

/** Rate over the last 30 s against the baseline; a subject that spiked before and calmed down is not flagged again. */
function spike(
  r: Rate,
  now: number,
  k: number,
): { rate: number; base: number; ratio: number; score: number } | null {
  const count = r.ring.sum(now, S_REQ, 3);
  const span = (now % SLOT_MS) + 2 * SLOT_MS;
  const rate = (count * 1000) / Math.max(span, SLOT_MS);
  const base = r.base / (SLOT_MS / 1000);
  // (session 8: a burst is remembered before the baseline has settled, after its first minute; only
  // findings wait for a settled baseline)
  const on = r.baseSlots >= 6 && count >= 30 * k && rate >= Math.max(10 * base * k, 1);
  if (!on) {
    if (r.spiking && rate < 3 * base + 0.2) {
      r.spiking = false;
      r.spikes++;
      r.lastSpikeEnd = now;
      r.spikeFrom = -1;
    }
    return null;
  }
  const first = !r.spiking;
  r.spiking = true;
  if (first && r.baseSlots < 30) r.spikeFrom = now;
  if (r.baseSlots < 30) return null;
  // A burst this subject has shown (and ended) before is its pattern (a nightly batch), not an attack;
  // one that began before the baseline settled is judged once it has gone on 90 s (session 9).
  const sustained = !first && r.spikes === 0 && r.spikeFrom >= 0 && now - r.spikeFrom >= 90_000;
  if (sustained) r.spikeFrom = -1;
  else if (!first || r.spikes > 0) return null;
  const ratio = base > 0 ? rate / base : rate * 100;
  return { rate, base, ratio, score: Math.min(1, 0.4 + Math.log10(Math.max(ratio, 1)) / 5) };
}

/** Products (user agents' first tokens, lower-cased) first seen since `since` that no older user agent named. */
function newClientProducts(uas: RecentSet<string>, since: number): number {
  const product = (ua: string) => (/^[^/\s]*/.exec(ua)?.[0] ?? ua).toLowerCase();
  const { fresh, before } = uas.membersSplitAt(since);
  const known = new Set(before.map(product));
  return new Set(fresh.map(product).filter((p) => !known.has(p))).size;
}
