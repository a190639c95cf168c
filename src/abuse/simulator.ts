/**
 * The simulation behind `sluice simulate`: the real gateway's stages on a virtual clock, run
 * without Fastify by `runPipelineDirect` (gateway/pipeline/direct.ts) and, for what only the HTTP
 * layer decides, through the real app's `app.inject()` on the same deps; a discrete-event loop over
 * virtual timers lets requests in flight together overlap in virtual time. The interface is fixed
 * by SIMULATION.md.
 *
 * Determinism: requests are dispatched one at a time in trace order; each runs until it answers
 * or parks on a virtual timer (the upstream's latency), and timers fire in (due, sequence) order
 * before the next request whose `t` is later. Nothing reads the wall clock except the summary.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { KeyService, KeyServiceError } from '../admin/key-service.js';
import type { ConfigSource } from '../config/resolve.js';
import type { SluiceConfig } from '../config/schema.js';
import type { Clock, Upstream, UpstreamRequest, UpstreamResponse } from '../core/ports.js';
import type { GatewayDeps } from '../gateway/app.js';
import { KeyAuthenticator } from '../gateway/auth.js';
import { AuthFailureLimiter } from '../gateway/auth-failures.js';
import { runPipelineDirect } from '../gateway/pipeline/direct.js';
import { defaultStages } from '../gateway/pipeline/stages.js';
import { createUpstream } from '../providers/index.js';
import { MockUpstream } from '../providers/mock.js';
import { ContextLoader } from '../wiring/policy.js';
import { buildRuntime } from '../wiring/runtime.js';
import { openStores } from '../wiring/stores.js';
import { type AbuseAction, AbuseEngine } from './engine.js';

/** A malformed trace: the message names the line and the field. */
export class TraceError extends Error {}

export interface TraceKey {
  line: number;
  name: string;
  tenant: string;
  tier: string;
  project?: string;
  expires?: string | number;
  scopes?: string[];
  models?: string[];
}

export interface TraceRequest {
  line: number;
  t: number;
  key?: string;
  authorization?: string;
  ip: string;
  method: string;
  path: string;
  headers: Record<string, string>;
  body?: unknown;
  /**
   * Set when the line's text holds `-0` somewhere (a -0 in the body parses as -0 but is sent as 0):
   * then the direct path parses the sent text instead of reusing `body` (see DirectInput.body).
   */
  reparse?: true;
  latencyMs: number;
  outputTokens?: number;
  status?: number;
}

export interface Trace {
  keys: TraceKey[];
  requests: TraceRequest[];
}

/**
 * A trace's requests as the simulation reads them: `at(i)` for i = 0, 1, 2, ... in order. An array
 * of parsed requests is one; `scanTrace` gives one that parses each line only when it is reached.
 */
export interface TraceRequests {
  readonly length: number;
  at(i: number): TraceRequest | undefined;
}

/** What `runSimulation` replays: the keys, made first, and the requests. */
export interface TraceSource {
  keys: TraceKey[];
  requests: TraceRequests;
}

const IP = /^(\d{1,3}\.){3}\d{1,3}$|^[0-9a-fA-F:.]+$/;

function fieldError(lineNo: number, field: string, why: string): TraceError {
  return new TraceError(`line ${lineNo}: field "${field}" ${why}`);
}

/** `o[field]` as a non-empty string; undefined when absent and not required. */
function strField(
  o: Record<string, unknown>,
  field: string,
  required: boolean,
  lineNo: number,
): string | undefined {
  const v = o[field];
  if (v === undefined && !required) return undefined;
  if (typeof v !== 'string' || v.length === 0) throw fieldError(lineNo, field, 'must be a non-empty string');
  return v;
}

function listField(o: Record<string, unknown>, field: string, lineNo: number): string[] | undefined {
  const v = o[field];
  if (v === undefined) return undefined;
  if (!Array.isArray(v) || v.some((x) => typeof x !== 'string'))
    throw fieldError(lineNo, field, 'must be a list of strings');
  return v as string[];
}

function keyLine(o: Record<string, unknown>, lineNo: number, names: Set<string>): TraceKey {
  const name = strField(o, 'name', true, lineNo)!;
  if (names.has(name)) throw fieldError(lineNo, 'name', `declares key "${name}" twice`);
  names.add(name);
  const expires = o.expires;
  if (expires !== undefined && typeof expires !== 'string' && typeof expires !== 'number')
    throw fieldError(lineNo, 'expires', 'must be a duration or a timestamp');
  return {
    line: lineNo,
    name,
    tenant: strField(o, 'tenant', true, lineNo)!,
    tier: strField(o, 'tier', true, lineNo)!,
    project: strField(o, 'project', false, lineNo),
    expires: expires as string | number | undefined,
    scopes: listField(o, 'scopes', lineNo),
    models: listField(o, 'models', lineNo),
  };
}

