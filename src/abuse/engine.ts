/**
 * The abuse engine: owns the detectors' state, applies the policy's `abuse:` section to their
 * findings, keeps the quarantine and throttle sets and the cases, and answers the request path's
 * two hooks (`check` before a call is authorized, `observe` once it was answered).
 *
 * Everything runs in-process on the caller's clock. Cases are handed to `onCase` (persistence,
 * audit, webhook) and every action to `onAction` (the simulation's report, metrics).
 */
import {
  AnomalyDetectors,
  type Category,
  type DetectorName,
  type Finding,
  type Observation,
} from '../core/anomaly/detectors.js';
import { fnv, isInternalAddress, netOf, wideNetOf } from '../core/anomaly/text.js';
import { ENDPOINT_ACTIONS } from '../core/authz/actions.js';
import { type Refusal, refuse } from '../core/errors.js';
import type { Clock, Endpoint } from '../core/ports.js';
import type { ScreeningEvent } from '../core/screening/signals.js';
import { lastUserText } from '../providers/prompt-text.js';
import { type AbuseConfig, AbuseSchema, detectorConfig } from './policy.js';
import type { SharedSignals } from './shared-signals.js';

export type ActionKind = 'flag' | 'throttle' | 'quarantine' | 'release' | 'notify';

/** One action the engine took, in the subject's own ids (key ids, tenant ids, IPs). */
export interface AbuseAction {
  at: number;
  action: ActionKind;
  keyId?: string;
  tenantId?: string;
  ip?: string;
  net?: string;
  capability?: string;
  detector: DetectorName | 'review';
  score: number;
  reason: string;
  category: Category | 'review';
  related?: { keys: string[]; ips: string[] };
  /** 'review' (until released) or the expiry time (ms). */
  until?: 'review' | number;
  caseId: string;
  /** The request whose observation triggered it, if any. */
  requestId?: string;
  shadow?: boolean;
}

export type CaseStatus = 'open' | 'confirmed' | 'released' | 'expired';

/** Most keys a case lists as related (its evidence; holds cover every member whatever this says). */
const MAX_RELATED_KEYS = 1000;
/** The related keys of a case as a set, kept beside its list (rebuilt when the list was replaced). */
const relatedSets = new WeakMap<AbuseCase, { list: string[]; set: Set<string> }>();
function relatedKeySet(c: AbuseCase): Set<string> {
  const list = c.evidence.related.keys;
  let e = relatedSets.get(c);
  if (!e || e.list !== list || e.set.size !== list.length) {
    e = { list, set: new Set(list) };
    relatedSets.set(c, e);
  }
  return e.set;
}

/** A case for review: a flag, a throttle or a quarantine, with its evidence. */
export interface AbuseCase {
  id: string;
  kind: 'flag' | 'throttle' | 'quarantine';
  status: CaseStatus;
  detector: DetectorName;
  category: Category;
  score: number;
  reason: string;
  capability: string;
  subject: { keyId?: string; tenantId?: string; net?: string; ip?: string };
  evidence: {
    signals: Record<string, number | string>;
    sampleRequests: string[];
    related: { keys: string[]; ips: string[]; tenants: string[] };
  };
  createdAt: number;
  updatedAt: number;
  expiresAt: number | null;
  shadow: boolean;
  notes: { at: number; by: string; text: string }[];
  /** Set when the case went unreviewed for `escalateAfter` and was escalated (notify again). */
  escalatedAt?: number;
  /** Earlier quarantines or throttles of the same subject (within 30 days) when this one opened. */
  priorOffences?: number;
}

/** Facts `check` needs: who is calling what, from where. */
export interface CheckFacts {
  keyId: string;
  tenantId: string;
  ip: string;
  action: string;
}

/** What the gateway calls. Both hooks never throw and never block. */
export interface AbuseHooks {
  /** After authentication (context checks): a Refusal when the capability is paused or throttled. */
  check(f: CheckFacts): Refusal | null;
  /** At record time, for every model call that `observeStart` did not see (refused, cached). */
  observe(o: Observation): void;
  /** Right before a call is forwarded: what it asks (no output, no status yet). */
  observeStart?(o: Observation): void;
  /** When a call that `observeStart` saw has ended: what it produced. */
  observeDone?(keyId: string, outputTokens: number): void;
  /** After a failed authentication; `presented` is hashed at once and never kept. */
  authFailed(f: { ip: string; presented: string | undefined; userAgent: string | null }): void;
  /**
   * What content screening found on a request (`GatewayDeps.onScreening`): injection verdicts and
   * leaked task prompts are evidence for the `injection-attempts` detector.
   */
  screened?(e: ScreeningEvent): void;
  /** What is paused for this key and its tenant, in plain words (for `/sluice/v1/me`). */
  pausedFor?(
    keyId: string,
    tenantId: string,
  ): { capability: string; reason: string; caseId: string; until: string; appeal: string }[];
}

