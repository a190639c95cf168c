/**
 * OpenTelemetry traces, exported as OTLP/HTTP JSON (docs/tracing.md). One trace per request: a
 * root span (server) carrying the GenAI semantic-convention attributes and Sluice's own, a span
 * per pipeline stage (timed by the runner) and a client span for the upstream call. A caller's
 * W3C `traceparent` is honoured (same trace id, its span as the parent, its sampled flag) and the
 * upstream gets a `traceparent` naming the upstream span. Finished spans go to an in-memory batch
 * that is POSTed off the request path (every `flushEvery` ms or `batchSize` spans); a full queue
 * drops spans (counted) rather than grow. Off by default: then `GatewayDeps.tracer` is absent and
 * the request path does one `if` per stage and allocates nothing for tracing.
 */
import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';

export interface TracingConfig {
  enabled: boolean;
  /** OTLP/HTTP traces endpoint, e.g. http://collector:4318/v1/traces. */
  endpoint?: string;
  headers: Record<string, string>;
  sampleRatio: number;
  batchSize: number;
  flushEvery: number;
  serviceName: string;
}

type AttrValue = string | number | boolean;

interface Span {
  name: string;
  spanId: string;
  parentSpanId: string;
  kind: 1 | 2 | 3; // internal, server, client
  startUs: bigint;
  endUs: bigint;
  attrs: Record<string, AttrValue>;
  error: boolean;
}

/** A sampled request's trace while it runs. */
export class RequestTrace {
  readonly spanId = randomBytes(8).toString('hex');
  /** The upstream call's span id (the parent the upstream sees in its `traceparent`). */
  readonly upstreamSpanId = randomBytes(8).toString('hex');
  readonly spans: Span[] = [];
  readonly attrs: Record<string, AttrValue> = {};
  error = false;
  constructor(
    readonly traceId: string,
    readonly parentSpanId: string,
    readonly startMs: number,
  ) {}

  /** A child span of the root, times in performance.now() milliseconds. */
  span(name: string, startMs: number, endMs: number, attrs: Record<string, AttrValue> = {}, kind: 1 | 3 = 1) {
    this.spans.push({
      name,
      spanId: kind === 3 ? this.upstreamSpanId : randomBytes(8).toString('hex'),
      parentSpanId: this.spanId,
      kind,
      startUs: unixMicros(startMs),
      endUs: unixMicros(endMs),
      attrs,
      error: false,
    });
  }

  /** The `traceparent` to send upstream: this trace, the upstream span, sampled. */
  traceparent(): string {
    return `00-${this.traceId}-${this.upstreamSpanId}-01`;
  }
}

/** performance.now() milliseconds as Unix microseconds. */
function unixMicros(perfMs: number): bigint {
  return BigInt(Math.round((performance.timeOrigin + perfMs) * 1000));
}

/** A W3C traceparent header, or null when absent or malformed (all-zero ids are invalid). */
export function parseTraceparent(
  v: string | string[] | undefined,
): { traceId: string; spanId: string; sampled: boolean } | null {
  if (typeof v !== 'string') return null;
  const m = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/.exec(v.trim());
  if (!m || m[1] === 'ff' || /^0+$/.test(m[2]!) || /^0+$/.test(m[3]!)) return null;
  return { traceId: m[2]!, spanId: m[3]!, sampled: (Number.parseInt(m[4]!, 16) & 1) === 1 };
}

export class Tracer {
  private queue: Span[][] = [];
  private queued = 0;
  private timer: NodeJS.Timeout | null = null;
  private inflight: Promise<void> = Promise.resolve();
  /** Spans dropped because the queue was full or an export failed. */
  dropped = 0;
  exported = 0;

  constructor(
    private readonly cfg: TracingConfig,
    private readonly logger: Logger,
    private readonly random: () => number = Math.random,
  ) {}