/** A request line; `lastT` is the previous request's `t` (times must not go back). */
function requestLine(o: Record<string, unknown>, lineNo: number, lastT: number, raw: string): TraceRequest {
  const t = o.t;
  if (typeof t !== 'number' || !Number.isFinite(t) || t < 0)
    throw fieldError(lineNo, 't', 'must be a number of seconds >= 0');
  if (t < lastT) throw fieldError(lineNo, 't', `goes back in time (${t} after ${lastT})`);
  const key = strField(o, 'key', false, lineNo);
  const authorization = o.authorization;
  if (authorization !== undefined && typeof authorization !== 'string')
    throw fieldError(lineNo, 'authorization', 'must be a string');
  if (key === undefined && authorization === undefined)
    throw fieldError(lineNo, 'key', 'or "authorization" is required');
  const ip = strField(o, 'ip', true, lineNo)!;
  if (!IP.test(ip)) throw fieldError(lineNo, 'ip', 'must be an IPv4 or IPv6 address');
  const path = strField(o, 'path', true, lineNo)!;
  if (path.charCodeAt(0) !== 0x2f /* / */) throw fieldError(lineNo, 'path', 'must start with /');
  const method =
    strField(o, 'method', false, lineNo)?.toUpperCase() ??
    (path === '/v1/models' || path === '/sluice/v1/me' ? 'GET' : 'POST');
  const headers: Record<string, string> = {};
  const given = o.headers;
  if (given !== undefined) {
    if (!given || typeof given !== 'object' || Array.isArray(given))
      throw fieldError(lineNo, 'headers', 'must be an object of strings');
    // for-in visits a parsed object's own keys in the order Object.entries gives them.
    for (const k in given as Record<string, unknown>) {
      const v = (given as Record<string, unknown>)[k];
      if (typeof v !== 'string') throw fieldError(lineNo, `headers.${k}`, 'must be a string');
      headers[k.toLowerCase()] = v;
    }
  }
  let latencyMs = 0;
  let outputTokens: number | undefined;
  let status: number | undefined;
  if (o.upstream !== undefined) {
    const u = o.upstream as Record<string, unknown>;
    if (!u || typeof u !== 'object' || Array.isArray(u))
      throw fieldError(lineNo, 'upstream', 'must be an object');
    if (u.latencyMs !== undefined) {
      if (typeof u.latencyMs !== 'number' || !(u.latencyMs >= 0))
        throw fieldError(lineNo, 'upstream.latencyMs', 'must be a number >= 0');
      latencyMs = u.latencyMs;
    }
    if (u.outputTokens !== undefined) {
      if (!Number.isInteger(u.outputTokens) || (u.outputTokens as number) < 0)
        throw fieldError(lineNo, 'upstream.outputTokens', 'must be an integer >= 0');
      outputTokens = u.outputTokens as number;
    }
    if (u.status !== undefined) {
      if (!Number.isInteger(u.status) || (u.status as number) < 100 || (u.status as number) > 599)
        throw fieldError(lineNo, 'upstream.status', 'must be an HTTP status');
      status = u.status as number;
    }
  }
  const req: TraceRequest = {
    line: lineNo,
    t,
    key,
    authorization: authorization as string | undefined,
    ip,
    method,
    path,
    headers,
    body: o.body,
    latencyMs,
    outputTokens,
    status,
  };
  // (a superset of the lines with a -0 in the body: "2024-01-05" in a prompt counts too)
  if (o.body !== undefined && raw.includes('-0')) req.reparse = true;
  return req;
}

/**
 * Parses and validates a JSONL trace (SIMULATION.md). Throws TraceError naming the line and field.
 * The checks are plain functions, not closures made per line: a trace of 400,000 lines spent more
 * on them than on JSON.parse (test/abuse/parse-trace-reference.test.ts keeps the old code to compare).
 */
export function parseTrace(text: string): Trace {
  const keys: TraceKey[] = [];
  const requests: TraceRequest[] = [];
  const names = new Set<string>();
  let lastT = Number.NEGATIVE_INFINITY;
  let lineNo = 0;
  let start = 0;
  while (start <= text.length) {
    let end = text.indexOf('\n', start);
    if (end < 0) end = text.length;
    lineNo++;
    const raw = text.slice(start, end).trim();
    start = end + 1;
    if (raw.length === 0) {
      if (end >= text.length) break;
      continue;
    }
    const o = notAnObject(lineNo, raw);
    const type = o.type;
    if (type === 'request') {
      const req = requestLine(o, lineNo, lastT, raw);
      lastT = req.t;
      requests.push(req);
    } else if (type === 'key') keys.push(keyLine(o, lineNo, names));
    else
      throw fieldError(
        lineNo,
        'type',
        `must be "key" or "request" (got ${JSON.stringify(type)?.slice(0, 40)})`,
      );
  }
  for (const r of requests) if (r.key !== undefined && !names.has(r.key)) throw undeclaredKey(r);
  return { keys, requests };
}

