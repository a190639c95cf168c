/**
 * The ports between Sluice's pure core and its adapters. Nothing else lives here.
 * Every implementation of a port passes the same contract suite in `test/contracts/`.
 */

import type { Refusal } from './errors.js';

/** Milliseconds since the Unix epoch. Tests pass a fake clock; nothing in core reads Date.now(). */
export interface Clock {
  now(): number;
}

export const systemClock: Clock = { now: () => Date.now() };

// ---------------------------------------------------------------------------------------------
// Limits
// ---------------------------------------------------------------------------------------------

/** What a limit counts. `concurrent` is an in-flight lease, the rest are amounts over a window. */
export type CostKind =
  | 'requests'
  | 'tokens'
  | 'inputTokens'
  | 'outputTokens'
  | 'images'
  | 'usd'
  | 'concurrent';

/** gcra: rate with burst (windows under 1h); window: sliding-window counter (1h..30d); lease: concurrency. */
export type LimitAlgorithm = 'gcra' | 'window' | 'lease';

/** One concrete bucket a request touches: a policy limit resolved for this caller. */
export interface LimitBucket {
  /** Policy id of the limit, e.g. `rpm`. */
  id: string;
  /** Storage key, unique per bucket, e.g. `{t:acme}:rpm:key:k_123`. The `{...}` part is the Redis Cluster hash tag. */
  key: string;
  kind: CostKind;
  algorithm: LimitAlgorithm;
  /** N per window (or the concurrency cap). */
  limit: number;
  /** Extra allowance on top of N (GCRA only); 0 otherwise. */
  burst: number;
  /** Window length; for leases, the lease TTL. */
  windowMs: number;
  /** Shadow limits are counted and reported but never deny. */
  shadow: boolean;
  /** Scope of the limit as written in the policy (`key`, `tenant`, ...), for messages. */
  per: string;
  /**
   * Hot-key slice size (requests limits only; absent or ≤ 1 = off, the default): an instance may
   * reserve this many requests at once and admit from them locally (see SliceLimitStore). Worst-case
   * over-admission: instances × slice per window.
   */
  slice?: number;
}

/** The current state of one bucket, as reported in headers and `/sluice/v1/me`. */
export interface BucketState {
  id: string;
  kind: CostKind;
  per: string;
  limit: number;
  /** Amount that could be admitted right now (never negative). */
  remaining: number;
  /** Milliseconds until the bucket is full again (or, for windows, until the oldest usage leaves). */
  resetMs: number;
  windowMs: number;
  shadow: boolean;
}

export interface ReserveInput {
  buckets: LimitBucket[];
  /** Cost per bucket, same order as `buckets` (1 for requests, estimated tokens, 1 for a lease, ...). */
  costs: number[];
  /** Unique id of this request; used as the lease id for concurrency buckets. */
  requestId: string;
}

/** Opaque handle that `settle` and `release` need; serialisable (it may cross processes). */
export interface Reservation {
  requestId: string;
  buckets: LimitBucket[];
  costs: number[];
  /** Store-specific data (e.g. the window slot each amount was booked in). */
  meta?: unknown;
}

/**
 * The decision of a reserve. A deny is a value, never an exception.
 * On deny nothing was reserved in any bucket (all or none), and rejected requests cost nothing.
 */
export type ReserveResult =
  | { ok: true; reservation: Reservation; states: BucketState[]; shadowDenied: string[] }
  | {
      ok: false;
      /** Index into `buckets` of the limit that bound (the one with the longest wait). */
      bucketIndex: number;
      /** Exact milliseconds until this request would fit, or Infinity if it never can (cost > limit+burst). */
      retryAfterMs: number;
      states: BucketState[];
    };

/**
 * Limit state, memory or Redis. `reserve` checks and reserves every bucket in one atomic step.
 * `settle` replaces the reserved costs with actual costs (refund, or overrun carried as debt);
 * it is idempotent per reservation. `release` frees concurrency leases (also idempotent).
 * Store failures throw; the caller applies the policy's `onStoreFailure`.
 */
