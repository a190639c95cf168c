/**
 * What the data plane is built from. `main.ts` fills it; `createGateway(deps)` reads it. Kept apart
 * from `app.ts` so the stages, the hardening hooks and other modules can name it without an import
 * cycle through the app factory.
 */
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import type { AbuseHooks } from '../../abuse/engine.js';
import type { ResponseCacheStore } from '../../core/cache/entry.js';
import type { DeprecationEntry } from '../../core/deprecations.js';
import type { Refusal } from '../../core/errors.js';
import type { Outcome } from '../../core/outcome.js';
import type {
  AuditSink,
  BucketState,
  Clock,
  LimitBucket,
  LimitStore,
  Upstream,
  UsageRecord,
} from '../../core/ports.js';
import type { ScreeningEvent } from '../../core/screening/signals.js';
import type { Tracer } from '../../observability/tracing.js';
import type { Admission } from '../admission.js';
import type { KeyAuthenticator, Principal } from '../auth.js';
import type { Runtime } from '../runtime.js';
import type { StageLists } from './stages.js';

export interface TokenVerifier {
  /** Verifies a JWT access token presented on the data plane; resolves to a principal or a refusal. */
  verify(
    token: string,
    req: { method: string; url: string; dpop: string | undefined; scheme: string },
  ): Promise<Principal | Refusal>;
}

export interface GatewayDeps {
  runtime: () => Runtime;
  auth: Pick<KeyAuthenticator, 'authenticate'>;
  tokens?: TokenVerifier;
  limits: LimitStore;
  upstreams: Map<string, Upstream>;
  audit: AuditSink;
  usage: { record(r: UsageRecord): void };
  clock: Clock;
  /**
   * Monotonic milliseconds for stage timings (`ctx.stageMs`, spans); default `performance.now`.
   * `sluice simulate` passes a constant: its timings are read by no one, and a clock read per stage
   * was ~3 % of a replay. With a `tracer`, leave it unset: spans are placed on performance.now's
   * timeline.
   */
  stageClock?: () => number;
  logger: Logger;
  /** Readiness and degradation, for /readyz. */
  health: () => { ready: boolean; degraded: string[] };
  /**
   * Resolves once every usage row and audit event recorded so far is durable (the local journal's
   * group commit, src/stores/journal.ts). `respond` awaits it after the end stages and before a
   * model call's response ends: acknowledged means recorded.
   */
  recorded?: () => Promise<void>;
  /** Optional extra data-plane routes (tokens, JWKS) registered by other modules. */
  plugins?: ((app: FastifyInstance, deps: GatewayDeps) => void)[];
  /** Called with each request's outcome, for metrics. */
  observe?: (o: Outcome) => void;
  /** Serve HTTPS with this certificate and key (`server.tls`); HTTP/1.1 keep-alive as with plain HTTP. */
  tls?: { cert: Buffer; key: Buffer };
  /** Aborted on a forced shutdown (second SIGTERM or deadline): open streams end with an error event. */
  forceEnd?: AbortSignal;
  /** Counts failed authentications per client IP; returns a refusal when an IP is over its budget. */
  authFailures?: { check(ip: string): Refusal | null; fail(ip: string): void };
  /** Records that a key was used (batched into one write by the caller; never on the request path). */
  touch?: (keyId: string, ip: string, at: number) => void;
  /**
   * A request of `tenantId` matched a deprecation entry (`sunset`: it was refused with 410). Never
   * blocks the request: the per-tenant metric and the once-per-tenant notice hang off it.
   */
  onDeprecated?: (tenantId: string, entry: DeprecationEntry, sunset: boolean) => void;
  /** Sees every reservation's bucket states (allowed or denied): limit-crossing alerts, utilisation metrics. */
  onLimitStates?: (p: Principal, buckets: LimitBucket[], states: BucketState[]) => void;
  /** Upstream capacity and fair share, queueing (tier `queue`), upstream feedback; without it, plain reserves. */
  admission?: Admission;
  /**
   * Changes the stage lists before the routes are built: a capability (or a test) inserts its stage
   * with one line, e.g. `(s) => { s.model.splice(s.model.indexOf(screenInput), 0, myStage); }`.
   */
  stages?: (lists: StageLists) => void;
  /** Called once per request after its settle and record stages ran (or its refusal was audited). */
  onSettled?: (requestId: string) => void;
  /** Abuse detection and quarantine (src/abuse/engine.ts): stages `quarantine` and `observe-abuse`. */
  abuse?: AbuseHooks;
  /** Earned tiers and key rotation (src/trust/service.ts): what `/sluice/v1/me` shows under `trust`. */
  trust?: { describe(p: { tenantId: string; keyId: string; tier: string }): Record<string, unknown> };
  /** The response cache's store (policy `cache:`); without it the `cache` stage does nothing. */
  cache?: ResponseCacheStore;
  /** Cache outcomes for metrics: a hit (upstream tokens saved, bytes served), a miss, an answer stored (bytes). */
  onCache?: (tenantId: string, what: 'hit' | 'miss' | 'stored', savedTokens: number, bytes: number) => void;
  /**
   * What content screening found on a request (input, or output as the answer is screened; kinds,
   * actions and scores, never text): `sluice_screening_total`, and evidence for abuse detection.
   */
  onScreening?: (e: ScreeningEvent) => void;
  /** OpenTelemetry traces (policy `tracing:`); absent when tracing is off. */
  tracer?: Tracer;
}

export type { Outcome };