function undeclaredKey(r: TraceRequest): TraceError {
  return new TraceError(`line ${r.line}: field "key" names undeclared key "${r.key!.slice(0, 64)}"`);
}

function notAnObject(lineNo: number, raw: string): Record<string, unknown> {
  let o: Record<string, unknown>;
  try {
    o = JSON.parse(raw);
  } catch {
    throw new TraceError(`line ${lineNo}: not valid JSON`);
  }
  if (!o || typeof o !== 'object' || Array.isArray(o))
    throw new TraceError(`line ${lineNo}: not a JSON object`);
  return o;
}

/** `{"type":"request"`: a line that starts so is a request line (see `scanTrace`). */
const REQUEST_START = Buffer.from('{"type":"request"');

/**
 * Reads a trace from its bytes without parsing every request up front (`parseTrace` keeps them all:
 * a trace's parsed requests take about twice its size in the heap, and every one of them is copied
 * by the garbage collector on the way to the old generation). One pass finds the lines and parses
 * the key lines and any line that does not start with `{"type":"request"`; a request line that does
 * is parsed and checked when the run reaches it (`at`), with the same checks and messages as
 * `parseTrace`. So a trace with a bad request line is refused when the run reaches that line, not
 * before the run starts; either way nothing is written and `sluice simulate` exits 1 naming it.
 */
export function scanTrace(buf: Buffer): TraceSource {
  const keys: TraceKey[] = [];
  const names = new Set<string>();
  let starts = new Float64Array(1024);
  let ends = new Float64Array(1024);
  let lines = new Uint32Array(1024);
  let count = 0;
  const n = buf.length;
  const head = REQUEST_START.length;
  let lineNo = 0;
  for (let start = 0; start <= n; ) {
    let end = buf.indexOf(0x0a, start);
    if (end < 0) end = n;
    lineNo++;
    const s = start;
    start = end + 1;
    let request = end - s >= head && buf.compare(REQUEST_START, 0, head, s, s + head) === 0;
    if (!request) {
      const raw = buf.toString('utf8', s, end).trim();
      if (raw.length === 0) {
        if (end >= n) break;
        continue;
      }
      const o = notAnObject(lineNo, raw);
      const type = o.type;
      if (type === 'key') keys.push(keyLine(o, lineNo, names));
      else if (type === 'request') request = true;
      else
        throw fieldError(
          lineNo,
          'type',
          `must be "key" or "request" (got ${JSON.stringify(type)?.slice(0, 40)})`,
        );
    }
    if (request) {
      if (count === starts.length) {
        const grow = <T extends Float64Array | Uint32Array>(a: T): T => {
          const b = new (a.constructor as new (n: number) => T)(a.length * 2);
          b.set(a);
          return b;
        };
        starts = grow(starts);
        ends = grow(ends);
        lines = grow(lines);
      }
      starts[count] = s;
      ends[count] = end;
      lines[count] = lineNo;
      count++;
    }
  }
  return { keys, requests: new LazyRequests(buf, starts, ends, lines, count, names) };
}

/** The request lines `scanTrace` found, parsed and checked in order as they are reached. */
class LazyRequests implements TraceRequests {
  private next = 0;
  private lastT = Number.NEGATIVE_INFINITY;
  private last: TraceRequest | undefined = undefined;

  constructor(
    private readonly buf: Buffer,
    private readonly starts: Float64Array,
    private readonly ends: Float64Array,
    private readonly lines: Uint32Array,
    readonly length: number,
    private readonly names: Set<string>,
  ) {}

  at(i: number): TraceRequest | undefined {
    if (i === this.next - 1) return this.last;
    if (i < 0 || i >= this.length) return undefined;
    if (i !== this.next)
      throw new Error(`trace requests are read in order (asked for ${i}, next is ${this.next})`);
    const lineNo = this.lines[i]!;
    const raw = this.buf.toString('utf8', this.starts[i]!, this.ends[i]!).trim();
    const o = notAnObject(lineNo, raw);
    // (a line that starts as a request and names another type later: JSON keeps the last one)
    if (o.type !== 'request') throw fieldError(lineNo, 'type', 'is given twice');
    const r = requestLine(o, lineNo, this.lastT, raw);
    if (r.key !== undefined && !this.names.has(r.key)) throw undeclaredKey(r);
    this.lastT = r.t;
    this.last = r;
    this.next = i + 1;
    return r;
  }
}