export interface LimitStore {
  reserve(input: ReserveInput): Promise<ReserveResult>;
  settle(reservation: Reservation, actualCosts: number[]): Promise<void>;
  release(reservation: Reservation): Promise<void>;
  /** Current state of buckets without changing them (for `/sluice/v1/me`). */
  peek(buckets: LimitBucket[]): Promise<BucketState[]>;
  close(): Promise<void>;
}

// ---------------------------------------------------------------------------------------------
// Control data: tenants, projects, keys, policy versions, admin users
// ---------------------------------------------------------------------------------------------

export interface Tenant {
  id: string;
  name: string;
  /** Tier override for every key of the tenant (optional; keys carry their own tier). */
  tier?: string | null;
  createdAt: number;
  deletedAt?: number | null;
}

export interface Project {
  id: string;
  tenantId: string;
  name: string;
  scopes?: string[] | null;
  models?: string[] | null;
  createdAt: number;
}

export interface ApiKeyRecord {
  /** Public id, part of the key (`sk-sluice-<id>-<secret>`). */
  id: string;
  /** HMAC-SHA-256(pepper, secret), hex. */
  hash: string;
  /** During rotation: the previous secret's hash and when it stops working. */
  prevHash?: string | null;
  prevExpiresAt?: number | null;
  tenantId: string;
  projectId?: string | null;
  tier: string;
  name?: string | null;
  owner?: string | null;
  notes?: string | null;
  /** Null means "whatever the tier and project allow". */
  scopes?: string[] | null;
  models?: string[] | null;
  allowIps?: string[] | null;
  denyIps?: string[] | null;
  dpop?: 'required' | 'optional' | null;
  /** TOTP secret for step-up (encrypted or raw base32; never returned by the admin API). */
  totpSecret?: string | null;
  expiresAt?: number | null;
  revokedAt?: number | null;
  createdAt: number;
  lastUsedAt?: number | null;
  lastUsedIp?: string | null;
}

export interface PolicyVersion {
  version: number;
  /** sha256 of `source`, hex. */
  hash: string;
  /** The YAML text as applied. */
  source: string;
  author: string;
  message: string;
  createdAt: number;
}

export type AdminRole = 'admin' | 'operator' | 'auditor';

export interface AdminUser {
  id: string;
  name: string;
  role: AdminRole;
  tokenHash: string;
  totpSecret?: string | null;
  createdAt: number;
  disabledAt?: number | null;
}

export interface KeyFilter {
  tenantId?: string;
  projectId?: string;
  includeRevoked?: boolean;
}

/**
 * Tenants, projects, keys, policy versions, admin users. SQLite or PostgreSQL.
 * Reads of a missing row return undefined; writes that conflict throw an Error with `code = 'CONFLICT'`.
 */
export interface ControlStore {
  migrate(): Promise<void>;

  createTenant(t: Tenant): Promise<void>;
  getTenant(id: string): Promise<Tenant | undefined>;
  listTenants(): Promise<Tenant[]>;
  deleteTenant(id: string, at: number): Promise<void>;

  createProject(p: Project): Promise<void>;
  getProject(id: string): Promise<Project | undefined>;
  listProjects(tenantId?: string): Promise<Project[]>;

  createKey(k: ApiKeyRecord): Promise<void>;
  getKey(id: string): Promise<ApiKeyRecord | undefined>;
  listKeys(filter?: KeyFilter): Promise<ApiKeyRecord[]>;
  updateKey(id: string, patch: Partial<Omit<ApiKeyRecord, 'id' | 'createdAt'>>): Promise<void>;
  /** Batched last-used updates (one write for many requests). */
  touchKeys(touches: { id: string; at: number; ip: string | null }[]): Promise<void>;

  savePolicyVersion(v: Omit<PolicyVersion, 'version'>): Promise<PolicyVersion>;
  getPolicyVersion(version: number): Promise<PolicyVersion | undefined>;
  latestPolicyVersion(): Promise<PolicyVersion | undefined>;
  listPolicyVersions(): Promise<Omit<PolicyVersion, 'source'>[]>;

  createAdminUser(u: AdminUser): Promise<void>;
  getAdminUserByTokenHash(hash: string): Promise<AdminUser | undefined>;
  listAdminUsers(): Promise<AdminUser[]>;
  updateAdminUser(
    id: string,
    patch: { totpSecret?: string | null; disabledAt?: number | null; tokenHash?: string },
  ): Promise<void>;

