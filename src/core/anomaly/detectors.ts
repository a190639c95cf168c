/**
 * The anomaly detectors. Pure: time comes in as `now` (ms), nothing is read from the world.
 *
 * `observe` is the hot path: O(1) amortised work per request (a few map updates and slot adds);
 * each subject (key, tenant, network, template) is evaluated at most once per `EVAL_EVERY_MS`,
 * and that evaluation (a scan of bounded maps) is the batched, heavier part. Memory is bounded:
 * every map has a cap and drops its oldest entries first.
 */

import { type InjectionAttempt, InjectionAttempts } from './injection.js';
import {
  blockOf,
  clientHash,
  fingerprintOn,
  isInternalAddress,
  lengthClassOf,
  netOf,
  REASONING,
  rangeOfNet,
  rawClientHash,
  templateHashes,
  wideNetOf,
} from './text.js';
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
  /**
   * When the request was sent (its upstream call began), if before `now`: end users are dated by it.
   * An observation comes when the answer ends, seconds later for a long answer, so two requests
   * sent together for one id were "seen again" 10 s apart when their answers' lengths differed.
   */
  sentAt?: number;
  /**
   * Observed when it was forwarded: its output and status are not known yet (they come with
   * `completed`). Otherwise the call has ended (or was never forwarded).
   */
  started?: boolean;
  /** The output budget the call asks for (`max_tokens` and its kin; -1 or absent: none). */
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
/** A key's first minutes of traffic: its baseline of networks (key sharing). */
const ESTABLISH_MS = 2 * MIN;
/**
 * A key first seen this soon after detection started (a restart, a replay's first minutes) is not
 * known to be new: the finding for a new key used from many networks at once is not made for it.
 */
const OBSERVED_MS = 10 * MIN;
/** How long after its first request an end-user id must be seen again to count as a returning user. */
const RETURN_GAP_MS = 10_000;
/**
 * Requests from new end-user ids in a minute before rotation is considered. 25 caught one more
 * slow rotation (20-35 new ids a minute) of twelve in traffic written without sight of this
 * detector, and flagged a product launch whose users mostly ask once; 40 is kept.
 */
const EU_NEW_PER_MIN = 40;
/**
 * New networks in 5 minutes before a key is shared (times the policy's sensitivity; 10 quarantines).
 * 6, not 8: a leak whose networks join one every 20-40 s was flagged about a minute later at 8
 * (traffic written without sight of this detector, examples/scenarios/independent, seeds 38-42: p95
 * 78 -> 27 s); no legitimate key of our generator or of the first two blind ones was flagged for it.
 */
export const KEY_SHARING_NEW_NETS = 6;
/**
 * New end-user ids in a minute before a scripted rotation (ids spent in bursts within RETURN_GAP_MS)
 * is considered: 8 (it was 20; the blind generators rotate 9-14 a minute at their slowest).
 */
const EU_SCRIPTED_NEW_PER_MIN = 8;
/** How long a spike that began before its subject's baseline settled must go on to be judged. */
const SUSTAINED_MS = 90_000;
/** A style shift to a bin holding this share of the key's history is a return to a known mode. */
const KNOWN_MODE_SHARE = 0.1;
/** `returnedOf` for a key that is not asked (no allocation per evaluation). */
const NO_RETURNS = { first: 0, returned: 0, burstOnly: 0 } as const;
/** Tenants a network must send one template for to be one of a campaign's networks. */
const MEMBER_NET_TENANTS = 3;

// Series of a key's SlotRing.
const S_REQ = 0;
const S_REASON = 1;
const S_OUT = 2;
const S_EU = 3;
const S_EU_NEW = 4;
/** Calls that have ended: what S_OUT's tokens are averaged over (a call observed at its start ends later). */
const S_DONE = 5;
const SERIES = 6;

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
/**
 * Requests over ≥ 5 min before a never-made kind or a much larger budget counts (`novelKind`,
 * `budgetShift`); for a never-made kind, NOVEL_FEW when it comes from a new network.
 */
const NOVEL_HISTORY = 30;
const NOVEL_FEW = 15;
/** New client products that make a busy key's new networks a leak (see `newClients`). */
const NEW_CLIENT_PRODUCTS = 3;
/** The smallest output budget a call must ask for to count in a budget shift (`budgetShift`). */
const BUDGET_FLOOR = 2000;
/** Requests in the ring a slow key's style shift is judged on (as many as a window needs). */
const MIX_RING = 8;
/** Per-bin counts of one ring evaluation (left all zero after each). */
const RING_COUNTS = new Uint8Array(MIX_BINS);

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
  /** When a spike that began before the baseline settled began (negative: none, or already judged). */
  spikeFrom: number;
}