interface Hold {
  caseId: string;
  kind: 'throttle' | 'quarantine';
  capability: string;
  category: Category;
  since: number;
  until: number;
  /** Throttle: a token bucket (tokens, last refill). */
  tokens: number;
  refilled: number;
}

export interface AbuseEngineOptions {
  clock: Clock;
  config?: AbuseConfig;
  onAction?: (a: AbuseAction) => void;
  /** A case was opened or changed (persist it, audit it, tell the partner). */
  onCase?: (c: AbuseCase, transition: string) => void;
  /**
   * Every change to a case, including new evidence that is no transition (write it through to the
   * control store). Called before `onCase`; never for a case that came in through `restore`.
   */
  onStore?: (c: AbuseCase) => void;
  /**
   * How the batched detector work is run off the request's turn. Default: `setImmediate` (the
   * server). `null`: on the caller's clock, whenever `BATCH` observations are queued or the oldest
   * waited `BATCH_DELAY_MS` (the simulation and tests: deterministic; `flush()` forces it).
   */
  defer?: ((run: () => void) => void) | null;
  /** With Redis: the global signals, shared with the other instances (one pipeline per batch). */
  shared?: SharedSignals;
}

/** Observations queued before a batch runs at the latest; and the longest one waits (virtual ms). */
const BATCH = 64;
const BATCH_DELAY_MS = 200;
const QUEUE = 4096;

/** A preallocated queue slot: the observation's fields, copied (no allocation per request). */
interface Slot extends Observation {
  at: number;
  /** 0: a call (`observe`, `observeStart`); 1: the end of one `observeStart` saw (`observeDone`). */
  phase: number;
}

function emptySlot(): Slot {
  return {
    // A double from the start (clock readings are never small integers): with a small-integer 0
    // here, the first clock reading stored changed the slots' hidden class, and each of the 4,096
    // slots kept the old one until its first use: `observe` and `flush` met slots of a class their
    // optimized code did not expect (3 deopts and recompiles in a 16,000-request replay). Never read
    // before a reading is stored.
    at: Number.NaN,
    phase: 0,
    started: false,
    maxTokens: -1,
    requestId: '',
    keyId: '',
    tenantId: '',
    ip: '',
    userAgent: null,
    headerNames: [],
    endUser: null,
    sentAt: Number.NaN,
    action: '',
    endpoint: '',
    model: null,
    prompt: '',
    body: undefined,
    bodyEndpoint: '',
    rawHeaders: undefined,
    inputTokens: 0,
    outputTokens: 0,
    status: 0,
  };
}

/** The prompt the detectors look at: given, or the body's last user turn (a bounded prefix). */
function promptOf(s: Slot): string {
  if (s.prompt || !s.body) return s.prompt;
  const b = s.body;
  const text =
    s.bodyEndpoint === 'images'
      ? typeof b.prompt === 'string'
        ? b.prompt
        : ''
      : lastUserText(s.bodyEndpoint as Endpoint, b);
  return text.length > 2000 ? text.slice(0, 2000) : text;
}

/** The output budget the call asks for (`max_tokens`, `max_completion_tokens`, `max_output_tokens`), or -1. */
function budgetOf(s: Slot): number {
  const b = s.body;
  if (!b) return -1;
  const v = b.max_tokens ?? b.max_completion_tokens ?? b.max_output_tokens;
  return typeof v === 'number' && Number.isFinite(v) && v >= 0 ? v : -1;
}

const CATEGORY_TEXT: Record<Category, string> = {
  'unusual-volume': 'unusual request volume',
  'unusual-usage': 'an unusual change in usage',
  'shared-credential': 'signs that this key is used by others',
  'automated-abuse': 'automated abuse across accounts',
  'credential-abuse': 'many failed sign-ins from your network',
  'model-extraction': 'systematic extraction of model outputs',
  'prompt-injection': "repeated attempts to override the model's instructions",
};

const MAX_CASES = 100_000;
/** Repeat offences are remembered this long; each one multiplies the hold by 4 (at most 30 days). */
const OFFENCE_MEMORY_MS = 30 * 86_400_000;
const MAX_HOLD_MS = 30 * 86_400_000;
const MAX_OFFENDERS = 100_000;
const NO_NAMES: string[] = [];
const FLAG_REPEAT_MS = 3_600_000;