export interface SimulationOptions {
  trace: TraceSource;
  traceName: string;
  source: ConfigSource;
  /** Use this data dir instead of a fresh temporary one. */
  dataDir?: string;
  seed: number;
  onProgress?: (done: number, total: number) => void;
  /**
   * `direct` (default): requests run through the gateway's stage lists without Fastify
   * (gateway/pipeline/direct.ts), falling back to `inject` for what only the HTTP layer decides.
   * `inject`: every request goes through Fastify's app.inject() (slow; the reference the test compares with).
   */
  mode?: 'direct' | 'inject';
}

export interface ReportAction {
  t: number;
  action: AbuseAction['action'];
  key?: string;
  tenant?: string;
  ip?: string;
  capability?: string;
  detector: string;
  score: number;
  reason: string;
  related?: { keys: string[]; ips: string[] };
  until?: 'review' | number;
  case: string;
  mode?: 'shadow';
}

export interface SimulationReport {
  trace: string;
  seed: number;
  requests: number;
  virtualSeconds: number;
  byStatus: Record<string, number>;
  byCode: Record<string, number>;
  actions: ReportAction[];
}

export interface SimulationResult {
  report: SimulationReport;
  /** One JSON line per trace request, in trace order. */
  decisions: string[];
  summary: string;
  wallSeconds: number;
  /** CPU time (user + system) the process spent during the run. */
  cpuSeconds: number;
}

/** The virtual epoch: trace time 0 is this instant (fixed, so runs are reproducible). */
export const SIM_EPOCH = Date.UTC(2026, 0, 1);

interface Timer {
  due: number;
  seq: number;
  fire: () => void;
  /** The request parked on this timer: resumed (and driven until it answers or parks again) when it fires. */
  owner: InFlight | null;
}

/** A request between its dispatch and its answer. */
interface InFlight {
  done: boolean;
  /** Set while the event loop waits for this request to answer or park. */
  wake: (() => void) | null;
  /** What the request threw (a bug: refusals are answers). */
  failed: { err: unknown } | null;
}

/** A binary min-heap of virtual timers ordered by (due, seq). */
class TimerHeap {
  private readonly a: Timer[] = [];
  get size(): number {
    return this.a.length;
  }
  peek(): Timer | undefined {
    return this.a[0];
  }
  push(t: Timer): void {
    const a = this.a;
    a.push(t);
    let i = a.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (less(a[p]!, a[i]!)) break;
      [a[p], a[i]] = [a[i]!, a[p]!];
      i = p;
    }
  }
  pop(): Timer | undefined {
    const a = this.a;
    const top = a[0];
    const last = a.pop();
    if (a.length > 0 && last) {
      a[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < a.length && less(a[l]!, a[m]!)) m = l;
        if (r < a.length && less(a[r]!, a[m]!)) m = r;
        if (m === i) break;
        [a[m], a[i]] = [a[i]!, a[m]!];
        i = m;
      }
    }
    return top;
  }
}

function less(x: Timer, y: Timer): boolean {
  return x.due < y.due || (x.due === y.due && x.seq < y.seq);
}

/** The signal whole answers get in a simulation: nothing aborts a call there (see SimUpstream.call). */
const NEVER_ABORTED = new AbortController().signal;

