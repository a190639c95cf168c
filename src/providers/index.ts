/**
 * Builds the Upstream a config entry names. HTTP upstreams are wrapped in a circuit breaker and
 * a single retry for connect errors that happened before any byte was sent (so a retried request
 * can never be served, or charged, twice). The mock is returned bare: it has no transport to fail.
 */
import type { Dispatcher } from 'undici';
import type { UpstreamConfig } from '../config/schema.js';
import type { Clock, Endpoint, Upstream, UpstreamRequest, UpstreamResponse } from '../core/ports.js';
import { systemClock, UpstreamError } from '../core/ports.js';
import { AnthropicUpstream } from './anthropic.js';
import { type BreakerOptions, type BreakerState, CircuitBreaker } from './circuit-breaker.js';
import type { ProviderHooks } from './http-upstream.js';
import { MockUpstream } from './mock.js';
import { OpenAIUpstream } from './openai.js';
import { tlsConnectOptions } from './upstream-tls.js';

export interface CreateUpstreamOptions {
  /** Drives the circuit breaker (and the mock's `created` timestamps). Defaults to the system clock. */
  clock?: Clock;
  /** Overrides of the breaker's defaults (5 consecutive failures, 50% of 20 calls in 30 s, 15 s cooldown). */
  breaker?: Partial<BreakerOptions>;
  /** Where relative `tls` file paths resolve (the config file's directory); default the working directory. */
  baseDir?: string;
  /** The mock's embeddings (`MockUpstream`): seeded by the input (default), or one constant vector per size. */
  mockVectors?: 'seeded' | 'constant';
}

/**
 * An Upstream behind a circuit breaker. `call` throws UpstreamError('circuit-open', beforeSend=true)
 * while the breaker is open; transport errors, 5xx answers and streams that break count as failures;
 * a client abort counts as neither. A connect error before anything was sent is retried once, and
 * the call counts once (its last attempt's outcome), so N failed calls open an N-failure breaker.
 */
export class GuardedUpstream implements Upstream {
  readonly name: string;
  readonly kind: Upstream['kind'];

  constructor(
    private readonly inner: Upstream,
    readonly breaker: CircuitBreaker,
  ) {
    this.name = inner.name;
    this.kind = inner.kind;
  }

  /** The breaker's state, for /readyz and metrics. */
  breakerState(): BreakerState {
    return this.breaker.state();
  }

  supports(endpoint: Endpoint): boolean {
    return this.inner.supports(endpoint);
  }

  /** False while the circuit is open: routing passes over it (gateway/upstream-choice.ts). */
  available(): boolean {
    return this.breaker.state() !== 'open';
  }

  /** The HTTP pool (with the upstream's TLS settings) for the side endpoints' plain JSON calls. */
  dispatcher(): Dispatcher | undefined {
    return (this.inner as { pool?: Dispatcher }).pool;
  }

  advertisedModels(): { id: string; endpoints: Endpoint[] }[] {
    return this.inner.advertisedModels();
  }

  async call(req: UpstreamRequest): Promise<UpstreamResponse> {
    let first: UpstreamError | undefined;
    for (let attempt = 0; attempt < 2; attempt++) {
      const permit = this.breaker.acquire();
      if (!permit.ok) {
        // A retry refused by a breaker opened meanwhile (by another call) reports the real cause.
        if (first) throw first;
        throw new UpstreamError(
          'circuit-open',
          `${this.name}: circuit open, next probe in ${Math.ceil(permit.retryAfterMs / 1000)}s`,
          true,
        );
      }
      try {
        const res = await this.inner.call(req);
        // A mapped error answer is judged by what the upstream said (a 401 behind a 502 is not an outage).
        if ((res.upstreamStatus ?? res.status) >= 500) this.breaker.failure(permit.probe);
        else this.breaker.success(permit.probe);
        return res;
      } catch (err) {
        if (!(err instanceof UpstreamError) || req.signal.aborted) {
          this.breaker.cancel(permit.probe);
          throw err;
        }
        if (err.kind === 'protocol' && !this.inner.supports(req.endpoint)) {
          this.breaker.cancel(permit.probe);
          throw err;
        }
        if (attempt === 0 && err.kind === 'connect' && err.beforeSend) {
          // The retry decides this call's one outcome: a call counts once toward the breaker's
          // threshold however many attempts it took (docs/configuration.md: 5 failed calls open it).
          this.breaker.cancel(permit.probe);
          first = err;
          continue;
        }
        this.breaker.failure(permit.probe);
        throw err;
      }
    }
    throw first ?? new UpstreamError('connect', `${this.name}: cannot connect`, true);
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}

/** Builds one configured upstream. */
export function createUpstream(cfg: UpstreamConfig, opts: CreateUpstreamOptions = {}): Upstream {
  const clock = opts.clock ?? systemClock;
  if (cfg.kind === 'mock')
    return new MockUpstream(cfg, { now: () => clock.now(), vectors: opts.mockVectors });
  const breaker = new CircuitBreaker(clock, opts.breaker);
  // A stream that breaks after its headers counted as a success is a failure of its own.
  const hooks: ProviderHooks = { onStreamFailure: () => breaker.failure(false) };
  const tls = tlsConnectOptions(cfg.name, cfg.tls, opts.baseDir ?? process.cwd());
  const inner =
    cfg.kind === 'openai'
      ? new OpenAIUpstream(cfg, { hooks, tls })
      : new AnthropicUpstream(cfg, { hooks, tls });
  return new GuardedUpstream(inner, breaker);
}

export { AnthropicUpstream } from './anthropic.js';
export {
  type BreakerOptions,
  type BreakerPermit,
  type BreakerState,
  CircuitBreaker,
} from './circuit-breaker.js';
export { MOCK_MODELS, MockUpstream } from './mock.js';
export { OpenAIUpstream } from './openai.js';
export { classifyEvent, dualView, eventsOf, streamFormatOf } from './stream-events.js';
export {
  newStreamState,
  renderCut,
  renderText,
  rewriteJsonText,
  type StreamState,
  type TextEvent,
  trackStream,
} from './stream-render.js';
export {
  type EventTransform,
  eventBytes,
  type ScanContext,
  type ScanResult,
  slidingWindow,
  type TextScanner,
  type TransformDecision,
  transformEvents,
} from './stream-transform.js';
export { mappedErrorResponse, mapUpstreamError, redactCredentials } from './upstream-errors.js';
export { tlsConnectOptions, UpstreamTlsError } from './upstream-tls.js';