export class AbuseEngine implements AbuseHooks {
  private cfg: AbuseConfig;
  private detectors: AnomalyDetectors;
  private readonly holds = new Map<string, Hold[]>();
  private readonly cases = new Map<string, AbuseCase>();
  /** detector|subject -> until when a repeat finding is folded into the existing case. */
  private readonly seen = new Map<string, { caseId: string; until: number }>();
  /**
   * The member entries of `seen` (`${caseId}|${sid}`) by case, kept in step with it: a campaign's
   * finding lists every member on every request, and building each member's entry name to look it
   * up cost a string per member per request (a campaign of 3,000 keys: 9 million).
   */
  private readonly told = new Map<string, Set<string>>();
  /** IPs already told about (per stuffing case), so each attacking address gets one action line. */
  private readonly toldIps = new Map<string, Set<string>>();
  private exempt: Set<string>;
  private seq = 0;
  /** subject -> quarantines and throttles it got (count, last time), for escalation of repeats. */
  private readonly offences = new Map<string, { count: number; last: number; started: number }>();
  private readonly queue: Slot[] = Array.from({ length: QUEUE }, emptySlot);
  private qHead = 0;
  private qLen = 0;
  private scheduled = false;
  private readonly defer: ((run: () => void) => void) | null;
  private readonly drainNow = () => {
    this.scheduled = false;
    this.flush();
  };

  constructor(private readonly opts: AbuseEngineOptions) {
    this.cfg = opts.config ?? AbuseSchema.parse({});
    this.detectors = new AnomalyDetectors({ sensitivity: this.cfg.sensitivity });
    this.exempt = new Set(this.cfg.exemptTenants);
    this.defer = opts.defer === undefined ? (run) => setImmediate(run) : opts.defer;
  }

  /** A new policy: thresholds and modes change; detector state and open cases stay. */
  configure(cfg: AbuseConfig): void {
    if (cfg.sensitivity !== this.cfg.sensitivity)
      this.detectors = new AnomalyDetectors({ sensitivity: cfg.sensitivity });
    this.cfg = cfg;
    this.exempt = new Set(cfg.exemptTenants);
  }

  check(f: CheckFacts): Refusal | null {
    if (!this.cfg.enabled || this.holds.size === 0) return null;
    const now = this.opts.clock.now();
    return (
      this.holdFor(`k:${f.keyId}`, f.action, now) ??
      this.holdFor(`t:${f.tenantId}`, f.action, now) ??
      this.netHold(f, netOf(f.ip), now) ??
      this.netHold(f, wideNetOf(f.ip), now)
    );
  }

  /**
   * The hot path: copies the observation into a preallocated queue slot (O(1), no allocation) and
   * leaves the detectors' work to the next batch (see `defer`).
   */
  observe(o: Observation): void {
    this.enqueue(o, o.started === true);
  }

  /** A call about to be forwarded: observed as `observe` does, its output to follow (`observeDone`). */
  observeStart(o: Observation): void {
    this.enqueue(o, true);
  }

  private enqueue(o: Observation, started: boolean): void {
    if (!this.cfg.enabled) return;
    const now = this.opts.clock.now();
    const s = this.nextSlot(now, 0);
    s.started = started;
    s.requestId = o.requestId;
    s.keyId = o.keyId;
    s.tenantId = o.tenantId;
    s.ip = o.ip;
    s.userAgent = o.userAgent;
    s.headerNames = o.headerNames;
    s.endUser = o.endUser;
    s.sentAt = o.sentAt ?? Number.NaN;
    s.action = o.action;
    s.endpoint = o.endpoint;
    s.model = o.model;
    s.prompt = o.prompt;
    s.body = o.body;
    s.bodyEndpoint = o.bodyEndpoint;
    s.rawHeaders = o.rawHeaders;
    s.inputTokens = o.inputTokens;
    s.outputTokens = o.outputTokens;
    s.status = o.status;
    this.queued1(now);
  }

  /** The end of a call `observeStart` saw: its output tokens, counted when it ended. */
  observeDone(keyId: string, outputTokens: number): void {
    if (!this.cfg.enabled) return;
    const now = this.opts.clock.now();
    const s = this.nextSlot(now, 1);
    s.keyId = keyId;
    s.outputTokens = outputTokens;
    this.queued1(now);
  }

  /** The next queue slot (the batch runs first when the queue is full), dated `now`. */
  private nextSlot(now: number, phase: number): Slot {
    if (this.qLen === QUEUE) this.flush();
    const s = this.queue[(this.qHead + this.qLen++) % QUEUE]!;
    s.at = now;
    s.phase = phase;
    return s;
  }

  /** After a slot was queued: schedule the batch, or run it (see `defer`). */
  private queued1(now: number): void {
    if (this.defer) {
      if (!this.scheduled) {
        this.scheduled = true;
        this.defer(this.drainNow);
      }
    } else if (this.qLen >= BATCH || now - this.queue[this.qHead]!.at >= BATCH_DELAY_MS) this.flush();
  }