/** The mock upstream as the trace describes it: virtual latency, given output tokens or status. */
class SimUpstream implements Upstream {
  readonly name: string;
  readonly kind: Upstream['kind'];
  constructor(
    private readonly inner: Upstream,
    private readonly specOf: (requestId: string) => TraceRequest | undefined,
    private readonly sleep: (ms: number) => Promise<void>,
  ) {
    this.name = inner.name;
    this.kind = inner.kind;
    this.mock = inner instanceof MockUpstream ? inner : null;
  }
  private readonly mock: MockUpstream | null;
  supports(e: UpstreamRequest['endpoint']): boolean {
    return this.inner.supports(e);
  }
  advertisedModels(): { id: string; endpoints: UpstreamRequest['endpoint'][] }[] {
    return this.inner.advertisedModels();
  }
  close(): Promise<void> {
    return this.inner.close();
  }
  call(req: UpstreamRequest): Promise<UpstreamResponse> {
    const spec = this.specOf(req.requestId);
    // Streams arrive whole at the end of the latency (their chunks are not spread in virtual time).
    if (spec && spec.latencyMs > 0) return this.sleep(spec.latencyMs).then(() => this.answer(req, spec));
    return this.answer(req, spec);
  }
  private answer(req: UpstreamRequest, spec: TraceRequest | undefined): Promise<UpstreamResponse> {
    if (spec?.status !== undefined && spec.status >= 400) {
      const body = Buffer.from(
        JSON.stringify({
          error: { message: `upstream answered ${spec.status}`, type: 'upstream_error', code: null },
        }),
      );
      return Promise.resolve({
        status: spec.status,
        headers: { 'content-type': 'application/json' },
        rateHeaders: {},
        body: new Uint8Array(body.buffer, body.byteOffset, body.byteLength),
        usage: Promise.resolve({ inputTokens: 0, outputTokens: 0, images: 0 }),
      });
    }
    // Nothing aborts an upstream call in a simulation (no client goes away, no forced shutdown), so
    // the call gets a signal that never aborts instead of its own, which would be made just to be
    // read (see CallAbort; making one was 2.5 % of a run of streams). A stream the gateway stops
    // reading early (an output cut) is still ended: by `return()` on its body, not by the signal.
    const call: UpstreamRequest = {
      endpoint: req.endpoint,
      body: req.body,
      stream: req.stream,
      signal: NEVER_ABORTED,
      requestId: req.requestId,
      headers: req.headers,
    };
    const out = spec?.outputTokens;
    // The mock reports the trace's output tokens itself (no second promise per answer).
    if (this.mock) return this.mock.call(call, out);
    const res = this.inner.call(call);
    if (out === undefined) return res;
    return res.then((r) => ({ ...r, usage: r.usage.then((u) => ({ ...u, outputTokens: out })) }));
  }
}

const CODE_IN_MESSAGE = /\((SLUICE_[A-Z0-9_]+)\)$/;

function codeOf(status: number, body: unknown): string | null {
  if (status < 400) return null;
  try {
    const j = (
      typeof body === 'string'
        ? JSON.parse(body)
        : body instanceof Uint8Array
          ? JSON.parse(Buffer.from(body.buffer, body.byteOffset, body.byteLength).toString('utf8'))
          : body
    ) as { error?: { code?: unknown; message?: unknown } } | null;
    if (!j || typeof j !== 'object') return null;
    if (typeof j.error?.code === 'string' && j.error.code.startsWith('SLUICE_')) return j.error.code;
    if (typeof j.error?.message === 'string') return CODE_IN_MESSAGE.exec(j.error.message)?.[1] ?? null;
  } catch {}
  return null;
}

const quiet = () => {};
/**
 * The run's logger: silent (a replay logs nothing), and not pino itself, whose module and its
 * worker-thread transport cost start-up time a replay never uses.
 */
const SILENT = {
  level: 'silent',
  trace: quiet,
  debug: quiet,
  info: quiet,
  warn: quiet,
  error: quiet,
  fatal: quiet,
  silent: quiet,
  isLevelEnabled: () => false,
  child: () => SILENT,
} as unknown as Logger;

function simConfig(cfg: SluiceConfig, dataDir: string): SluiceConfig {
  return {
    ...cfg,
    storage: { ...cfg.storage, dataDir },
    // Memory limits and the embedded store, whatever the policy says: the run must touch nothing shared.
    database: undefined,
    redis: undefined,
    limits: { ...cfg.limits, store: 'memory' },
    // Every upstream becomes the mock (no network), answering at once: latency is virtual.
    upstreams: cfg.upstreams.map((u) =>
      u.kind === 'mock'
        ? { ...u, tokenDelay: 0 }
        : { name: u.name, kind: 'mock' as const, tokenDelay: 0, replyWords: 12, capacity: u.capacity },
    ),
    alerts: [],
    log: { level: 'silent' },
  };
}

