/**
 * The policy as the request path sees it: one immutable snapshot compiled from a config version.
 * A reload builds a new snapshot and swaps one reference, so in-flight requests finish on the
 * snapshot they started with and no request is dropped.
 */
import type { SluiceConfig } from '../config/schema.js';
import type { Refusal } from '../core/errors.js';
import type { BucketState, LimitBucket } from '../core/ports.js';
import type { Principal } from './auth.js';
import { compileModelRoutes, type ModelRoute } from './model-routes.js';

export interface RequestFacts {
  action: string;
  model: string | null;
  ip: string;
  country: string | null;
  endUser: string | null;
  now: number;
  /** Endpoint name and estimated tokens, for Cedar context. */
  endpoint?: string;
  tokenEstimate?: number;
}

export interface CostEstimate {
  inputTokens: number;
  outputTokens: number;
  images: number;
}

/** What the gateway needs from the compiled limit plan. */
export interface LimitPolicy {
  bucketsFor(p: Principal, f: RequestFacts): LimitBucket[];
  costsFor(buckets: LimitBucket[], model: string, est: CostEstimate): number[];
  /** Response headers from bucket states (OpenAI, Anthropic, IETF families). */
  headersFor(states: BucketState[], format: 'openai' | 'anthropic', now: number): Record<string, string>;
  /** The refusal for a denied reserve. */
  denialFor(
    result: { bucketIndex: number; retryAfterMs: number; states: BucketState[] },
    buckets: LimitBucket[],
    costs: number[],
    format: 'openai' | 'anthropic',
    now: number,
  ): Refusal;
  usdFor(model: string, usage: { inputTokens: number; outputTokens: number; images: number }): number;
  /** `keyId`: whose observed outputs size the output reservation (issue 15, core/limits/output-estimate.ts). */
  estimate(endpoint: string, body: Record<string, unknown>, keyId?: string): CostEstimate;
  /** Feeds an answer's actual output tokens to the output-reservation sketch (called at settle). */
  observeOutput?(keyId: string, model: string, outputTokens: number): void;
}

/** What the gateway needs from the compiled access policy. */
export interface AccessPolicy {
  authorize(p: Principal, f: RequestFacts): { refusal: Refusal | null; shadow: string[] };
  modelAllowed(p: Principal, model: string): boolean;
  clientIp(remoteAddress: string, forwardedFor: string | undefined): string;
  /** ISO country of an address when a geo database is configured, else null. */
  country(ip: string): string | null;
}

export interface Runtime {
  cfg: SluiceConfig;
  /** Policy version this snapshot was compiled from (null: the file or built-in default, not yet stored). */
  version: number | null;
  route(model: string): ModelRoute | undefined;
  limits: LimitPolicy;
  access: AccessPolicy;
}

export function compileRuntime(
  cfg: SluiceConfig,
  version: number | null,
  limits: LimitPolicy,
  access: AccessPolicy,
): Runtime {
  return { cfg, version, route: compileModelRoutes(cfg), limits, access };
}