  /** Runs the detectors over every queued observation, in order, and applies their findings. */
  flush(): void {
    while (this.qLen > 0) {
      const s = this.queue[this.qHead]!;
      this.qHead = (this.qHead + 1) % QUEUE;
      this.qLen--;
      // The batch runs outside any request: an error in one observation (a body of an unexpected
      // shape) costs that observation, never the process or the rest of the batch.
      try {
        if (s.phase === 1) this.detectors.completed(s.keyId, s.outputTokens, s.at);
        else this.observeSlot(s);
      } catch {
        this.failedObservations++;
      }
      s.prompt = '';
      s.headerNames = NO_NAMES;
      s.rawHeaders = undefined;
      s.body = undefined;
    }
    const shared = this.opts.shared;
    if (shared?.pending)
      shared.send(this.opts.clock.now(), this.cfg.sensitivity, this.detectors, (found) => {
        const now = this.opts.clock.now();
        for (const f of found) this.apply(f, now);
      });
  }

  /** Resolves once the global signals sent so far were answered and applied (tests, shutdown). */
  settled(): Promise<void> {
    return this.opts.shared?.settled() ?? Promise.resolve();
  }

  private observeSlot(s: Slot): void {
    s.prompt = promptOf(s);
    s.maxTokens = budgetOf(s);
    const d = this.detectors;
    const findings = d.observe(s, s.at);
    if (this.opts.shared)
      this.opts.shared.recordRequest(
        s.keyId,
        s.tenantId,
        s.ip,
        d.lastNet,
        s.action,
        d.lastPublic ? d.lastTemplate : 0,
        d.lastPublic ? d.lastTail : 0,
      );
    if (findings.length > 0) {
      const now = Math.max(s.at, this.opts.clock.now());
      for (const f of findings.slice()) this.apply(f, now, s.requestId);
    }
  }

  /** Observations a batch could not process (counted, dropped). */
  failedObservations = 0;

  /** Observations waiting for the next batch. */
  get queued(): number {
    return this.qLen;
  }

  /**
   * Screening signals of one request (input injection over the threshold, shadow or not; an answer
   * cut for repeating a task's canary). Runs the `injection-attempts` detector at once: O(1), and
   * only for the few requests screening reports. Secrets and PII are not evidence of abuse.
   */
  screened(e: ScreeningEvent): void {
    if (!this.cfg.enabled) return;
    let kind: 'injection' | 'canary' | null = null;
    let refused = false;
    let score: number | undefined;
    let textHash: number | undefined;
    for (const s of e.signals) {
      if (s.direction === 'input' && s.detector === 'injection') {
        kind = 'injection';
        score = s.score;
        textHash = s.textHash;
        refused ||= s.action === 'block' && !s.shadow;
      } else if (s.direction === 'output' && s.detector === 'canary') kind ??= 'canary';
    }
    if (!kind) return;
    const now = this.opts.clock.now();
    const f = this.detectors.injectionAttempt(
      {
        keyId: e.keyId,
        tenantId: e.tenantId,
        ip: e.ip,
        action: ENDPOINT_ACTIONS[e.endpoint as Endpoint] ?? '*',
        kind,
        refused,
        score,
        textHash,
        requestId: e.requestId,
      },
      now,
    );
    if (f) this.apply(f, now, e.requestId);
  }

  authFailed(a: { ip: string; presented: string | undefined; userAgent: string | null }): void {
    if (!this.cfg.enabled) return;
    const now = this.opts.clock.now();
    const credential = a.presented ? fnv(a.presented) || 1 : 0;
    // Private and loopback ranges are not shared: behind an undeclared proxy (or on the operator's
    // own network) every instance's failures would add up to one "range" (see isInternalAddress).
    if (this.opts.shared && !isInternalAddress(a.ip)) {
      this.opts.shared.recordFailure(netOf(a.ip), a.ip, credential);
      if (this.defer && !this.scheduled) {
        this.scheduled = true;
        this.defer(this.drainNow);
      }
    }
    const findings = this.detectors.authFailed({ ip: a.ip, credential, userAgent: a.userAgent }, now);
    for (const f of findings) this.apply(f, now);
    // Addresses joining a range already under a stuffing quarantine each get their own action line.
    const net = netOf(a.ip);
    for (const h of this.holds.get(`n:${net}`) ?? []) {
      if (h.until <= now) continue;
      const told = this.toldIps.get(h.caseId);
      if (!told || told.has(a.ip) || told.size > 10_000) continue;
      told.add(a.ip);
      const c = this.cases.get(h.caseId);
      if (c)
        this.emit({
          at: now,
          action: 'quarantine',
          ip: a.ip,
          net,
          capability: h.capability,
          detector: c.detector,
          score: c.score,
          reason: c.reason,
          category: c.category,
          until: h.until,
          caseId: c.id,
        });
    }
  }

