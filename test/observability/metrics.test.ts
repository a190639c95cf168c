import Fastify from 'fastify';
import { describe, expect, it } from 'vitest';
import { registerMetricsRoute } from '../../src/admin/observability-routes.js';
import type { Outcome } from '../../src/core/outcome.js';
import { createMetrics } from '../../src/observability/metrics.js';

const allowed = (over: Partial<Outcome> = {}): Outcome => ({
  action: 'chat.create',
  decision: 'allowed',
  reason: 'ok',
  tenantId: 'acme',
  model: 'gpt-4o',
  status: 200,
  usage: { inputTokens: 100, outputTokens: 20, images: 0 },
  usd: 0.25,
  upstream: 'openai',
  upstreamMs: 300,
  ...over,
});

/** The value of one sample line in a Prometheus text exposition, or undefined when absent. */
function sample(text: string, series: string): number | undefined {
  for (const line of text.split('\n')) {
    if (line.startsWith(`${series} `)) return Number(line.slice(series.length + 1));
  }
  return undefined;
}

describe('createMetrics', () => {
  it('counts decisions, tokens, spend, images and upstream latency from outcomes', async () => {
    const m = createMetrics({ defaultMetrics: false });
    m.observe(allowed());
    m.observe(allowed({ usage: { inputTokens: 5, outputTokens: 7, images: 0 }, usd: 0.5, upstreamMs: 2000 }));
    m.observe(
      allowed({
        action: 'images.generate',
        model: 'dall-e-3',
        usage: { inputTokens: 0, outputTokens: 0, images: 2 },
        usd: 0.08,
      }),
    );
    m.observe({
      action: 'chat.create',
      decision: 'throttled',
      reason: 'SLUICE_RATE_LIMITED',
      tenantId: 'acme',
      model: 'gpt-4o',
      status: 429,
    });
    const t = await m.text();

    expect(
      sample(t, 'sluice_decisions_total{policy="none",decision="allowed",reason="ok",action="chat.create"}'),
    ).toBe(2);
    expect(
      sample(
        t,
        'sluice_decisions_total{policy="none",decision="allowed",reason="ok",action="images.generate"}',
      ),
    ).toBe(1);
    expect(
      sample(
        t,
        'sluice_decisions_total{policy="none",decision="throttled",reason="SLUICE_RATE_LIMITED",action="chat.create"}',
      ),
    ).toBe(1);
    expect(sample(t, 'sluice_tokens_total{tenant="acme",model="gpt-4o",direction="input"}')).toBe(105);
    expect(sample(t, 'sluice_tokens_total{tenant="acme",model="gpt-4o",direction="output"}')).toBe(27);
    expect(sample(t, 'sluice_spend_usd_total{tenant="acme",model="gpt-4o"}')).toBeCloseTo(0.75, 10);
    expect(sample(t, 'sluice_images_total{tenant="acme",model="dall-e-3"}')).toBe(2);
    // Zero amounts create no series.
    expect(t).not.toContain('sluice_tokens_total{tenant="acme",model="dall-e-3"');
    expect(t).not.toContain('sluice_images_total{tenant="acme",model="gpt-4o"}');
    // Histogram: 300 ms and 300 ms fall in le=0.5; 2 s only from le=2.5 on.
    expect(sample(t, 'sluice_upstream_seconds_bucket{policy="none",upstream="openai",le="0.25"}')).toBe(0);
    expect(sample(t, 'sluice_upstream_seconds_bucket{policy="none",upstream="openai",le="0.5"}')).toBe(2);
    expect(sample(t, 'sluice_upstream_seconds_bucket{policy="none",upstream="openai",le="1"}')).toBe(2);
    expect(sample(t, 'sluice_upstream_seconds_bucket{policy="none",upstream="openai",le="2.5"}')).toBe(3);
    expect(sample(t, 'sluice_upstream_seconds_bucket{policy="none",upstream="openai",le="+Inf"}')).toBe(3);
    expect(sample(t, 'sluice_upstream_seconds_count{policy="none",upstream="openai"}')).toBe(3);
    expect(sample(t, 'sluice_upstream_seconds_sum{policy="none",upstream="openai"}')).toBeCloseTo(2.6, 10);
    expect(t).toContain('# TYPE sluice_upstream_seconds histogram');
    expect(t).toContain('# TYPE sluice_decisions_total counter');
  });

  it('derives upstream error kinds from failed calls and counts explicit upstream errors', async () => {
    const m = createMetrics({ defaultMetrics: false });
    const failed = (reason: string, status: number): Outcome => ({
      action: 'chat.create',
      decision: 'error',
      reason,
      tenantId: 'acme',
      model: 'gpt-4o',
      status,
      upstream: 'openai',
    });
    m.observe(failed('SLUICE_UPSTREAM_TIMEOUT', 504));
    m.observe(failed('SLUICE_UPSTREAM_TIMEOUT', 504));
    m.observe(failed('upstream_503', 503));
    // A refusal before any upstream call is not an upstream error.
    m.observe({ ...failed('SLUICE_INTERNAL', 500), upstream: undefined });
    m.upstreamError('anthropic', 'reset');
    const t = await m.text();
    expect(sample(t, 'sluice_upstream_errors_total{upstream="openai",kind="timeout"}')).toBe(2);
    expect(sample(t, 'sluice_upstream_errors_total{upstream="openai",kind="http_503"}')).toBe(1);
    expect(sample(t, 'sluice_upstream_errors_total{upstream="anthropic",kind="reset"}')).toBe(1);
    expect(t.match(/^sluice_upstream_errors_total\{/gm)).toHaveLength(3);
  });

  it('records stage timings from observeStage and from an outcome stageMs', async () => {
    const m = createMetrics({ defaultMetrics: false });
    m.observeStage('limit', 0.00003);
    m.observe(allowed({ stageMs: { limit: 0.2, auth: 0.004 } }));
    const t = await m.text();
    expect(sample(t, 'sluice_stage_seconds_count{policy="none",stage="limit"}')).toBe(2);
    expect(sample(t, 'sluice_stage_seconds_bucket{policy="none",stage="limit",le="0.00005"}')).toBe(1);
    expect(sample(t, 'sluice_stage_seconds_bucket{policy="none",stage="limit",le="0.00025"}')).toBe(2);
    expect(sample(t, 'sluice_stage_seconds_bucket{policy="none",stage="auth",le="0.00001"}')).toBe(1);
  });

  it('reports gauges: limit utilisation, degraded components, audit queue and overflow', async () => {
    const m = createMetrics({ defaultMetrics: false });
    let t = await m.text();
    // Present from the start so dashboards see zeros.
    expect(sample(t, 'sluice_audit_queue_depth')).toBe(0);
    expect(sample(t, 'sluice_audit_overflow_total')).toBe(0);

    m.setLimitUtilisation('acme', 'rpm', 0.8);
    m.setLimitUtilisation('acme', 'rpm', 0.85);
    m.setDegraded('redis', true);
    m.setDegraded('audit', true);
    m.setDegraded('audit', false);
    m.setAuditQueue(12, 3);
    m.setAuditQueue(4, 5);
    t = await m.text();
    expect(sample(t, 'sluice_limit_utilisation{tenant="acme",limit="rpm"}')).toBe(0.85);
    expect(sample(t, 'sluice_degraded{component="redis"}')).toBe(1);
    expect(sample(t, 'sluice_degraded{component="audit"}')).toBe(0);
    expect(sample(t, 'sluice_audit_queue_depth')).toBe(4);
    expect(sample(t, 'sluice_audit_overflow_total')).toBe(5);
    // A new sink starts counting from zero again: the counter keeps rising.
    m.setAuditQueue(0, 2);
    expect(sample(await m.text(), 'sluice_audit_overflow_total')).toBe(7);
  });

  it('reads audit stats at scrape time when given a source', async () => {
    let stats = { queued: 9, overflowed: 1 };
    const m = createMetrics({ defaultMetrics: false, auditStats: () => stats });
    let t = await m.text();
    expect(sample(t, 'sluice_audit_queue_depth')).toBe(9);
    expect(sample(t, 'sluice_audit_overflow_total')).toBe(1);
    stats = { queued: 0, overflowed: 4 };
    t = await m.text();
    expect(sample(t, 'sluice_audit_queue_depth')).toBe(0);
    expect(sample(t, 'sluice_audit_overflow_total')).toBe(4);
  });

  it('caps distinct tenant and model label values, folding the rest into other', async () => {
    const m = createMetrics({ defaultMetrics: false, maxTenants: 3, maxModels: 2 });
    for (let i = 0; i < 50; i++) {
      m.observe(
        allowed({
          tenantId: `t${i}`,
          model: `m${i % 5}`,
          usage: { inputTokens: 1, outputTokens: 0, images: 0 },
          usd: 0,
        }),
      );
    }
    const t = await m.text();
    const lines = t.split('\n').filter((l) => l.startsWith('sluice_tokens_total{'));
    const tenants = new Set(lines.map((l) => /tenant="([^"]*)"/.exec(l)![1]));
    const models = new Set(lines.map((l) => /model="([^"]*)"/.exec(l)![1]));
    expect(tenants).toEqual(new Set(['t0', 't1', 't2', 'other']));
    expect(models).toEqual(new Set(['m0', 'm1', 'other']));
    // Nothing is lost: every token is counted somewhere.
    expect(lines.reduce((n, l) => n + Number(l.split(' ').pop()), 0)).toBe(50);
  });

  it('labels every decision series with the policy version that decided', async () => {
    const m = createMetrics({ defaultMetrics: false });
    m.observe(allowed({ policyVersion: 3, upstream: 'openai', upstreamMs: 100, stageMs: { limit: 0.1 } }));
    m.observe(allowed({ policyVersion: 4, upstream: 'openai', upstreamMs: 100, stageMs: { limit: 0.1 } }));
    m.observe(allowed({ policyVersion: 4, decision: 'error', reason: 'upstream_500', status: 500 }));
    const t = await m.text();
    expect(
      sample(t, 'sluice_decisions_total{policy="3",decision="allowed",reason="ok",action="chat.create"}'),
    ).toBe(1);
    expect(
      sample(t, 'sluice_decisions_total{policy="4",decision="allowed",reason="ok",action="chat.create"}'),
    ).toBe(1);
    expect(
      sample(
        t,
        'sluice_decisions_total{policy="4",decision="error",reason="upstream_500",action="chat.create"}',
      ),
    ).toBe(1);
    expect(sample(t, 'sluice_stage_seconds_count{policy="3",stage="limit"}')).toBe(1);
    expect(sample(t, 'sluice_upstream_seconds_count{policy="4",upstream="openai"}')).toBe(2);
  });

  it('caps every other label too (reasons, actions) and cuts long values', async () => {
    const m = createMetrics({ defaultMetrics: false, maxOtherValues: 4 });
    for (let i = 0; i < 20; i++)
      m.observe(allowed({ reason: `r${i}`, action: `tasks.t${i}`, usage: undefined, usd: 0 }));
    m.observe(allowed({ tenantId: 'x'.repeat(500) }));
    const t = await m.text();
    expect(t.match(/^sluice_decisions_total\{/gm)!.length).toBeLessThanOrEqual(5 * 5);
    expect(
      sample(t, 'sluice_decisions_total{policy="none",decision="allowed",reason="other",action="other"}'),
    ).toBe(17);
    // r0..r3 and tasks.t0..t3 took the four places; the last call's `ok` / `chat.create` came too late.
    expect(
      sample(t, 'sluice_decisions_total{policy="none",decision="allowed",reason="r3",action="tasks.t3"}'),
    ).toBe(1);
    expect(t).toContain(`tenant="${'x'.repeat(128)}"`);
    expect(t).not.toContain('x'.repeat(129));
  });

  it('escapes label values and names a missing tenant none', async () => {
    const m = createMetrics({ defaultMetrics: false });
    m.observe(allowed({ tenantId: null, model: 'we"ird\nmodel' }));
    const t = await m.text();
    expect(t).toContain('sluice_tokens_total{tenant="none",model="we\\"ird\\nmodel",direction="input"} 100');
  });

  it('includes the default process metrics unless turned off', async () => {
    expect(await createMetrics().text()).toContain('process_cpu_user_seconds_total');
    expect(await createMetrics({ defaultMetrics: false }).text()).not.toContain(
      'process_cpu_user_seconds_total',
    );
  });
});

describe('registerMetricsRoute', () => {
  it('serves the exposition to an authenticated admin and refuses an unauthenticated request', async () => {
    const m = createMetrics({ defaultMetrics: false });
    m.observe(allowed());
    const app = Fastify();
    // Stands in for the admin app's authentication hook.
    app.addHook('onRequest', async (request) => {
      if (request.headers.authorization === 'Bearer ok') {
        request.admin = { id: 'u1', name: 'aud', role: 'auditor', tokenHash: 'h', createdAt: 0 };
      }
    });
    registerMetricsRoute(app, m);
    const res = await app.inject({ method: 'GET', url: '/metrics', headers: { authorization: 'Bearer ok' } });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toContain('text/plain; version=0.0.4');
    expect(
      sample(
        res.body,
        'sluice_decisions_total{policy="none",decision="allowed",reason="ok",action="chat.create"}',
      ),
    ).toBe(1);
    const anon = await app.inject({ method: 'GET', url: '/metrics' });
    expect(anon.statusCode).toBe(401);
    expect(anon.body).not.toContain('sluice_decisions_total');
    await app.close();
  });
});