export async function runSimulation(opts: SimulationOptions): Promise<SimulationResult> {
  const wallStart = performance.now();
  // CPU time of this process during the run: on a shared machine the wall-clock rate says little.
  const cpuStart = process.cpuUsage();
  const { trace } = opts;
  // (the first request read before anything is made: a bad first line leaves nothing behind)
  const total = trace.requests.length;
  const firstT = total > 0 ? trace.requests.at(0)!.t : 0;
  const tmp = opts.dataDir ? null : mkdtempSync(join(tmpdir(), 'sluice-sim-'));
  const dataDir = opts.dataDir ?? tmp!;
  const cfg = simConfig(opts.source.config, dataDir);
  let vnow = SIM_EPOCH + firstT * 1000;
  const clock: Clock = { now: () => vnow };
  const logger = SILENT;
  const stores = await openStores(cfg, { clock, logger, instanceId: 'simulate' });
  try {
    // 1. Keys declared in the trace.
    const keysSvc = new KeyService(stores.control, stores.pepper, clock, () => Object.keys(cfg.tiers));
    /** Trace key name -> its `Authorization` header value (made once, not per request). */
    const bearers = new Map<string, string>();
    const keyNames = new Map<string, string>();
    const keyTenants = new Map<string, string>();
    for (const k of trace.keys) {
      try {
        const { record, key } = await keysSvc.create({
          tenant: k.tenant,
          tier: k.tier,
          project: k.project ?? null,
          name: k.name.slice(0, 200),
          expires: k.expires ?? null,
          scopes: k.scopes ?? null,
          models: k.models ?? null,
        });
        bearers.set(k.name, `Bearer ${key}`);
        keyNames.set(record.id, k.name);
        keyTenants.set(k.name, k.tenant);
      } catch (err) {
        if (err instanceof KeyServiceError)
          throw new TraceError(`line ${k.line}: key "${k.name}": ${err.message}`);
        throw err;
      }
    }

    // 2. The gateway, as `serve` builds it, on the virtual clock.
    const runtime = await buildRuntime(cfg, 1, ContextLoader.forFile(opts.source.file));
    const heap = new TimerHeap();
    let seq = 0;
    /** The request running now (the one a timer pushed now belongs to). */
    let current: InFlight | null = null;
    const sleep = (ms: number) =>
      new Promise<void>((resolve) => {
        const owner = current;
        heap.push({ due: vnow + ms, seq: seq++, fire: resolve, owner });
        // The running request parks: the loop goes on with the next event.
        owner?.wake?.();
      });
    const byId = new Map<string, TraceRequest>();
    const upstreams = new Map<string, Upstream>();
    for (const u of cfg.upstreams)
      upstreams.set(
        u.name,
        // (every upstream is the mock here, see simConfig; no one reads its embeddings' values)
        new SimUpstream(createUpstream(u, { clock, mockVectors: 'constant' }), (id) => byId.get(id), sleep),
      );
    const actions: ReportAction[] = [];
    const perRequest = new Map<string, { action: string; detector: string; case: string }[]>();
    const nameOf = (id: string) => keyNames.get(id) ?? id;
    const abuse = new AbuseEngine({
      clock,
      config: cfg.abuse,
      // Batches run on the virtual clock (every 64 observations or 200 virtual ms): deterministic.
      defer: null,
      onAction: (a) => {
        const key = a.keyId ? nameOf(a.keyId) : undefined;
        actions.push({
          t: Math.round((a.at - SIM_EPOCH) / 1) / 1000,
          action: a.action,
          ...(key ? { key } : {}),
          ...(a.tenantId || key ? { tenant: a.tenantId ?? keyTenants.get(key!) } : {}),
          ...(a.ip ? { ip: a.ip } : a.net ? { ip: a.net } : {}),
          ...(a.capability ? { capability: a.capability } : {}),
          detector: a.detector,
          score: a.score,
          reason: a.reason,
          ...(a.related ? { related: { keys: a.related.keys.map(nameOf), ips: a.related.ips } } : {}),
          ...(a.until !== undefined
            ? { until: a.until === 'review' ? 'review' : (a.until - SIM_EPOCH) / 1000 }
            : {}),
          case: a.caseId,
          ...(a.shadow ? { mode: 'shadow' as const } : {}),
        });
        if (a.requestId) {
          let list = perRequest.get(a.requestId);
          if (!list) {
            list = [];
            perRequest.set(a.requestId, list);
          }
          list.push({ action: a.action, detector: a.detector, case: a.caseId });
        }
      },
    });
    // Usage and audit records are counted, not written: they decide nothing, and a run of a million
    // requests must not spend its time on group commits (the pipeline still builds every record).
    let audited = 0;
    let metered = 0;
    const usage = { record: () => void metered++ };
    const audit = {
      emit: () => void audited++,
      flush: async () => {},
      stats: () => ({ queued: 0, overflowed: 0, written: audited }),
    };
    const gatewayDeps: GatewayDeps = {
      runtime: () => runtime,
      // Keys do not change during a run (nothing revokes or rotates them; expiry is checked on every
      // request, cached or not): verified keys stay cached for a virtual hour.
      auth: new KeyAuthenticator({ control: stores.control, pepper: stores.pepper, clock, ttlMs: 3_600_000 }),
      authFailures: new AuthFailureLimiter({
        budget: () => runtime.cfg.hardening.authFailures,
        clock,
        sweepEveryMs: 0,
      }),
      limits: stores.limits,
      upstreams,
      audit,
      usage,
      clock,
      // Stage timings are read by no one here (audit and usage are counted, not written).
      stageClock: () => 0,
      logger,
      health: () => ({ ready: true, degraded: [] }),
      abuse,
      onScreening: (e) => abuse.screened(e),
    };
    const stageLists = defaultStages();
    const mode = opts.mode ?? 'direct';
    // Requests only the HTTP layer can decide (unknown routes, non-JSON or oversized bodies) go through
    // inject. The Fastify app is built the first time one needs it (most traces never do).
    let viaHttp = 0;
    // Held in a box: a Fastify instance is itself a thenable, which a promise would adopt.
    let appReady: Promise<{ app: FastifyInstance }> | null = null;
    const httpApp = (): Promise<{ app: FastifyInstance }> => {
      if (!appReady) {
        // Loaded here, not at the top: Fastify and the HTTP app cost start-up time most runs never use.
        appReady = import('../gateway/app.js').then(async ({ createGateway }) => {
          const app = createGateway(gatewayDeps);
          await app.ready();
          return { app };
        });
      }
      return appReady;
    };
    if (mode === 'inject') await httpApp();

    // 3. The event loop: timers due before a request fire first, in order. Only one request runs at
    // a time: `drive` starts or resumes it and returns once it has answered or parked on a virtual
    // timer (the upstream's latency); a parked request is resumed when its timer fires.
    const results: { status: number; code: string | null }[] = new Array(total);
    // Each request's line and time, kept for the decisions (the request itself is dropped once answered).
    const lineOf = new Float64Array(total);
    const tOf = new Float64Array(total);
    let finished = 0;
    const viaInject = (
      r: TraceRequest,
      requestId: string,
      hasBody: boolean,
      bearer: string | undefined,
      payload: string | undefined,
    ) =>
      httpApp()
        .then(({ app }) =>
          app.inject({
            method: r.method as 'POST',
            url: r.path,
            headers: requestHeaders(r, requestId, hasBody, bearer),
            payload,
            remoteAddress: r.ip,
          }),
        )
        .then((res) => ({ status: res.statusCode, code: codeOf(res.statusCode, res.payload) }));
    const dispatch = (r: TraceRequest, index: number, run: InFlight): Promise<void> => {
      const requestId = `r${r.line}`;
      byId.set(requestId, r);
      const hasBody = r.body !== undefined && r.method !== 'GET';
      const payload = hasBody ? JSON.stringify(r.body) : undefined;
      const bearer = r.key !== undefined ? bearers.get(r.key) : undefined;
      const answer =
        mode === 'inject'
          ? viaInject(r, requestId, hasBody, bearer, payload)
          : runPipelineDirect(gatewayDeps, stageLists, {
              id: requestId,
              method: r.method,
              url: r.path,
              // As light-my-request completes them, so header names and order match the HTTP path.
              headers: injectHeaders(requestHeaders(r, requestId, hasBody, bearer), payload),
              payload,
              // The trace line's own parse of the body: not parsed a second time from `payload`.
              body: hasBody && !r.reparse ? r.body : undefined,
              remoteAddress: r.ip,
            }).then((res) => {
              if (res !== 'unsupported')
                return res.done.then(() => ({ status: res.status, code: codeOf(res.status, res.body) }));
              viaHttp++;
              return viaInject(r, requestId, hasBody, bearer, payload);
            });
      return answer.then(
        (res) => {
          results[index] = res;
          byId.delete(requestId);
          finished++;
          run.done = true;
          run.wake?.();
        },
        // A bug, not a refusal (the pipeline answers refusals): the run stops with it (see `drive`).
        (err: unknown) => {
          run.failed = { err };
          run.done = true;
          run.wake?.();
        },
      );
    };
    /**
     * Starts a request (or resumes a parked one by firing its timer) and resolves once it has answered
     * or parked again; rejects with what the request threw, if it threw.
     */
    const drive = (run: InFlight, start: () => void): Promise<void> =>
      new Promise<void>((resolve, reject) => {
        run.wake = () => {
          run.wake = null;
          current = null;
          if (run.failed) reject(run.failed.err);
          else resolve();
        };
        current = run;
        start();
      });
    const fireDue = async (until: number) => {
      for (let t = heap.peek(); t && t.due <= until; t = heap.peek()) {
        heap.pop();
        vnow = Math.max(vnow, t.due);
        const run = t.owner;
        if (run && !run.done) await drive(run, t.fire);
        else t.fire();
      }
    };
    for (let i = 0; i < total; i++) {
      const r = trace.requests.at(i)!;
      lineOf[i] = r.line;
      tOf[i] = r.t;
      const at = SIM_EPOCH + r.t * 1000;
      // (an await only when a timer is due: most requests find none)
      if (heap.size > 0 && heap.peek()!.due <= at) await fireDue(at);
      vnow = Math.max(vnow, at);
      const run: InFlight = { done: false, wake: null, failed: null };
      await drive(run, () => void dispatch(r, i, run));
      if (opts.onProgress && (i & 1023) === 0) opts.onProgress(i, total);
    }
    await fireDue(Number.POSITIVE_INFINITY);
    opts.onProgress?.(total, total);
    const lastT = total > 0 ? tOf[total - 1]! : 0;
    abuse.flush();
    abuse.expire();

    // 4. Report and decisions.
    const byStatus: Record<string, number> = {};
    const byCode: Record<string, number> = {};
    const decisions: string[] = [];
    for (let i = 0; i < total; i++) {
      const line = lineOf[i]!;
      const res = results[i] ?? { status: 0, code: 'SIM_NO_ANSWER' };
      byStatus[res.status] = (byStatus[res.status] ?? 0) + 1;
      if (res.code) byCode[res.code] = (byCode[res.code] ?? 0) + 1;
      // As JSON.stringify({ line, t, status, code, actions }) writes it (numbers print the same).
      const acts = perRequest.size > 0 ? perRequest.get(`r${line}`) : undefined;
      decisions.push(
        `{"line":${line},"t":${tOf[i]},"status":${res.status},"code":${res.code === null ? 'null' : JSON.stringify(res.code)},"actions":${acts ? JSON.stringify(acts) : '[]'}}`,
      );
    }
    const report: SimulationReport = {
      trace: opts.traceName,
      seed: opts.seed,
      requests: total,
      virtualSeconds: Math.round((lastT - firstT) * 1000) / 1000,
      byStatus: sortKeys(byStatus),
      byCode: sortKeys(byCode),
      actions,
    };
    // (assigned in a closure: TypeScript's narrowing cannot see it)
    const built = appReady as Promise<{ app: FastifyInstance }> | null;
    if (built) await (await built).app.close();
    const wallSeconds = (performance.now() - wallStart) / 1000;
    const cpu = process.cpuUsage(cpuStart);
    const cpuSeconds = (cpu.user + cpu.system) / 1e6;
    const counts: Record<string, number> = {};
    for (const a of actions) counts[a.action] = (counts[a.action] ?? 0) + 1;
    const acted = Object.entries(counts)
      .map(([k, v]) => `${v} ${k}`)
      .join(', ');
    const summary =
      `sluice simulate: ${total} requests over ${report.virtualSeconds} virtual seconds in ${wallSeconds.toFixed(2)} s ` +
      `(${Math.round(total / Math.max(wallSeconds, 1e-6))} requests/s; ${cpuSeconds.toFixed(2)} CPU-s, ` +
      `${Math.round(total / Math.max(cpuSeconds, 1e-6))} requests per CPU-second; ${finished} answered` +
      `${mode === 'inject' ? ' all through HTTP inject' : viaHttp ? ` (${viaHttp} through HTTP inject)` : ''}, ` +
      `${audited} audit events, ${metered} usage records); ` +
      `statuses ${Object.entries(report.byStatus)
        .map(([k, v]) => `${k}: ${v}`)
        .join(', ')}; actions: ${acted || 'none'}.`;
    return { report, decisions, summary, wallSeconds, cpuSeconds };
  } finally {
    await stores.close().catch(() => {});
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  }
}

