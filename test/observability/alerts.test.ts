import { createHmac } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import Fastify from 'fastify';
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { registerAlertsRoute } from '../../src/admin/observability-routes.js';
import type { AuditEventInput, AuditSink } from '../../src/core/ports.js';
import {
  AlertEngine,
  type AlertEngineOptions,
  type AlertEvent,
  type AlertWebhook,
  signAlertBody,
  verifyAlertSignature,
} from '../../src/observability/alerts.js';

const SECRET = 'whsec_test_secret';
const logger = pino({ level: 'silent' });

class MemoryAudit implements AuditSink {
  events: AuditEventInput[] = [];
  emit(e: AuditEventInput): void {
    this.events.push(e);
  }
  async flush(): Promise<void> {}
  stats() {
    return { queued: 0, overflowed: 0, written: this.events.length };
  }
  of(action: string): AuditEventInput[] {
    return this.events.filter((e) => e.action === action);
  }
}

interface Received {
  url: string;
  headers: IncomingHttpHeaders;
  body: string;
}

/** A webhook receiver on loopback: answers each request with the next scripted status (then 200). */
class Receiver {
  received: Received[] = [];
  statuses: number[] = [];
  private server: Server | undefined;
  port = 0;

  async start(): Promise<void> {
    this.server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        this.received.push({
          url: req.url ?? '',
          headers: req.headers,
          body: Buffer.concat(chunks).toString('utf8'),
        });
        res.statusCode = this.statuses.shift() ?? 200;
        res.end('{}');
      });
    });
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    this.port = (this.server!.address() as AddressInfo).port;
  }

  url(path = '/hook'): string {
    return `http://127.0.0.1:${this.port}${path}`;
  }

  async stop(): Promise<void> {
    this.server?.closeAllConnections();
    await new Promise<void>((resolve) => this.server?.close(() => resolve()));
  }
}

const limitEvent = (over: Partial<AlertEvent> = {}): AlertEvent => ({
  type: 'limit.100',
  tenantId: 'acme',
  limitId: 'rpm',
  message: 'tenant acme reached 100% of limit "rpm"',
  details: { limit: 60, remaining: 0 },
  ...over,
});