  close(): Promise<void>;
}

// ---------------------------------------------------------------------------------------------
// Usage and audit
// ---------------------------------------------------------------------------------------------

export interface UsageRecord {
  requestId: string;
  at: number;
  keyId: string;
  tenantId: string;
  projectId?: string | null;
  model: string;
  action: string;
  upstream: string;
  inputTokens: number;
  outputTokens: number;
  images: number;
  usd: number;
  status: number;
  latencyMs: number;
}

export interface UsageQuery {
  groupBy: 'key' | 'project' | 'tenant' | 'model';
  bucket: 'hour' | 'day';
  since: number;
  until: number;
  tenantId?: string;
  keyId?: string;
}

export interface UsageRow {
  group: string;
  bucketStart: number;
  requests: number;
  inputTokens: number;
  outputTokens: number;
  images: number;
  usd: number;
}

export interface UsageLedger {
  record(rows: UsageRecord[]): Promise<void>;
  query(q: UsageQuery): Promise<UsageRow[]>;
}

export type AuditDecision = 'allowed' | 'throttled' | 'refused' | 'error' | 'admin' | 'system';

/** One audit event. `hash` covers every other field plus `prevHash`; chained per instance. */
export interface AuditEvent {
  /** Position in its instance's chain, from 1. */
  seq: number;
  instance: string;
  at: number;
  requestId: string | null;
  keyId: string | null;
  tenantId: string | null;
  projectId: string | null;
  clientIp: string | null;
  country: string | null;
  userAgent: string | null;
  action: string;
  model: string | null;
  decision: AuditDecision;
  /** Stable reason code: an error code, `ok`, or an admin operation. */
  reason: string;
  policyVersion: number | null;
  /** Limit states that mattered, admin call details, etc. Never secrets. */
  details: Record<string, unknown> | null;
  prevHash: string;
  hash: string;
}

/** An event before the chain assigns seq/prevHash/hash. */
export type AuditEventInput = Omit<AuditEvent, 'seq' | 'instance' | 'prevHash' | 'hash'>;

/**
 * Append-only audit storage. `append` stores already-chained events in one transaction (group commit).
 * `read` returns events in chain order. Nothing in Sluice edits or deletes rows except `prune`,
 * which records a checkpoint.
 */
export interface AuditStore {
  append(events: AuditEvent[]): Promise<void>;
  /** The last event of an instance's chain (to resume it after a restart). */
  head(instance: string): Promise<AuditEvent | undefined>;
  read(opts: {
    instance?: string;
    since?: number;
    until?: number;
    afterSeq?: number;
    limit?: number;
  }): Promise<AuditEvent[]>;
  instances(): Promise<string[]>;
}

/** What the request path sees: fire-and-forget, never blocks, never throws. */
export interface AuditSink {
  emit(event: AuditEventInput): void;
  /** Flushes everything queued; resolves when durable. */
  flush(): Promise<void>;
  stats(): { queued: number; overflowed: number; written: number };
}

// ---------------------------------------------------------------------------------------------
// Upstreams
// ---------------------------------------------------------------------------------------------

/** Usage normalised from any provider's response or stream. */
export interface Usage {
  inputTokens: number;
  outputTokens: number;
  images: number;
}

/** The data-plane endpoints Sluice forwards. */
export type Endpoint = 'chat' | 'completions' | 'embeddings' | 'images' | 'responses' | 'messages';

export interface UpstreamRequest {
  endpoint: Endpoint;
  /** The caller's parsed JSON body, with `model` already rewritten for the upstream. Unknown fields pass through. */
  body: Record<string, unknown>;
  /** True when the caller asked for a stream. */
  stream: boolean;
  /** Aborted when the client goes away or the gateway gives up; the upstream call must stop. */
  signal: AbortSignal;
  requestId: string;
  /** Safe caller headers to forward (e.g. `anthropic-version`, `anthropic-beta`). Never credentials. */
  headers: Record<string, string>;
}