  getCase(id: string): AbuseCase | undefined {
    return this.cases.get(id);
  }

  listCases(filter: { status?: CaseStatus; tenantId?: string } = {}): AbuseCase[] {
    const out: AbuseCase[] = [];
    for (const c of this.cases.values()) {
      if (filter.status && c.status !== filter.status) continue;
      if (filter.tenantId && c.subject.tenantId !== filter.tenantId) continue;
      out.push(c);
    }
    return out;
  }

  /** What is paused for a key (and its tenant), in plain words: for `/sluice/v1/me`. */
  pausedFor(
    keyId: string,
    tenantId: string,
  ): { capability: string; reason: string; caseId: string; until: string; appeal: string }[] {
    const now = this.opts.clock.now();
    const out: { capability: string; reason: string; caseId: string; until: string; appeal: string }[] = [];
    for (const id of [`k:${keyId}`, `t:${tenantId}`]) {
      for (const h of this.holds.get(id) ?? []) {
        if (h.until <= now) continue;
        out.push({
          capability: h.capability === '*' ? 'all capabilities' : h.capability,
          reason: CATEGORY_TEXT[h.category],
          caseId: h.caseId,
          until: new Date(h.until).toISOString(),
          appeal: this.cfg.appeal,
        });
      }
    }
    return out;
  }

  /** Ends a quarantine or throttle (review). Idempotent; false if there is no such case. */
  release(caseId: string, by: string, note?: string): boolean {
    const c = this.cases.get(caseId);
    if (!c) return false;
    if (c.status === 'released' || c.status === 'expired') return true;
    this.dropHolds(caseId);
    const now = this.opts.clock.now();
    c.status = 'released';
    c.updatedAt = now;
    if (note) c.notes.push({ at: now, by, text: note });
    this.emit({
      at: now,
      action: 'release',
      ...c.subject,
      capability: c.capability,
      detector: 'review',
      score: 0,
      reason: note ?? `released by ${by}`,
      category: 'review',
      caseId,
    });
    this.changed(c, 'release');
    return true;
  }

  /** Moves a case's expiry (a quarantine or throttle lasts until then). */
  extend(caseId: string, until: number, by: string): boolean {
    const c = this.cases.get(caseId);
    if (!c || c.status === 'released' || c.status === 'expired') return false;
    c.expiresAt = until;
    c.updatedAt = this.opts.clock.now();
    c.notes.push({ at: c.updatedAt, by, text: `extended until ${new Date(until).toISOString()}` });
    for (const list of this.holds.values()) for (const h of list) if (h.caseId === caseId) h.until = until;
    this.changed(c, 'extend');
    return true;
  }

  /** A reviewer agrees: the case stays in force (until its expiry, or indefinitely with `until`). */
  confirm(caseId: string, by: string, until?: number): boolean {
    const c = this.cases.get(caseId);
    if (!c || c.status === 'released' || c.status === 'expired') return false;
    c.status = 'confirmed';
    c.updatedAt = this.opts.clock.now();
    c.notes.push({ at: c.updatedAt, by, text: 'confirmed' });
    if (until !== undefined) return this.extend(caseId, until, by);
    this.changed(c, 'confirm');
    return true;
  }

  note(caseId: string, by: string, text: string): boolean {
    const c = this.cases.get(caseId);
    if (!c) return false;
    c.updatedAt = this.opts.clock.now();
    c.notes.push({ at: c.updatedAt, by, text: text.slice(0, 2000) });
    this.changed(c, 'note');
    return true;
  }

  /**
   * Ends holds past their expiry and escalates unreviewed ones (called lazily by `check`, and by a
   * timer in the server).
   */
  expire(): void {
    const now = this.opts.clock.now();
    this.escalate(now);
    for (const [subject, list] of this.holds) {
      const keep = list.filter((h) => h.until > now);
      for (const h of list) {
        if (h.until > now) continue;
        const c = this.cases.get(h.caseId);
        if (c && (c.status === 'open' || c.status === 'confirmed')) {
          c.status = 'expired';
          c.updatedAt = now;
          this.emit({
            at: now,
            action: 'release',
            ...c.subject,
            capability: c.capability,
            detector: 'review',
            score: 0,
            reason: 'expired without review',
            category: 'review',
            caseId: c.id,
          });
          this.changed(c, 'expire');
        }
      }
      if (keep.length === 0) this.holds.delete(subject);
      else this.holds.set(subject, keep);
    }
  }

