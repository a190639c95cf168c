/**
 * The typed state of one request as it goes through the stages. Each stage reads what earlier
 * stages wrote and adds its own part; docs/architecture.md lists who writes which field.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import type {
  BucketState,
  Endpoint,
  LimitBucket,
  Reservation,
  Upstream,
  UpstreamResponse,
  Usage,
} from '../../core/ports.js';
import type { Labels } from '../../core/routing/pins.js';
import type { RequestTrace } from '../../observability/tracing.js';
import type { Principal } from '../auth.js';
import type { ModelRoute } from '../model-routes.js';
import type { CostEstimate, RequestFacts, Runtime } from '../runtime.js';
import type { WireFormat } from '../wire.js';
import type { CallAbort } from './call-abort.js';
import type { GatewayDeps } from './deps.js';
import type { Stage } from './runner.js';

/** `performance.now`, bound (the method refuses to run unbound). */
const performanceNow = () => performance.now();

/** The clock for stage timings: `deps.stageClock`, else `performance.now`. */
export function stageClockOf(deps: GatewayDeps): () => number {
  return deps.stageClock ?? performanceNow;
}

export interface RequestContext {
  readonly deps: GatewayDeps;
  readonly request: FastifyRequest;
  readonly reply: FastifyReply;
  /** Request id (also `x-request-id`). */
  readonly id: string;
  /** The endpoint the call goes to upstream (`chat` for a task); null for /v1/models and /sluice/v1/me. */
  endpoint: Endpoint | null;
  /** The caller's action (`chat.create`, `tasks.summarize`, `models.list`, `me.read`). */
  action: string;
  readonly format: WireFormat;
  /** The policy snapshot this request runs on from start to end. */
  readonly rt: Runtime;
  /** Client address (X-Forwarded-For through trusted proxies only) and its country when geo is configured. */
  ip: string;
  country: string | null;
  /** The JSON body as parsed (then as rewritten for a task); null when there is none. */
  body: Record<string, unknown> | null;
  /** The model the caller named (what limits, authz and usage see). */
  model: string | null;
  stream: boolean;
  /** Set by `authenticate`. */
  principal: Principal | null;
  /** True at the token endpoint: a key whose tier says `dpop: required` may still be exchanged there. */
  exchange: boolean;
  /** Facts for authorization and limits, set by `context-checks`. */
  facts: RequestFacts | null;
  estimate: CostEstimate | null;
  /** Authorization rules that would have refused in shadow mode. */
  shadow: string[];
  /** Set by `authorize` (and `routePins`, which may pick a fallback). */
  route: ModelRoute | null;
  upstream: Upstream | null;
  /** Set by `routePins`: the upstream labels the request is pinned to (null: not pinned). */
  pinned: Labels | null;
  /** Set by `limit`: the buckets reserved (the caller's own first, then upstream capacity), costs, states. */
  buckets: LimitBucket[];
  costs: number[];
  /** How many of `buckets` are the caller's own (the rest are the upstream's capacity). */
  ownBuckets: number;
  reservation: Reservation | null;
  states: BucketState[];
  /** Shadow limits that would have refused. */
  shadowLimits: string[];
  /**
   * What content screening found (issue 12), for the audit event's `details.screening`: the input
   * verdicts (kinds and scores) and the output's findings and cut reason. Never the matched text.
   */
  screening: { input?: Record<string, unknown>; output?: { found?: string[]; cut?: string } } | null;
  /** Set by `forward`: the upstream's answer (its body may be rewritten by `screen-output`). */
  response: UpstreamResponse | null;
  /** Aborted when the client leaves or a forced shutdown ends the call (ask `abort.aborted`, not its signal). */
  abort: CallAbort | null;
  /** Removes the forward stage's client-close listener once the answer has ended. */
  detach: (() => void) | null;
  /** clock.now() when the upstream call started. */
  upstreamStarted: number;
  /** The abuse detectors saw this call before it was forwarded (`observe-abuse-start`). */
  abuseStarted: boolean;
  /** What the answer used, set when the answer or stream has ended (before `settle`). */
  usage: Usage | null;
  /** A local answer (for /v1/models and /sluice/v1/me): sent as JSON when the stages end. */
  answer: unknown;
  /** Work the end stages started and `done` waits for (a settle's store call). */
  pending: Promise<unknown>[];
  /** Milliseconds spent in each stage, by stage name. */
  stageMs: Record<string, number>;
  /** performance.now() when the pipeline started. */
  readonly t0: number;
  /** The stages run when the answer or stream ends (settle, record). */
  readonly end: readonly Stage[];
  /** Resolves once the end stages ran, or the refusal was audited and sent. Never rejects. */
  readonly done: Promise<void>;
  /** Internal: resolves `done`. */
  settled: () => void;
  /** True once a reply (refusal or answer) was handed to Fastify. */
  replied: boolean;
  /** Set by `cache` when the cache is on and the request is cacheable: its key, and whether it was a hit. */
  cache: CacheState | null;
  /** The request's trace when tracing is on and it is sampled (observability/tracing.ts). */
  trace: RequestTrace | null;
}

/** A cacheable request's cache outcome (stages/cache.ts). */
export interface CacheState {
  key: string;
  hit: boolean;
  /** A hit: the stored entry's age (ms) and the upstream tokens it saved. */
  ageMs: number;
  savedTokens: number;
}

export function newContext(
  deps: GatewayDeps,
  request: FastifyRequest,
  reply: FastifyReply,
  init: {
    endpoint: Endpoint | null;
    action: string;
    format: WireFormat;
    rt: Runtime;
    ip: string;
    end: readonly Stage[];
    exchange?: boolean;
  },
): RequestContext {
  let settled!: () => void;
  const done = new Promise<void>((resolve) => {
    settled = resolve;
  });
  return {
    deps,
    request,
    reply,
    id: request.id,
    endpoint: init.endpoint,
    action: init.action,
    format: init.format,
    rt: init.rt,
    ip: init.ip,
    country: null,
    body: (request.body as Record<string, unknown> | null | undefined) ?? null,
    model: null,
    stream: false,
    principal: null,
    exchange: init.exchange ?? false,
    facts: null,
    estimate: null,
    shadow: [],
    route: null,
    upstream: null,
    pinned: null,
    buckets: [],
    costs: [],
    ownBuckets: 0,
    reservation: null,
    states: [],
    shadowLimits: [],
    screening: null,
    response: null,
    abort: null,
    detach: null,
    pending: [],
    upstreamStarted: 0,
    abuseStarted: false,
    usage: null,
    answer: undefined,
    stageMs: {},
    t0: stageClockOf(deps)(),
    end: init.end,
    done,
    settled,
    replied: false,
    cache: null,
    trace: null,
  };
}