export interface UpstreamResponse {
  status: number;
  /** Headers to pass to the caller (content-type, upstream request ids); never credentials or hop-by-hop headers. */
  headers: Record<string, string>;
  /** Upstream's own rate-limit headers (x-ratelimit-remaining-*, anthropic-ratelimit-*, retry-after), for feedback. */
  rateHeaders: Record<string, string>;
  /** Non-streaming: the whole body. Streaming: the bytes as they arrive (already rewritten if needed). */
  body: Uint8Array | AsyncIterable<Uint8Array>;
  /**
   * Usage, resolved once the body has been fully read (or the stream ended or was aborted: then with what was
   * produced so far). Never rejects.
   */
  usage: Promise<Usage>;
  /**
   * Streamed answers of chat, completions, responses and messages: the same stream as `body`, parsed
   * once into provider-neutral events as it arrives (each keeps its exact SSE bytes in `raw`, so
   * `body` is `events` mapped to `raw`). Both views share one underlying stream: consume ONE of them.
   * Absent for whole (non-streaming) answers and error answers.
   */
  events?: AsyncIterable<StreamEvent>;
  /**
   * Set when the upstream answered an error that was mapped into Sluice's catalogue (never passed
   * through): `status`, `headers` and `body` already hold the mapped answer in the caller's wire
   * format; the pipeline should audit it as this refusal (its `internal` is a redacted log excerpt).
   */
  refusal?: Refusal;
  /** The status the upstream itself answered, when `refusal` is set (e.g. 401 behind a 502). */
  upstreamStatus?: number;
}

/** The wire format of a stream: the endpoint whose SSE dialect it speaks. */
export type StreamFormat = 'chat' | 'completions' | 'responses' | 'messages';

/** Fields every stream event has. */
export interface StreamEventBase {
  /** The exact bytes of the SSE event this came from (up to and including its blank line). */
  raw: Uint8Array;
  /** The SSE `event:` name (`message` when none was given). */
  sse: string;
  /** The event's `data:` parsed as a JSON object, when it is one (not for `[DONE]` or pings). */
  data?: Record<string, unknown>;
}

/**
 * One event of a streamed answer, provider-neutral. `choice` is the choice index (chat, completions),
 * the output index (responses) or 0 (messages); `contentIndex` is the content part (responses) or the
 * content block (messages), else 0. `other` is anything else: role chunks, pings, lifecycle events.
 */
export type StreamEvent =
  | (StreamEventBase & {
      kind: 'text';
      text: string;
      choice: number;
      contentIndex: number;
      data: Record<string, unknown>;
    })
  | (StreamEventBase & {
      kind: 'tool-call';
      choice: number;
      /** The tool call's index within the choice (chat) or its content block / output index. */
      index: number;
      id?: string;
      name?: string;
      /** A fragment of the JSON arguments ('' on the event that opens the call). */
      arguments: string;
    })
  | (StreamEventBase & { kind: 'usage'; usage: Partial<Usage> })
  | (StreamEventBase & { kind: 'finish'; choice: number; reason: string })
  | (StreamEventBase & { kind: 'error'; message: string })
  | (StreamEventBase & { kind: 'other' });

/**
 * One configured upstream (openai, anthropic or mock). Throws UpstreamError for transport failures
 * (connect, timeout, reset); an HTTP error status from the upstream is a normal response.
 */
export interface Upstream {
  readonly name: string;
  readonly kind: 'openai' | 'anthropic' | 'mock';
  /** Endpoints this upstream can serve. */
  supports(endpoint: Endpoint): boolean;
  call(req: UpstreamRequest): Promise<UpstreamResponse>;
  /** Models to advertise in /v1/models (mock: its demo models; others: none unless configured). */
  advertisedModels(): { id: string; endpoints: Endpoint[] }[];
  /** False while calls would be refused without trying (circuit open); absent: always available. */
  available?(): boolean;
  close(): Promise<void>;
}

/**
 * `untrusted`: the upstream's certificate failed verification (CA, host name or fingerprint pin), so
 * the connection was closed before anything was sent.
 */
export class UpstreamError extends Error {
  constructor(
    readonly kind: 'connect' | 'timeout' | 'reset' | 'circuit-open' | 'protocol' | 'untrusted',
    message: string,
    /** True if no byte of the request reached the upstream (safe to retry). */
    readonly beforeSend = false,
  ) {
    super(message);
    this.name = 'UpstreamError';
  }
}