  /** A range under a stuffing quarantine: keys already in use before the quarantine keep working. */
  private netHold(f: CheckFacts, net: string, now: number): Refusal | null {
    if (!net) return null;
    const list = this.holds.get(`n:${net}`);
    if (!list) return null;
    if (this.qLen > 0) this.flush();
    const since = Math.min(...list.map((h) => h.since));
    if (this.detectors.keyKnownBefore(f.keyId, since)) return null;
    return this.holdFor(`n:${net}`, f.action, now);
  }

  private holdFor(subject: string, action: string, now: number): Refusal | null {
    const list = this.holds.get(subject);
    if (!list) return null;
    for (const h of list) {
      if (h.capability !== '*' && h.capability !== action) continue;
      if (h.until <= now) {
        this.expire();
        return this.holdFor(subject, action, now);
      }
      if (h.kind === 'quarantine') {
        const what = h.capability === '*' ? 'all capabilities' : h.capability;
        return refuse('SLUICE_QUARANTINED', undefined, {
          message: `${what} is paused pending review because of ${CATEGORY_TEXT[h.category]} (case ${h.caseId}). To appeal, ${this.cfg.appeal}.`,
        });
      }
      // Throttle: a token bucket of `throttleRps` with a burst of 5.
      const rps = this.cfg.throttleRps;
      h.tokens = Math.min(5, h.tokens + ((now - h.refilled) / 1000) * rps);
      h.refilled = now;
      if (h.tokens >= 1) {
        h.tokens -= 1;
        continue;
      }
      const wait = Math.ceil(((1 - h.tokens) / rps) * 1000);
      return refuse('SLUICE_RATE_LIMITED', `throttled pending review (case ${h.caseId})`, {
        headers: { 'retry-after': String(Math.ceil(wait / 1000)), 'retry-after-ms': String(wait) },
      });
    }
    return null;
  }

  private apply(f: Finding, now: number, requestId?: string): void {
    const dc = detectorConfig(this.cfg, f.detector);
    if (!dc.enabled || f.score < dc.minScore) return;
    if (f.subject.tenantId && this.exempt.has(f.subject.tenantId)) return;
    let kind: 'flag' | 'throttle' | 'quarantine' = dc.action === 'auto' ? f.suggest : dc.action;
    const shadow = dc.mode === 'shadow';
    if (shadow) kind = 'flag';
    // A campaign names its member keys: each becomes a subject of its own (one case for the campaign).
    const members =
      (f.detector === 'template-campaign' || f.detector === 'client-fingerprint') && f.related.keys.length > 0
        ? f.related.keys
        : null;
    const subjects: { keyId?: string; tenantId?: string; net?: string; ip?: string }[] = members
      ? members.map((k) => ({ keyId: k }))
      : [f.subject];
    // One case per detector, subject and strength: a flag that grows into a quarantine opens a new case.
    const campaignKey = `${f.detector}|${members ? f.subject.net : subjectId(f.subject)}|${kind}`;
    const prior = this.seen.get(campaignKey);
    let c = prior && prior.until > now ? this.cases.get(prior.caseId) : undefined;
    if (c && (c.status === 'released' || c.status === 'expired')) {
      // Released by a person: the same evidence does not re-open it for an hour.
      if (c.updatedAt + FLAG_REPEAT_MS > now) return;
      c = undefined;
    }
    // Another detector seeing subjects that are all held already for this capability (a template
    // campaign that is also one client fingerprint): no second case for the same hold.
    if (!c && kind !== 'flag' && subjects.every((x) => this.heldFor(subjectId(x), kind, f.capability, now)))
      return;
    const fresh = !c;
    let grew = false;
    if (!c) {
      c = this.openCase(f, kind, now, shadow, requestId);
      this.seen.set(campaignKey, { caseId: c.id, until: now + FLAG_REPEAT_MS });
      if (f.detector === 'credential-stuffing') this.toldIps.set(c.id, new Set(f.related.ips));
    } else {
      if (requestId && c.evidence.sampleRequests.length < 20) {
        c.evidence.sampleRequests.push(requestId);
        grew = true;
      }
      // A campaign's finding names every member on every request; looked up in a set, not the list,
      // or a campaign of thousands of keys costs thousands of comparisons per key per request.
      const listed = c.evidence.related.keys;
      if (listed.length < MAX_RELATED_KEYS) {
        const known = relatedKeySet(c);
        for (const k of f.related.keys)
          if (!known.has(k)) {
            known.add(k);
            listed.push(k);
            grew = true;
            if (listed.length >= MAX_RELATED_KEYS) break;
          }
      }
    }
    const told = fresh ? undefined : this.told.get(c.id);
    for (const s of subjects) {
      const sid = subjectId(s);
      if (told?.has(sid)) continue;
      this.markTold(c.id, sid, now + (c.expiresAt ?? now + FLAG_REPEAT_MS));
      if (kind !== 'flag' && c.expiresAt !== null) {
        const h: Hold = {
          caseId: c.id,
          kind,
          capability: c.capability,
          category: f.category,
          since: now,
          until: c.expiresAt,
          tokens: 5,
          refilled: now,
        };
        const list = this.holds.get(sid);
        if (list) list.push(h);
        else this.holds.set(sid, [h]);
      }
      this.emit({
        at: now,
        action: kind,
        ...s,
        capability: c.capability,
        detector: f.detector,
        score: f.score,
        reason: f.reason,
        category: f.category,
        related: { keys: f.related.keys.slice(0, 50), ips: f.related.ips.slice(0, 50) },
        until: kind === 'flag' ? undefined : kind === 'quarantine' ? 'review' : (c.expiresAt ?? undefined),
        caseId: c.id,
        requestId,
        shadow: shadow || undefined,
      });
    }
    if (grew) {
      c.updatedAt = Math.max(c.updatedAt, now);
      this.opts.onStore?.(c);
    }
    this.pruneSeen(now);
  }