describe('AlertEngine', () => {
  let receiver: Receiver;
  let audit: MemoryAudit;
  let now: number;
  let hooks: AlertWebhook[];
  let engine: AlertEngine;

  const make = (over: Partial<AlertEngineOptions> = {}) =>
    new AlertEngine({
      config: () => hooks,
      clock: { now: () => now },
      audit,
      logger,
      // Short real backoff: the test waits on `idle()`, never on wall-clock thresholds.
      retry: { attempts: 3, baseMs: 5, maxMs: 20 },
      timeoutMs: 2000,
      ...over,
    });

  beforeEach(async () => {
    receiver = new Receiver();
    await receiver.start();
    audit = new MemoryAudit();
    now = 1_700_000_000_000;
    hooks = [
      {
        webhook: receiver.url('/hook/T000/secret-token'),
        secret: SECRET,
        on: ['limit.80', 'limit.100', 'degraded'],
      },
    ];
    engine = make();
  });

  afterEach(async () => {
    await engine.close();
    await receiver.stop();
  });

  it('delivers signed JSON to the webhook, lists the alert and audits raise and delivery', async () => {
    const record = engine.notify(limitEvent());
    expect(record).not.toBeNull();
    await engine.idle();

    // 1. The receiver got one POST with a verifiable signature over the exact body.
    expect(receiver.received).toHaveLength(1);
    const got = receiver.received[0]!;
    expect(got.url).toBe('/hook/T000/secret-token');
    expect(got.headers['content-type']).toBe('application/json');
    // Computed here independently of the engine's own helper.
    const expected = `sha256=${createHmac('sha256', SECRET).update(got.body).digest('hex')}`;
    expect(got.headers['x-sluice-signature']).toBe(expected);
    expect(signAlertBody(SECRET, got.body)).toBe(expected);
    expect(verifyAlertSignature(SECRET, got.body, got.headers['x-sluice-signature'] as string)).toBe(true);
    expect(verifyAlertSignature('other-secret', got.body, got.headers['x-sluice-signature'] as string)).toBe(
      false,
    );
    expect(got.headers['x-sluice-timestamp']).toBe(String(Math.floor(now / 1000)));
    expect(got.headers['x-sluice-event']).toBe('limit.100');
    expect(got.headers['x-sluice-delivery']).toBe(record!.id);
    const body = JSON.parse(got.body);
    expect(body).toMatchObject({
      id: record!.id,
      type: 'limit.100',
      at: now,
      tenantId: 'acme',
      limitId: 'rpm',
      message: 'tenant acme reached 100% of limit "rpm"',
      details: { limit: 60, remaining: 0 },
    });
    expect(body.text).toContain('limit.100');

    // 2. The list shows it delivered, with the webhook's path (a token) hidden.
    const [listed] = engine.list();
    expect(listed!.id).toBe(record!.id);
    expect(listed!.deliveries).toEqual([
      expect.objectContaining({
        status: 'delivered',
        attempts: 1,
        httpStatus: 200,
        webhook: `http://127.0.0.1:${receiver.port}/…`,
      }),
    ]);

    // 3. Both the alert and its delivery are in the audit trail, without the webhook's token.
    const raised = audit.of('alert.raise');
    expect(raised).toHaveLength(1);
    expect(raised[0]).toMatchObject({ decision: 'system', reason: 'limit.100', tenantId: 'acme' });
    const delivered = audit.of('alert.deliver');
    expect(delivered).toHaveLength(1);
    expect(delivered[0]).toMatchObject({ decision: 'system', reason: 'ok', tenantId: 'acme' });
    expect(delivered[0]!.details).toMatchObject({ alertId: record!.id, attempts: 1, httpStatus: 200 });
    expect(JSON.stringify(audit.events)).not.toContain('secret-token');
    expect(JSON.stringify(audit.events)).not.toContain(SECRET);
  });

  it('retries after the receiver answers 500 twice, signing every attempt', async () => {
    receiver.statuses = [500, 500];
    engine.notify(limitEvent());
    await engine.idle();

    expect(receiver.received).toHaveLength(3);
    expect(receiver.received.map((r) => r.headers['x-sluice-attempt'])).toEqual(['1', '2', '3']);
    for (const r of receiver.received) {
      expect(r.body).toBe(receiver.received[0]!.body);
      expect(verifyAlertSignature(SECRET, r.body, r.headers['x-sluice-signature'] as string)).toBe(true);
    }
    const [listed] = engine.list();
    expect(listed!.deliveries[0]).toMatchObject({ status: 'delivered', attempts: 3 });
    expect(listed!.deliveries[0]!.error).toBeUndefined();
    // One audit event for the delivery's final outcome, not one per attempt.
    const delivered = audit.of('alert.deliver');
    expect(delivered).toHaveLength(1);
    expect(delivered[0]).toMatchObject({ reason: 'ok', details: expect.objectContaining({ attempts: 3 }) });
  });

  it('gives up after the configured attempts and audits the failure', async () => {
    receiver.statuses = [503, 503, 503, 503, 503];
    engine.notify(limitEvent());
    await engine.idle();

    expect(receiver.received).toHaveLength(3);
    expect(engine.list()[0]!.deliveries[0]).toMatchObject({
      status: 'failed',
      attempts: 3,
      httpStatus: 503,
      error: 'HTTP 503',
    });
    const delivered = audit.of('alert.deliver');
    expect(delivered).toHaveLength(1);
    expect(delivered[0]).toMatchObject({
      reason: 'delivery_failed',
      details: expect.objectContaining({ attempts: 3, error: 'HTTP 503' }),
    });
  });

  it('does not retry a client error such as 400', async () => {
    receiver.statuses = [400];
    engine.notify(limitEvent());
    await engine.idle();
    expect(receiver.received).toHaveLength(1);
    expect(engine.list()[0]!.deliveries[0]).toMatchObject({
      status: 'failed',
      attempts: 1,
      error: 'HTTP 400',
    });
  });

  it('retries a receiver that refuses connections, then fails with the cause', async () => {
    await receiver.stop();
    engine.notify(limitEvent());
    await engine.idle();
    const d = engine.list()[0]!.deliveries[0]!;
    expect(d).toMatchObject({ status: 'failed', attempts: 3, error: 'ECONNREFUSED' });
    expect(audit.of('alert.deliver')[0]!.reason).toBe('delivery_failed');
  });

  it('returns from notify before anything is delivered', async () => {
    const record = engine.notify(limitEvent());
    // Synchronously after notify: nothing sent, the delivery is pending.
    expect(receiver.received).toHaveLength(0);
    expect(record!.deliveries[0]!.status).toBe('pending');
    expect(audit.of('alert.deliver')).toHaveLength(0);
    await engine.idle();
    expect(receiver.received).toHaveLength(1);
  });

  it('is not blocked by a webhook that never answers', async () => {
    let calls = 0;
    const hanging = make({
      timeoutMs: 50,
      fetchImpl: ((_url: string, init: RequestInit) => {
        calls++;
        return new Promise((_resolve, reject) =>
          init.signal!.addEventListener('abort', () => reject(init.signal!.reason)),
        );
      }) as typeof fetch,
      retry: { attempts: 1 },
    });
    for (let i = 0; i < 20; i++) expect(hanging.notify(limitEvent({ tenantId: `t${i}` }))).not.toBeNull();
    expect(calls).toBe(0);
    await hanging.idle();
    // Four at a time by default, each timed out: all 20 ended as failures.
    expect(calls).toBe(20);
    expect(
      hanging
        .list()
        .every((r) => r.deliveries[0]!.status === 'failed' && r.deliveries[0]!.error === 'timeout'),
    ).toBe(true);
    await hanging.close();
  });

  it('deduplicates the same type, tenant and limit inside the window', async () => {
    const first = engine.notify(limitEvent());
    expect(engine.notify(limitEvent())).toBeNull();
    expect(engine.notify(limitEvent({ message: 'different words, same alert' }))).toBeNull();
    // Another tenant, another limit or another type is another alert.
    expect(engine.notify(limitEvent({ tenantId: 'globex' }))).not.toBeNull();
    expect(engine.notify(limitEvent({ limitId: 'tpd' }))).not.toBeNull();
    expect(engine.notify(limitEvent({ type: 'limit.80' }))).not.toBeNull();
    await engine.idle();
    expect(receiver.received).toHaveLength(4);
    expect(engine.list().find((r) => r.id === first!.id)!.repeats).toBe(2);

    // The window (5 minutes by default) passes: the alert can fire again.
    now += 299_999;
    expect(engine.notify(limitEvent())).toBeNull();
    now += 1;
    expect(engine.notify(limitEvent())).not.toBeNull();
    // An alert's own window overrides the default.
    expect(engine.notify(limitEvent({ tenantId: 'initech', dedupeMs: 10 }))).not.toBeNull();
    now += 10;
    expect(engine.notify(limitEvent({ tenantId: 'initech', dedupeMs: 10 }))).not.toBeNull();
    await engine.idle();
  });

  it('delivers only to webhooks subscribed to the type, unsigned when no secret is set', async () => {
    hooks = [
      { webhook: receiver.url('/limits'), secret: SECRET, on: ['limit.100'] },
      { webhook: receiver.url('/ops'), on: ['degraded', 'audit.overflow'] },
    ];
    engine.notify(limitEvent());
    engine.notify({ type: 'degraded', subject: 'redis', message: 'redis unreachable, local limits in use' });
    engine.notify({ type: 'quarantine', tenantId: 'acme', message: 'images.generate quarantined' });
    await engine.idle();

    const byPath = Object.fromEntries(receiver.received.map((r) => [r.url, r]));
    expect(Object.keys(byPath).sort()).toEqual(['/limits', '/ops']);
    expect(JSON.parse(byPath['/limits']!.body).type).toBe('limit.100');
    expect(JSON.parse(byPath['/ops']!.body)).toMatchObject({ type: 'degraded', subject: 'redis' });
    expect(byPath['/ops']!.headers['x-sluice-signature']).toBeUndefined();
    // The quarantine alert had no subscriber: still listed and audited, never sent.
    const q = engine.list({ type: 'quarantine' });
    expect(q).toHaveLength(1);
    expect(q[0]!.deliveries).toEqual([]);
    expect(audit.of('alert.raise').map((e) => e.reason)).toEqual(['limit.100', 'degraded', 'quarantine']);
  });

  it('keeps the last N alerts, newest first, filterable by tenant', async () => {
    hooks = [];
    const small = make({ keep: 3 });
    for (let i = 0; i < 5; i++) small.notify(limitEvent({ tenantId: `t${i}` }));
    expect(small.list().map((r) => r.tenantId)).toEqual(['t4', 't3', 't2']);
    expect(small.list({ tenantId: 't3' }).map((r) => r.tenantId)).toEqual(['t3']);
    expect(small.list({ limit: 1 })).toHaveLength(1);
    await small.close();
  });

  it('never throws into the caller when the config source fails', () => {
    const broken = make({
      config: () => {
        throw new Error('bad config');
      },
    });
    expect(broken.notify(limitEvent())).toBeNull();
  });

  it('close fails deliveries waiting to retry as shutdown, audits them and stops', async () => {
    receiver.statuses = [500];
    const slow = make({ retry: { attempts: 5, baseMs: 60_000, maxMs: 60_000 } });
    slow.notify(limitEvent());
    // Wait until the first attempt got its 500: the delivery now waits a minute for its retry.
    while (slow.list()[0]!.deliveries[0]!.httpStatus !== 500) await new Promise((r) => setTimeout(r, 1));
    await slow.close();
    expect(slow.list()[0]!.deliveries[0]).toMatchObject({ status: 'failed', attempts: 1, error: 'shutdown' });
    expect(audit.of('alert.deliver')).toHaveLength(1);
    expect(slow.notify(limitEvent({ tenantId: 'later' }))).toBeNull();
    expect(receiver.received).toHaveLength(1);
  });
});

