/**
 * Live traffic per tenant for the console: `GET /admin/v1/traffic/stream` is a server-sent event
 * stream with one event a second, `{at, tenants: [{tenant, requests, allowed, throttled, refused,
 * errors, inputTokens, outputTokens, usd}]}` for the tenants seen in that second. The data plane's
 * outcome hook feeds it (one Map update per request, no allocation when nobody listens).
 */
import type { FastifyInstance } from 'fastify';
import type { Outcome } from '../core/outcome.js';
import { type AdminDeps, auditAdmin, guard } from './app.js';

/** 1 s: the console's refresh rate; per-second figures are what an operator watching an incident needs. */
export const TRAFFIC_TICK_MS = 1000;
/** Streams open at once; beyond, new ones are refused (each costs a socket and a write a second). */
const MAX_STREAMS = 50;
/** Tenants per event; the busiest first. */
const MAX_TENANTS = 200;

interface Counters {
  requests: number;
  allowed: number;
  throttled: number;
  refused: number;
  errors: number;
  inputTokens: number;
  outputTokens: number;
  usd: number;
}

export class TrafficFeed {
  private current = new Map<string, Counters>();
  private readonly streams = new Set<(chunk: string) => void>();
  private timer: NodeJS.Timeout | null = null;

  constructor(private readonly now: () => number) {}

  observe(o: Outcome): void {
    if (this.streams.size === 0) return;
    const t = o.tenantId ?? '(unauthenticated)';
    let c = this.current.get(t);
    if (!c) {
      if (this.current.size >= 10_000) return;
      c = {
        requests: 0,
        allowed: 0,
        throttled: 0,
        refused: 0,
        errors: 0,
        inputTokens: 0,
        outputTokens: 0,
        usd: 0,
      };
      this.current.set(t, c);
    }
    c.requests++;
    if (o.decision === 'allowed') c.allowed++;
    else if (o.decision === 'throttled') c.throttled++;
    else if (o.decision === 'refused') c.refused++;
    else if (o.decision === 'error') c.errors++;
    c.inputTokens += o.usage?.inputTokens ?? 0;
    c.outputTokens += o.usage?.outputTokens ?? 0;
    c.usd += o.usd ?? 0;
  }

  private tick(): void {
    const tenants = [...this.current]
      .sort((a, b) => b[1].requests - a[1].requests)
      .slice(0, MAX_TENANTS)
      .map(([tenant, c]) => ({ tenant, ...c, usd: Math.round(c.usd * 1e6) / 1e6 }));
    this.current = new Map();
    const chunk = `data: ${JSON.stringify({ at: this.now(), tenants })}\n\n`;
    for (const s of this.streams) s(chunk);
  }

  routes = (app: FastifyInstance, deps: AdminDeps) => {
    const ends = new Set<() => void>();
    app.addHook('preClose', (done) => {
      for (const end of ends) end();
      this.close();
      done();
    });
    app.get('/admin/v1/traffic/stream', { preHandler: guard('read') }, (request, reply) => {
      if (this.streams.size >= MAX_STREAMS) {
        return reply
          .code(503)
          .header('retry-after', '5')
          .send({ error: { message: 'too many live streams' } });
      }
      auditAdmin(deps, request, 'traffic.stream', {});
      reply.hijack();
      const res = reply.raw;
      res.writeHead(200, {
        'content-type': 'text/event-stream; charset=utf-8',
        'cache-control': 'no-store',
        'x-content-type-options': 'nosniff',
        connection: 'keep-alive',
      });
      res.write(': live traffic per tenant, one event a second\n\n');
      const write = (chunk: string) => void res.write(chunk);
      const end = () => {
        this.streams.delete(write);
        ends.delete(end);
        if (this.streams.size === 0 && this.timer) {
          clearInterval(this.timer);
          this.timer = null;
        }
        if (!res.writableEnded) res.end();
      };
      this.streams.add(write);
      ends.add(end);
      request.raw.on('close', end);
      if (!this.timer) {
        this.timer = setInterval(() => this.tick(), TRAFFIC_TICK_MS);
        this.timer.unref();
      }
    });
  };

  close(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    this.streams.clear();
  }
}