  /**
   * Applies a case read from the control store: at start (quarantines survive a restart) and when
   * another instance or the CLI changed it. A stored case older than the one held here is ignored.
   * Holds follow the stored status and expiry: a release drops them at once, an extension moves them.
   * Returns true if anything changed here.
   */
  restore(stored: AbuseCase): boolean {
    const now = this.opts.clock.now();
    const local = this.cases.get(stored.id);
    const closed = (x: AbuseCase) => x.status === 'released' || x.status === 'expired';
    // A newer local copy wins, except that a close (release, expiry) always wins over a live copy.
    if (local && local.updatedAt > stored.updatedAt && !(closed(stored) && !closed(local))) return false;
    if (
      local &&
      local.updatedAt === stored.updatedAt &&
      local.status === stored.status &&
      local.expiresAt === stored.expiresAt &&
      local.notes.length === stored.notes.length
    )
      return false;
    const c: AbuseCase = structuredClone(stored);
    this.cases.set(c.id, c);
    this.dropHolds(c.id);
    const live = c.status === 'open' || c.status === 'confirmed';
    const members =
      (c.detector === 'template-campaign' || c.detector === 'client-fingerprint') &&
      c.evidence.related.keys.length > 0;
    const campaignKey = `${c.detector}|${members ? c.subject.net : subjectId(c.subject)}|${c.kind}`;
    if (!this.seen.has(campaignKey) && c.updatedAt + FLAG_REPEAT_MS > now)
      this.seen.set(campaignKey, { caseId: c.id, until: c.updatedAt + FLAG_REPEAT_MS });
    if (live && c.kind !== 'flag' && !c.shadow && c.expiresAt !== null && c.expiresAt > now) {
      const subjects = members ? c.evidence.related.keys.map((k) => `k:${k}`) : [subjectId(c.subject)];
      for (const sid of subjects) {
        this.markTold(c.id, sid, c.expiresAt);
        const h: Hold = {
          caseId: c.id,
          kind: c.kind,
          capability: c.capability,
          category: c.category,
          since: c.createdAt,
          until: c.expiresAt,
          tokens: 5,
          refilled: now,
        };
        const list = this.holds.get(sid);
        if (list) list.push(h);
        else this.holds.set(sid, [h]);
      }
    }
    return true;
  }

  private changed(c: AbuseCase, transition: string): void {
    this.opts.onStore?.(c);
    this.opts.onCase?.(c, transition);
  }

  private openCase(
    f: Finding,
    kind: 'flag' | 'throttle' | 'quarantine',
    now: number,
    shadow: boolean,
    requestId?: string,
  ): AbuseCase {
    const id = `case_${now.toString(36)}${(++this.seq).toString(36).padStart(4, '0')}`;
    // Repeat offence: a subject held before (within 30 days) is held 4x longer per earlier hold, and
    // for every capability instead of one.
    const prior = kind === 'flag' || shadow ? 0 : this.priorOffences(f, now);
    const base = kind === 'quarantine' ? this.cfg.quarantineFor : this.cfg.throttleFor;
    const hold = Math.min(MAX_HOLD_MS, base * 4 ** Math.min(prior, 10));
    const c: AbuseCase = {
      id,
      kind,
      status: 'open',
      detector: f.detector,
      category: f.category,
      score: Math.round(f.score * 100) / 100,
      reason: f.reason,
      capability: prior > 0 ? '*' : f.capability,
      subject: f.subject,
      evidence: {
        signals: f.signals,
        sampleRequests: requestId ? [requestId] : [],
        related: { keys: [...f.related.keys], ips: [...f.related.ips], tenants: [...f.related.tenants] },
      },
      createdAt: now,
      updatedAt: now,
      expiresAt: kind === 'flag' ? null : now + hold,
      shadow,
      notes: [],
      ...(prior > 0 ? { priorOffences: prior } : {}),
    };
    this.cases.set(id, c);
    if (this.cases.size > MAX_CASES) {
      // Oldest closed cases go first; the store keeps them for good.
      for (const [cid, old] of this.cases) {
        if (old.status === 'released' || old.status === 'expired' || old.kind === 'flag') {
          this.cases.delete(cid);
          break;
        }
      }
    }
    this.changed(c, 'open');
    return c;
  }