/** The request's headers as a client sends them: the trace's own, its id, its credential, a JSON content type. */
function requestHeaders(
  r: TraceRequest,
  requestId: string,
  hasBody: boolean,
  bearer: string | undefined,
): Record<string, string> {
  const headers: Record<string, string> = {};
  const given = r.headers;
  for (const k in given) headers[k] = given[k]!;
  headers['x-request-id'] = requestId;
  if (r.key !== undefined) headers.authorization = bearer as string;
  else if (r.authorization !== undefined) headers.authorization = r.authorization;
  if (hasBody && !headers['content-type']) headers['content-type'] = 'application/json';
  return headers;
}

/**
 * The headers light-my-request (app.inject) would give the request: a default user agent, a host, a
 * length. Completes `h` in place (a fresh object from `requestHeaders`).
 */
function injectHeaders(h: Record<string, string>, payload: string | undefined): Record<string, string> {
  if (!('user-agent' in h)) h['user-agent'] = 'lightMyRequest';
  if (!h.host) h.host = 'localhost:80';
  if (payload !== undefined && !('content-length' in h))
    h['content-length'] = String(Buffer.byteLength(payload));
  return h;
}

function sortKeys(o: Record<string, number>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const k of Object.keys(o).sort()) out[k] = o[k]!;
  return out;
}