  /** A trace for a request, or null when it is not sampled. */
  start(traceparent: string | string[] | undefined, startMs: number): RequestTrace | null {
    const parent = parseTraceparent(traceparent);
    const sampled = parent ? parent.sampled : this.random() < this.cfg.sampleRatio;
    if (!sampled) return null;
    return new RequestTrace(
      parent?.traceId ?? randomBytes(16).toString('hex'),
      parent?.spanId ?? '',
      startMs,
    );
  }

  /** Ends a request's trace: its root span goes to the export queue with its children. */
  end(t: RequestTrace, name: string, endMs: number): void {
    const root: Span = {
      name,
      spanId: t.spanId,
      parentSpanId: t.parentSpanId,
      kind: 2,
      startUs: unixMicros(t.startMs),
      endUs: unixMicros(endMs),
      attrs: t.attrs,
      error: t.error,
    };
    const spans = [root, ...t.spans];
    const max = this.cfg.batchSize * 8;
    if (this.queued + spans.length > max) {
      this.dropped += spans.length;
      return;
    }
    this.queue.push(spans.map((s) => Object.assign(s, { traceId: t.traceId })));
    this.queued += spans.length;
    if (this.queued >= this.cfg.batchSize) void this.flush();
    else if (!this.timer) {
      this.timer = setTimeout(() => {
        this.timer = null;
        void this.flush();
      }, this.cfg.flushEvery);
      this.timer.unref();
    }
  }

  /** Sends what is queued (one POST); resolves when every export so far has finished. Never throws. */
  flush(): Promise<void> {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = null;
    }
    if (this.queued === 0 || !this.cfg.endpoint) {
      this.queue = [];
      this.queued = 0;
      return this.inflight;
    }
    const batch = this.queue.flat() as (Span & { traceId: string })[];
    this.queue = [];
    this.queued = 0;
    const body = JSON.stringify(otlpJson(batch, this.cfg.serviceName));
    const endpoint = this.cfg.endpoint;
    this.inflight = this.inflight.then(async () => {
      try {
        const r = await fetch(endpoint, {
          method: 'POST',
          headers: { ...this.cfg.headers, 'content-type': 'application/json' },
          body,
          signal: AbortSignal.timeout(10_000),
        });
        await r.arrayBuffer();
        if (!r.ok) throw new Error(`OTLP endpoint answered ${r.status}`);
        this.exported += batch.length;
      } catch (err) {
        this.dropped += batch.length;
        // The endpoint and its headers (which may hold credentials) are never logged.
        this.logger.warn({ err: (err as Error).message, spans: batch.length }, 'trace export failed');
      }
    });
    return this.inflight;
  }

  async close(): Promise<void> {
    await this.flush();
  }
}

function attr(key: string, v: AttrValue) {
  if (typeof v === 'string') return { key, value: { stringValue: v } };
  if (typeof v === 'boolean') return { key, value: { boolValue: v } };
  return Number.isInteger(v) ? { key, value: { intValue: String(v) } } : { key, value: { doubleValue: v } };
}

/** The OTLP/HTTP JSON payload (ExportTraceServiceRequest): ids as hex, times as decimal strings. */
export function otlpJson(spans: (Span & { traceId: string })[], serviceName: string) {
  return {
    resourceSpans: [
      {
        resource: { attributes: [attr('service.name', serviceName)] },
        scopeSpans: [
          {
            scope: { name: 'sluice' },
            spans: spans.map((s) => ({
              traceId: s.traceId,
              spanId: s.spanId,
              ...(s.parentSpanId ? { parentSpanId: s.parentSpanId } : {}),
              name: s.name,
              kind: s.kind,
              startTimeUnixNano: String(s.startUs * 1000n),
              endTimeUnixNano: String(s.endUs * 1000n),
              attributes: Object.entries(s.attrs).map(([k, v]) => attr(k, v)),
              status: { code: s.error ? 2 : 1 },
            })),
          },
        ],
      },
    ],
  };
}