  /** A live hold of `kind` (a quarantine covers a throttle) on `sid` for `capability` (or all). */
  private heldFor(sid: string, kind: 'throttle' | 'quarantine', capability: string, now: number): boolean {
    for (const h of this.holds.get(sid) ?? [])
      if (
        h.until > now &&
        (h.kind === 'quarantine' || kind === 'throttle') &&
        (h.capability === '*' || h.capability === capability)
      )
        return true;
    return false;
  }

  /** Earlier holds of this finding's subjects (a campaign: of any member key), counting this one. */
  private priorOffences(f: Finding, now: number): number {
    const members =
      (f.detector === 'template-campaign' || f.detector === 'client-fingerprint') && f.related.keys.length > 0
        ? f.related.keys.map((k) => `k:${k}`)
        : [subjectId(f.subject)];
    let prior = 0;
    for (const sid of members) {
      const o = this.offences.get(sid);
      const n = o && o.last + OFFENCE_MEMORY_MS > now ? o.count : 0;
      // Holds within an hour of the subject's last one are one episode (two detectors seeing the
      // same campaign): not a repeat.
      if (o && n > 0 && o.started + FLAG_REPEAT_MS > now) {
        prior = Math.max(prior, n - 1);
        continue;
      }
      if (n > prior) prior = n;
      this.offences.delete(sid);
      this.offences.set(sid, { count: n + 1, last: now, started: now });
    }
    while (this.offences.size > MAX_OFFENDERS) this.offences.delete(this.offences.keys().next().value!);
    return prior;
  }

  /**
   * Escalates holds nobody reviewed within `escalateAfter`: once per case, a `notify` action, an
   * `escalate` transition (audited; the partner and the operators are told again).
   */
  private escalate(now: number): void {
    const after = this.cfg.escalateAfter;
    for (const list of this.holds.values())
      for (const h of list) {
        const c = this.cases.get(h.caseId);
        if (c?.status !== 'open' || c.escalatedAt !== undefined || c.createdAt + after > now) continue;
        c.escalatedAt = now;
        c.updatedAt = Math.max(c.updatedAt, now);
        this.emit({
          at: now,
          action: 'notify',
          ...c.subject,
          capability: c.capability,
          detector: c.detector,
          score: c.score,
          reason: `unreviewed for ${Math.round((now - c.createdAt) / 60_000)} min: escalated`,
          category: c.category,
          caseId: c.id,
        });
        this.changed(c, 'escalate');
      }
  }

  private emit(a: AbuseAction): void {
    this.opts.onAction?.(a);
  }

  private pruneSeen(now: number): void {
    if (this.seen.size < 200_000) return;
    for (const [k, v] of this.seen)
      if (v.until <= now) {
        this.seen.delete(k);
        // A member entry (`${caseId}|${sid}`; a campaign entry starts with its detector's name).
        if (k.startsWith(`${v.caseId}|`)) this.told.get(v.caseId)?.delete(k.slice(v.caseId.length + 1));
      }
  }

  /** Records that `sid` was told of (and held for) case `caseId`: a `seen` entry and its `told` member. */
  private markTold(caseId: string, sid: string, until: number): void {
    this.seen.set(`${caseId}|${sid}`, { caseId, until });
    let set = this.told.get(caseId);
    if (!set) {
      set = new Set();
      this.told.set(caseId, set);
    }
    set.add(sid);
  }

  private dropHolds(caseId: string): void {
    for (const [subject, list] of this.holds) {
      const keep = list.filter((h) => h.caseId !== caseId);
      if (keep.length === 0) this.holds.delete(subject);
      else if (keep.length !== list.length) this.holds.set(subject, keep);
    }
  }
}

function subjectId(s: { keyId?: string; tenantId?: string; net?: string; ip?: string }): string {
  return s.keyId ? `k:${s.keyId}` : s.tenantId ? `t:${s.tenantId}` : `n:${s.net ?? s.ip ?? '?'}`;
}