describe('registerAlertsRoute', () => {
  it('lists alerts for an authenticated admin, filters by type, refuses others', async () => {
    const engine = new AlertEngine({
      config: () => [],
      clock: { now: () => 1000 },
      audit: new MemoryAudit(),
      logger,
    });
    engine.notify(limitEvent());
    engine.notify({ type: 'audit.overflow', message: '12 audit events did not fit the queue' });
    const app = Fastify();
    app.addHook('onRequest', async (request) => {
      if (request.headers.authorization === 'Bearer ok') {
        request.admin = { id: 'u1', name: 'aud', role: 'auditor', tokenHash: 'h', createdAt: 0 };
      }
    });
    registerAlertsRoute(app, engine);
    const auth = { authorization: 'Bearer ok' };

    const all = await app.inject({ method: 'GET', url: '/admin/v1/alerts', headers: auth });
    expect(all.statusCode).toBe(200);
    expect(all.json().data.map((a: { type: string }) => a.type)).toEqual(['audit.overflow', 'limit.100']);
    const filtered = await app.inject({
      method: 'GET',
      url: '/admin/v1/alerts?type=limit.100&limit=5',
      headers: auth,
    });
    expect(filtered.json().data).toHaveLength(1);
    expect(filtered.json().data[0]).toMatchObject({ type: 'limit.100', tenantId: 'acme', limitId: 'rpm' });
    const bad = await app.inject({ method: 'GET', url: '/admin/v1/alerts?type=nope', headers: auth });
    expect(bad.statusCode).toBe(400);
    const anon = await app.inject({ method: 'GET', url: '/admin/v1/alerts' });
    expect(anon.statusCode).toBe(401);
    await app.close();
    await engine.close();
  });
});