interface KeyState extends Rate {
  keyId: string;
  tenantId: string;
  nets: RecentSet<string>;
  /** The address ranges (/16, IPv6 /32) of `nets`, each dated by the first of its networks seen. */
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
  /**
   * The address of the key's last request, its network (`netOf`) and whether it is public (not
   * `isInternalAddress`): a key's address rarely changes, and both are pure functions of it. The
   * same network string on every request is also hashed once, for every map it keys.
   */
  ip: string;
  net: string;
  publicIp: boolean;
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

/**
 * A client (user agent and header names in order) on any network: the tenants and keys that used it,
 * each with the /22 it came from when it last joined (first use, or back after 10 minutes).
 */
interface ClientState {
  tenants: RecentSet<string>;
  tenantBlock: Map<string, string>;
  keys: RecentSet<string>;
  keyBlock: Map<string, string>;
}

/** Clients kept (`capMap`, oldest first): a client that rotates its user agent makes one per request. */
const MAX_CLIENTS = 4096;

/** How long the detectors watch traffic before a client seen on one /22 only counts as rare. */
const CLIENT_WATCH_MS = 5 * 60_000;

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

/**
 * A tenant's rate state. Written out field by field, not spread from a `Rate` (`{ ...rate, x }`):
 * V8 gave the spread copies of a `Rate` with fields added dictionary-mode properties, so every read
 * of a key's or tenant's state on every request was a hash lookup instead of a fixed offset (and
 * `foldRate` and `spike` went megamorphic). One literal per kind: one hidden class, fields in-object.
 */
function newTenant(now: number): Rate & { nextEval: number } {
  return {
    ring: new SlotRing(SLOTS, SLOT_MS, SERIES),
    base: 0,
    baseSlots: 0,
    lastFolded: Math.floor(now / SLOT_MS),
    firstSeen: now,
    spiking: false,
    spikes: 0,
    // Never read (a record of the last spike's end). A double from the start, as every later value
    // (a clock reading): a small integer here changed the hidden class of every state object at the
    // first spike's end, minutes into a run, and every optimized function that reads them with it.
    lastSpikeEnd: Number.NEGATIVE_INFINITY,
    spikeFrom: -1.5,
    nextEval: 0,
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
  /** By client hash (`clientHash | 0`), for `evalClient`. */
  private readonly clients = new Map<number, ClientState>();
  private readonly k: number;
  private readonly caps: { keys: number; tenants: number; nets: number; templates: number };
  private readonly injections: InjectionAttempts;
  /**
   * The first observation's time. A key first seen within OBSERVED_MS of it may be an old key seen
   * for the first time (a restart, the start of a replayed trace), not a new one.
   */
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
    const key = this.keyState(o, now);
    if (o.ip !== key.ip) {
      key.ip = o.ip;
      key.net = netOf(o.ip);
      key.publicIp = !isInternalAddress(o.ip);
    }
    const net = key.net;
    this.lastTemplate = template;
    this.lastTail = tail;
    this.lastNet = net;
    this.lastPublic = key.publicIp;

    // Key counters.
    foldRate(key, now);
    key.ring.add(now, S_REQ, 1);
    if (reasoning) key.ring.add(now, S_REASON, 1);
    key.ring.add(now, S_OUT, o.outputTokens);
    if (o.started !== true) key.ring.add(now, S_DONE, 1);
    if (key.nets.see(net, now)) key.ranges.see(rangeOfNet(net), now);
    key.ips.see(o.ip, now);
    key.uas.see(o.userAgent ?? '-', now);
    if (o.endUser) {
      key.ring.add(now, S_EU, 1);
      // (NaN, or later than now, is no date: `now`)
      const sent = o.sentAt !== undefined && o.sentAt < now ? o.sentAt : now;
      if (key.endUsers.see(o.endUser, sent)) key.ring.add(now, S_EU_NEW, 1);
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
    this.novelKind(key, ep, now, findings);
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
      tenant = newTenant(now);
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
    const fp = fingerprintOn(ch, net);
    const since = now - 10 * MIN;
    // The fingerprint is evaluated when a tenant or key joins it (or comes back within the window):
    // its counts only grow then; between joins they can only shrink.
    const joined = seeIn(n.fpTenants, fp | 0, o.tenantId, now, 64) < since;
    const keyJoined = seeIn(n.fpKeys, fp | 0, o.keyId, now, 256) < since;
    if (template) this.correlateTemplate(o, template, net, now, findings);
    if (tail) this.correlateTemplate(o, tail, net, now, findings);
    if (joined || keyJoined) this.evalFingerprint(n, fp, ch, o, now, findings);
    this.correlateClient(ch, o, now, findings);
  }

  /** The client on any network: see `evalClient`. */
  private correlateClient(ch: number, o: Observation, now: number, findings: Finding[]): void {
    let c = this.clients.get(ch | 0);
    if (!c) {
      c = {
        tenants: new RecentSet(64),
        tenantBlock: new Map(),
        keys: new RecentSet(256),
        keyBlock: new Map(),
      };
      this.clients.set(ch | 0, c);
      capMap(this.clients, MAX_CLIENTS);
    }
    const since = now - 10 * MIN;
    const tenantJoined = c.tenants.touch(o.tenantId, now) < since;
    const keyJoined = c.keys.touch(o.keyId, now) < since;
    if (!tenantJoined && !keyJoined) return;
    const block = blockOf(o.ip);
    if (keyJoined) {
      c.keyBlock.set(o.keyId, block);
      capMap(c.keyBlock, 256);
    }
    if (tenantJoined) {
      c.tenantBlock.set(o.tenantId, block);
      capMap(c.tenantBlock, 64);
      this.evalClient(c, block, o, now, findings);
    }
  }

  /** Who sends the same prompt template, from which networks. */
  private correlateTemplate(o: Observation, t: number, net: string, now: number, findings: Finding[]): void {
    const since = now - 10 * MIN;
    let ts = this.templates.get(t | 0);
    // One call of evalTemplate at the end for every case: a new template (evaluated at once, from
    // the first requests on) and a lone sender back after the window (first minutes into a run) once
    // had a call each, and the late one, never run when this was optimized, deoptimized it.
    let evaluate: boolean;
    if (!ts) {
      ts = { key: o.keyId, tenant: o.tenantId, net, first: now, last: now, senders: null };
      this.templates.set(t | 0, ts);
      capMap(this.templates, this.caps.templates);
      evaluate = true;
    } else if (!ts.senders && ts.key === o.keyId && ts.tenant === o.tenantId && ts.net === net) {
      const prev = ts.last;
      ts.last = now;
      evaluate = prev < since;
    } else {
      // Evaluated at once when a key or tenant joins (or comes back within the window), or a key
      // moves network: only then can its counts grow (a lockstep round is over in seconds).
      ts.senders ??= sendersOf(ts);
      const s = ts.senders;
      evaluate = s.keys.touch(o.keyId, now) < since;
      if (s.tenants.touch(o.tenantId, now) < since) evaluate = true;
      if (s.keyNet.get(o.keyId) !== net) {
        s.keyNet.set(o.keyId, net);
        capMap(s.keyNet, 512);
        evaluate = true;
      }
      if (s.keyTenant.get(o.keyId) !== o.tenantId) {
        s.keyTenant.set(o.keyId, o.tenantId);
        capMap(s.keyTenant, 512);
        evaluate = true;
      }
    }
    if (evaluate) this.evalTemplate(t, ts, o, now, findings);
  }

  /** A failed authentication: credential stuffing is many different credentials from one range. */
  authFailed(a: AuthFailure, now: number): Finding[] {
    const findings = this.out;
    findings.length = 0;
    const net = netOf(a.ip);
    const wide = wideNetOf(a.ip);
    // Per /24: 10 distinct credentials in 5 min quarantine the range. Per /16: 25 quarantine, 12 flag
    // (a careful stuffer spread over the four /24s of a /22 at ~10 guesses a minute reached 25 only
    // after 150-180 s: traffic written without sight of this detector, examples/scenarios/independent-c).
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

  /**
   * The end of a call observed when it started (with no output then): its output tokens, counted
   * in the slot of its end. O(1); no finding (the key's next evaluation reads them).
   */
  completed(keyId: string, outputTokens: number, now: number): void {
    const s = this.keys.get(keyId);
    if (!s) return;
    s.ring.add(now, S_OUT, outputTokens);
    s.ring.add(now, S_DONE, 1);
  }

  /** The key's requests seen here in the last 5 minutes and in the 5 before (`SharedSignals`). */
  requestsRecentAndBefore(keyId: string, now: number): { recent: number; before: number } {
    const s = this.keys.get(keyId);
    if (!s) return { recent: 0, before: 0 };
    const recent = s.ring.sum(now, S_REQ, 30);
    return { recent, before: s.ring.sum(now, S_REQ, 60) - recent };
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
      // The `Rate` fields written out (see newTenant).
      s = {
        ring: new SlotRing(SLOTS, SLOT_MS, SERIES),
        base: 0,
        baseSlots: 0,
        lastFolded: Math.floor(now / SLOT_MS),
        firstSeen: now,
        spiking: false,
        spikes: 0,
        lastSpikeEnd: Number.NEGATIVE_INFINITY, // (a double: see newTenant)
        spikeFrom: -1.5,
        keyId: o.keyId,
        tenantId: o.tenantId,
        nets: new RecentSet(256),
        ranges: new RecentSet(256),
        ips: new RecentSet(256),
        uas: new RecentSet(32),
        endUsers: new RecentSet(4096),
        tpl: new Map(),
        tplPrev: new Map(),
        // No epoch yet: the key's first observation rolls over to its epoch (two empty maps for
        // two empty maps). So `observe` runs the rollover within its first requests, not first
        // minutes into a run, when the never-run `new Map()` there sent the optimized code back.
        tplEpoch: -1,
        mixBase: new Float64Array(MIX_BINS),
        // -0, a double: the history halves (`*= 0.5`) and takes fractions once a key has sent 4,000
        // requests; from a small-integer 0 that changed every key's hidden class at that moment
        // (observe, evalKey, foldRate, spike, closeMixWindow all deoptimized). -0 counts as 0 in
        // everything done with it (sums, comparisons; divisions only once it is 60 or more).
        mixBaseN: -0,
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
        ip: o.ip,
        net: netOf(o.ip),
        publicIp: !isInternalAddress(o.ip),
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

  /**
   * Whether the key's last `slots` (its `n` requests) came from many people: ≥ 80 % of them name an
   * end user, from ≥ `minUsers` distinct end users sending ≤ `maxEach` requests each on average.
   */
  private carriedByEndUsers(
    s: KeyState,
    now: number,
    slots: number,
    n: number,
    minUsers: number,
    maxEach: number,
  ): boolean {
    const eu = s.ring.sum(now, S_EU, slots);
    if (n === 0 || eu < 0.8 * n) return false;
    const users = s.endUsers.countSeenSince(now - slots * SLOT_MS);
    return users >= minUsers && eu <= maxEach * users;
  }

  /**
   * The last minute spread over ≥ 10 end users at ≤ 10 requests each: a launch, not one client
   * going wild (volume spike).
   */
  private moreEndUsers(s: KeyState, now: number): boolean {
    return this.carriedByEndUsers(s, now, 6, s.ring.sum(now, S_REQ, 6), 10, 10);
  }

  /**
   * The last 5 minutes (`n5` requests) from ≥ 5 end users at ≤ 5 requests each. An app serving
   * students who ask for step-by-step explanations is not one client sweeping topics (traffic
   * written without sight of this detector: examples/scenarios/independent-b); a sweep behind fake
   * end-user ids needs more than 5 requests per id or fresh ids, which end-user rotation sees.
   */
  private manyPeopleAsking(s: KeyState, now: number, n5: number): boolean {
    return this.carriedByEndUsers(s, now, 30, n5, 5, 5);
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

    // Key sharing: many networks this key never used before, within minutes. Either finding needs
    // at least KEY_SHARING_NEW_NETS·k new networks: a key that has used fewer in all is not scanned (0 stands for "too
    // few"), and its user agents only when the first finding is made. Both scans ran on every
    // evaluation of every key, for nothing on all but a few.
    // "New" is first seen in the last 5 minutes and after the key's first ESTABLISH_MS: what a key
    // does in its first minutes is its baseline. Otherwise a key that has always been called from
    // many networks (an edge deployment, a mobile app calling with its own key) had "used 1 network
    // before" 5 minutes after it was first seen, and was quarantined (traffic written without sight
    // of this detector: examples/scenarios/independent-b).
    // (A key younger than that: every network is new.)
    const since = Math.max(now - 5 * MIN, s.firstSeen + ESTABLISH_MS);
    const newNets =
      s.nets.size < KEY_SHARING_NEW_NETS * k
        ? 0
        : age < ESTABLISH_MS
          ? s.nets.size
          : s.nets.countNewSince(since);
    const oldNets = s.nets.size - newNets;
    // Or new address ranges (/16, IPv6 /32) the key had never used, twice the ranges it used (its
    // old networks until session 11: an owner of 3 networks in one ISP's range waited for 8): a leak
    // comes from strangers' ISPs all over, an owner's growth from more addresses of its own provider
    // (an autoscaled backend, a second office of one ISP). A key with 2 networks of its own had to
    // reach 9 new ones, and a leak joining one network every 15-20 s took 2-3 minutes to (the blind
    // generators: independent-b seeds 1-5 and 15-17, p95 ~140 -> ~80 s; independent-c).
    const newRanges =
      newNets >= KEY_SHARING_NEW_NETS * k && age >= ESTABLISH_MS ? s.ranges.countNewSince(since) : 0;
    if (
      age >= ESTABLISH_MS &&
      oldNets > 0 &&
      ((newNets >= KEY_SHARING_NEW_NETS * k && newNets >= 3 * (oldNets + 1)) ||
        (newRanges >= KEY_SHARING_NEW_NETS * k && newRanges >= 2 * (s.ranges.size - newRanges + 1))) &&
      (oldNets <= 3 || moreNetworksPerRequest(s, newNets, since, now) || newClients(s, since))
    ) {
      const newUas = s.uas.countNewSince(now - 5 * MIN);
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
    // (The age first: the slot sums are pure, and a younger key needs none of them.)
    const euNew = age >= 5 * MIN ? s.ring.sum(now, S_EU_NEW, 6) : 0;
    if (age >= 5 * MIN && euNew >= EU_SCRIPTED_NEW_PER_MIN * k) {
      const eu = s.ring.sum(now, S_EU, 6);
      const euBefore = s.ring.sum(now, S_EU, SLOTS) - s.ring.sum(now, S_EU, 18);
      const newPerMinBefore = (s.ring.sum(now, S_EU_NEW, SLOTS) - s.ring.sum(now, S_EU_NEW, 18)) / 7;
      // "Came back": seen again 10 s or more after its first request. A rotating client that
      // spends each id on a burst of two or three requests within a second or two (traffic
      // written without sight of this detector: examples/scenarios/independent) re-used every
      // id; people come back to a conversation (half of a many-users app's ids after a minute).
      // (a key without end users 3-10 minutes ago, or with fewer than 20 new ones, is not judged)
      const { first, returned, burstOnly } =
        euBefore >= 10 * k ? s.endUsers.returnedOf(now - 3 * MIN, now - 20_000, RETURN_GAP_MS) : NO_RETURNS;
      const rotating =
        first >= 20 * k &&
        euNew >= EU_NEW_PER_MIN * k &&
        euNew >= 3 * newPerMinBefore + 20 * k &&
        returned <= 0.1 * first;
      // Scripted: fewer new ids (from EU_SCRIPTED_NEW_PER_MIN), spent on bursts of requests sent
      // within 10 s and never seen again: half of them with at most a quarter back later, or a
      // fifth with at most a tenth back (and under a third of the burst ones). A person's next
      // message waits for the answer and a reading, and people come back; a launch's new users
      // come back (10-90 % of its new ids in every generator) and rarely send two calls within
      // 10 s. The blind generators rotate 9-34 ids a minute this way: 2-3 requests each, 0-15 %
      // seen again later. Judged from 20 new ids, as the other path: from 12, our own product
      // launch was flagged in 2 of 15 seeds (its first users, drawn from a small pool, come back
      // within seconds), from 16 in seed 362 (session 11: 11 of its first 16 new users had only
      // sent requests within 10 s of their first so far; half of them came back within a minute).
      // An agent product whose every user message makes several calls within seconds, launched to
      // people who ask once, would meet this rule: a flag, not a refusal.
      const scripted =
        first >= 20 * k &&
        !rotating &&
        euNew >= 2 * newPerMinBefore + 6 * k &&
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

    // Distillation: sustained reasoning-extraction prompts with long answers. The last minute must
    // be busy too: a researcher's occasional long question is not a sweep. That minute is summed
    // first: most keys fail it, and then the three 5-minute sums (pure) are not needed.
    const n1 = s.ring.sum(now, S_REQ, 6);
    const n5 = n1 >= 12 * k ? s.ring.sum(now, S_REQ, 30) : 0;
    if (n5 >= 12 * k) this.distillation(s, o, now, n1, n5, subject, out);

    // Output shift (a style shift in what is generated, not in what is asked): the last minute's
    // answers average 1,000 tokens or more, eight times the key's minutes 2 to 10 ago. A key that
    // turned from short help answers to whole novel chapters at the same request rate (traffic
    // written without sight of these detectors: examples/scenarios/independent) changed neither its
    // endpoint, nor its model, nor its prompt lengths. The minute's output is summed first: few keys
    // pass it.
    // (Averaged over the calls that ended in that minute: a call seen when it was forwarded brings
    // its output when it ends.)
    const out1 = n1 >= 8 * k && age >= 5 * MIN ? s.ring.sum(now, S_OUT, 6) : 0;
    const d1 = out1 > 0 ? s.ring.sum(now, S_DONE, 6) : 0;
    if (out1 > 0 && out1 >= 1000 * d1) this.outputShift(s, now, d1, out1, subject, out);
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
    const nB = s.ring.sum(now, S_DONE, SLOTS) - s.ring.sum(now, S_DONE, 12);
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

  /** The distillation finding of a key whose last minute and 5 minutes were busy (see evalKey). */
  private distillation(
    s: KeyState,
    o: Observation,
    now: number,
    n1: number,
    n5: number,
    subject: Finding['subject'],
    out: Finding[],
  ): void {
    const k = this.k;
    const r5 = s.ring.sum(now, S_REASON, 30);
    const out5 = s.ring.sum(now, S_OUT, 30);
    // Output averaged over the calls that ended (see S_DONE); shares of reasoning over the calls made.
    const d5 = s.ring.sum(now, S_DONE, 30);
    const meanOut = d5 > 0 ? out5 / d5 : 0;
    // The flag also on the last minute alone (it holds ≥ 12 requests): a key whose ordinary traffic
    // came before the sweep diluted five minutes' shares, and was flagged 84-109 s after the sweep
    // began in traffic written without sight of this detector (examples/scenarios/independent).
    // A quarantine still needs the five minutes.
    const five = r5 / n5 >= 0.6 && meanOut >= 350;
    const r1 = five ? 0 : s.ring.sum(now, S_REASON, 6);
    const out1 = five ? 0 : s.ring.sum(now, S_OUT, 6);
    const d1 = five ? 0 : s.ring.sum(now, S_DONE, 6);
    if ((five || (r1 >= 0.6 * n1 && out1 > 0 && out1 >= 350 * d1)) && !this.manyPeopleAsking(s, now, n5)) {
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
          : `${r1} of ${n1} requests in the last minute ask for step-by-step reasoning, averaging ${Math.round(out1 / Math.max(d1, 1))} output tokens`,
        related: { keys: [s.keyId], ips: s.ips.membersSeenSince(now - 5 * MIN, 10), tenants: [s.tenantId] },
        signals: { requests: n5, reasoning: r5, meanOutputTokens: Math.round(meanOut), topTemplate: top },
      });
    }
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
      s.mixRingN >= NOVEL_HISTORY * k &&
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
  private novelKind(s: KeyState, ep: number, now: number, out: Finding[]): void {
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
    if ((NOVEL_KINDS & bit) === 0 || s.mixRingN < NOVEL_FEW * k || now - s.firstSeen < 5 * MIN) return;
    // A key of few requests has too little history for a first embedding call to mean much (a
    // small app adding retrieval): it counts when it also comes from a network the key never used
    // before this minute, past its first minutes (someone else holding the key).
    if (
      s.mixRingN < NOVEL_HISTORY * k &&
      !(s.nets.firstSeenOf(s.net) >= Math.max(now - MIN, s.firstSeen + ESTABLISH_MS))
    )
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
    if (now - oldest < 15_000) {
      // Every later oldest entry is newer: the span cannot reach 15 s before this one's 15 s are up.
      s.mixRingEval = oldest + 15_000;
      return;
    }
    s.mixRingEval = now + 1000;
    // TV distance of the ring's histogram against the history's, per part (endpoint x length; model):
    // 1/2 (sum over the ring's bins of |r/n - p| - p, plus 1), the bins the ring lacks adding p each.
    const ring = s.mixRing;
    const counts = RING_COUNTS;
    for (let j = 0; j < 2 * MIX_RING; j++) counts[ring[j]!]!++;
    const base = s.mixBase;
    const bn = s.mixBaseN;
    let a = 1;
    let b = 1;
    let top = -1;
    let topExcess = Number.NEGATIVE_INFINITY;
    for (let j = 0; j < 2 * MIX_RING; j++) {
      const bin = ring[j]!;
      const r = counts[bin]!;
      if (r === 0) continue; // (a bin already counted)
      counts[bin] = 0;
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
    if (tv < 0.8 || knownMode(s, top)) return;
    s.mixRingEval = now + 15_000;
    out.push(mixShift(s, tv, top, MIX_RING, bn, now));
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
        if (!knownMode(s, bin)) out.push(mixShift(s, tv, bin, rn, s.mixBaseN, now));
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
    const capability = this.mostUsedAction(keys, o.action);
    // A common client (an SDK release that tenants on other networks use too) shared on one /24 is
    // also what customers of one cloud's NAT or one office building look like: flagged for a
    // person to look at, never quarantined. A farm's own tool is used nowhere else.
    const elsewhere = this.tenantsElsewhere(ch, blockOf(o.ip), now);
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

  /** Tenants that used this client (`clientHash`) from another /22 than `block` in the last hour. */
  private tenantsElsewhere(ch: number, block: string, now: number): number {
    const c = this.clients.get(ch | 0);
    if (!c) return 0;
    let n = 0;
    for (const t of c.tenants.membersSeenSince(now - 60 * MIN, 64)) if (c.tenantBlock.get(t) !== block) n++;
    return n;
  }

  /**
   * A client that only this /22 uses, shared by keys of several tenants there: a farm of accounts
   * on one hoster's block with its own tool (a spoofed or unusual SDK, a headless browser), each
   * account sending slowly and the accounts joining one by one. Three tenants within 10 minutes
   * are enough when nobody on any other network used the client in the last hour: a common client
   * (an SDK release) is seen from many networks, and tenants who share a NAT or a cloud /24 share
   * common clients. The per-/24 rule (`evalFingerprint`) needs four tenants on one /24, which a
   * farm spread over a /22 reaches late or never. "No other network" means something only once the
   * detectors have watched traffic for CLIENT_WATCH_MS (at a start or restart every client is new).
   */
  private evalClient(c: ClientState, block: string, o: Observation, now: number, out: Finding[]): void {
    if (now - this.startedAt < CLIENT_WATCH_MS) return;
    const since = now - 10 * MIN;
    let here = 0;
    for (const t of c.tenants.membersSeenSince(now - 60 * MIN, 64)) {
      if (c.tenantBlock.get(t) !== block) return;
      if (c.tenants.lastSeen(t)! >= since) here++;
    }
    if (here < 3 * this.k) return;
    const keys: string[] = [];
    for (const k of c.keys.membersSeenSince(since, 256)) if (c.keyBlock.get(k) === block) keys.push(k);
    out.push({
      detector: 'client-fingerprint',
      category: 'automated-abuse',
      score: Math.min(1, 0.5 + here / 20),
      suggest: here >= 6 * this.k ? 'quarantine' : 'flag',
      subject: { net: block },
      capability: this.mostUsedAction(keys, o.action),
      reason: `one client, used from no other network in an hour, used by ${keys.length} keys of ${here} tenants from ${block} in 10 min`,
      related: { keys, ips: [o.ip], tenants: c.tenants.membersSeenSince(since, 100) },
      signals: { tenants: here, keys: keys.length },
    });
  }

  /** The capability most of these keys used last (`fallback` if none is known). */
  private mostUsedAction(keys: readonly string[], fallback: string): string {
    const votes = new Map<string, number>();
    let capability = fallback;
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
    return capability;
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
    // Members: keys whose network hosts this template for at least three tenants (proxies shared by
    // accounts); a popular template used independently comes from each tenant's own network. Two
    // tenants on one network are not enough: two customers on one cloud /24 who both use a popular
    // template were quarantined with a campaign that used it too, from other networks.
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
      if (set.size < MEMBER_NET_TENANTS) continue;
      memberNets.push(net);
      for (const tn of set) memberTenants.add(tn);
    }
    for (const key of keys) {
      const net = ts.keyNet.get(key);
      if (net && (perNet.get(net)?.size ?? 0) >= MEMBER_NET_TENANTS) members.push(key);
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

/**
 * For a key already used from more than 3 networks: the last 5 minutes' new networks per request at
 * least twice the networks per request of the 5 minutes before (networks in use then, first seen
 * before the last 5 minutes). An app called from many networks (a mobile app whose devices move
 * between carriers) brings more networks as it gets busier, at the rate it always did: without
 * this, one that grew from 24 requests and 11 networks in its first 2 minutes to 200 requests from
 * 36 new ones was quarantined (traffic written without sight of this detector:
 * examples/scenarios/independent-c). A key with a home of 1-3 networks is not asked: a leak that
 * sends much from few networks has fewer new networks per request than a quiet home had.
 */
function moreNetworksPerRequest(s: KeyState, newNets: number, since: number, now: number): boolean {
  // `since`: "recent" as `newNets` counts it (5 minutes ago, or the end of the key's first ESTABLISH_MS).
  const slots = Math.min(30, Math.ceil((now - since) / SLOT_MS));
  const recent = s.ring.sum(now, S_REQ, slots);
  const before = s.ring.sum(now, S_REQ, slots + 30) - recent;
  const netsBefore = s.nets.countActiveBefore(since, since - 5 * MIN);
  return newNets * Math.max(before, 1) >= 2 * netsBefore * Math.max(recent, 1);
}

/**
 * For a key already used from more than 3 networks whose new networks do not outgrow its requests:
 * they came with at least NEW_CLIENT_PRODUCTS clients the key never used, told apart by product
 * (the user agent's first token: `curl`, `python-httpx`, `AsyncOpenAI`, `Mozilla`). A leak is
 * strangers' tools; a mobile app's new networks are its own devices, whose user agents differ by
 * app version, OS and model but name the app (traffic written without sight of this detector:
 * examples/scenarios/independent-c, where counting whole user agents quarantined three mobile apps).
 */
function newClients(s: KeyState, since: number): boolean {
  const { fresh, before } = s.uas.membersSplitAt(since);
  if (fresh.length < NEW_CLIENT_PRODUCTS) return false;
  const known = new Set(before.map(productOf));
  const products = new Set<string>();
  for (const ua of fresh) {
    const p = productOf(ua);
    if (!known.has(p)) products.add(p);
  }
  return products.size >= NEW_CLIENT_PRODUCTS;
}

/** A user agent's product: its text up to the first `/` or space (`curl/8.5.0` -> `curl`). */
function productOf(ua: string): string {
  return ua.split(PRODUCT_END, 1)[0]!.toLowerCase();
}
const PRODUCT_END = /[/\s]/;

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

/**
 * Folds closed slots into the EWMA baseline (the mean of the first 30 slots, then a 10-minute time
 * constant; an hour's while spiking, and for a slot over 3x the baseline + 3: an outlier does not
 * teach the baseline at full weight). Before, the first slots of a surge (and every slot of a surge that
 * ramps up over minutes) raised the baseline as fast as the rate, so a key that went from 0.1 to
 * 1.4 requests/s was 8x its "usual" when it got busy enough to judge, and a 3-minute ramp to
 * 2-3/s never passed 5x (traffic written without sight of this detector:
 * examples/scenarios/independent-b). Growth of less than 3x a slot (organic growth) folds as before.
 */
function foldRate(r: Rate, now: number): void {
  const cur = Math.floor(now / SLOT_MS);
  if (cur <= r.lastFolded) return;
  const from = Math.max(r.lastFolded, cur - SLOTS);
  for (let id = from; id < cur; id++) {
    const v = r.ring.at(id, S_REQ);
    const outlier = r.spiking || v > 3 * r.base + 3;
    // Before the baseline settles it is the mean of the slots so far, except while spiking: a
    // surge in a key's first minutes made its own baseline (4 requests/s against 0.05 became 4x
    // "usual" at settling; traffic written without sight of this detector, independent-c).
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

/**
 * The bin a key shifted to already makes up a tenth of its history: a return to one of its own modes
 * (a data pipeline's run of classifications between runs of extractions and embedding batches,
 * traffic written without sight of this detector: examples/scenarios/independent-c), not a new
 * style. A key turned to what it never or rarely did (images, bulk embeddings) is below.
 */
function knownMode(s: KeyState, bin: number): boolean {
  return s.mixBase[bin]! >= KNOWN_MODE_SHARE * s.mixBaseN;
}

/**
 * The style-shift finding of a key's mix (a closed window or the slow-key ring): total-variation
 * distance `tv`, the bin that grew most (`top`), over `recent` requests against `history`.
 */
function mixShift(
  s: KeyState,
  tv: number,
  top: number,
  recent: number,
  history: number,
  now: number,
): Finding {
  return {
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
    signals: { distance: round(tv), recent, history },
  };
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
  // Every comparison made on every call (all pure), not behind `&&`: behind it, each was first
  // reached minutes into a run (a subject's baseline takes 5 minutes), after this function was
  // optimized without it, and threw that code away, once per comparison.
  const settled = r.baseSlots >= 30;
  const busy = count >= 30 * k;
  const fast = rate >= Math.max(10 * base * k, 1);
  const calm = rate < 3 * base + 0.2;
  // A burst is remembered before the baseline has settled too (a batch's first run in the first
  // minutes of a replay or after a restart): only findings wait for a settled baseline. Not in the
  // subject's first minute: against a baseline of a few slots, a key that is simply busy from its
  // first request would "burst" and then never be judged again.
  const known = r.baseSlots >= 6;
  if (!(known && busy && fast)) {
    if (r.spiking && calm) {
      r.spiking = false;
      r.spikes++;
      r.lastSpikeEnd = now;
      r.spikeFrom = -1.5;
    }
    return null;
  }
  const first = !r.spiking;
  r.spiking = true;
  if (first && !settled) r.spikeFrom = now;
  if (!settled) return null;
  // A burst this subject has shown (and ended) before is its pattern (a nightly batch), not an attack.
  // One that began before the baseline settled and is still going SUSTAINED_MS on is judged then:
  // a batch run is over by then; a flood from a key's first minutes was never judged before.
  const sustained = !first && r.spikes === 0 && r.spikeFrom >= 0 && now - r.spikeFrom >= SUSTAINED_MS;
  if (sustained) r.spikeFrom = -1.5;
  else if (!first || r.spikes > 0) return null;
  const ratio = base > 0 ? rate / base : rate * 100;
  return { rate, base, ratio, score: Math.min(1, 0.4 + Math.log10(Math.max(ratio, 1)) / 5) };
}
