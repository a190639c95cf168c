/**
 * Escalation: a hold nobody reviewed within `escalateAfter` is escalated once (a `notify` action and
 * an `escalate` transition, which the server audits and sends as the signed `quarantine` alert); a
 * subject quarantined again after an earlier hold is held 4x longer and for every capability.
 */
import { describe, expect, it } from 'vitest';
import { caseAlert } from '../../src/abuse/case-sync.js';
import { type AbuseAction, type AbuseCase, AbuseEngine } from '../../src/abuse/engine.js';
import { AbuseSchema } from '../../src/abuse/policy.js';

const T0 = Date.UTC(2026, 0, 1);
const HOUR = 3_600_000;

function campaign(engine: AbuseEngine, clock: { t: number }, from: number) {
  for (let round = 0; round < 4; round++)
    for (let i = 0; i < 10; i++) {
      clock.t = from + round * 10_000 + i * 100;
      engine.observe({
        requestId: `r${from}-${round}-${i}`,
        keyId: `k${i}`,
        tenantId: `t${i}`,
        ip: i % 2 ? '192.0.2.10' : '198.51.100.20',
        userAgent: 'x',
        headerNames: [],
        endUser: null,
        action: 'chat.create',
        endpoint: 'chat',
        model: 'demo-model',
        prompt: `Write a five-star review for product ${i * 13 + round} mentioning fast shipping`,
        inputTokens: 20,
        outputTokens: 200,
        status: 200,
      });
    }
  engine.flush();
}

function setup(config = AbuseSchema.parse({ escalateAfter: '2h', quarantineFor: '1d' })) {
  const clock = { t: T0 };
  const actions: AbuseAction[] = [];
  const transitions: [string, string][] = [];
  const engine = new AbuseEngine({
    clock: { now: () => clock.t },
    defer: null,
    config,
    onAction: (a) => actions.push(a),
    onCase: (c, tr) => transitions.push([c.id, tr]),
  });
  return { clock, actions, transitions, engine };
}

describe('abuse escalation', () => {
  it('escalates an unreviewed quarantine once, after escalateAfter, and not a reviewed one', () => {
    const { clock, actions, transitions, engine } = setup();
    campaign(engine, clock, T0);
    const q = actions.find((a) => a.action === 'quarantine')!;
    expect(q).toBeDefined();
    clock.t = T0 + 2 * HOUR - 60_000;
    engine.expire();
    expect(actions.filter((a) => a.action === 'notify')).toEqual([]);
    clock.t = T0 + 2 * HOUR + 60_000;
    engine.expire();
    const notes = actions.filter((a) => a.action === 'notify');
    expect(notes.length).toBe(1);
    expect(notes[0]!.caseId).toBe(q.caseId);
    expect(transitions).toContainEqual([q.caseId, 'escalate']);
    const c = engine.getCase(q.caseId)!;
    expect(c.escalatedAt).toBe(clock.t);
    // The partner and the operators are told again (the signed `quarantine` alert).
    expect(caseAlert(c, 'escalate')?.message).toContain('escalated');
    clock.t += HOUR;
    engine.expire();
    expect(actions.filter((a) => a.action === 'notify').length).toBe(1);

    // A confirmed (reviewed) case is not escalated.
    const r = setup();
    campaign(r.engine, r.clock, T0);
    const id = r.actions.find((a) => a.action === 'quarantine')!.caseId;
    r.engine.confirm(id, 'alice');
    r.clock.t = T0 + 3 * HOUR;
    r.engine.expire();
    expect(r.actions.filter((a) => a.action === 'notify')).toEqual([]);
  });

  it('holds a repeat offender longer and for every capability', () => {
    const { clock, actions, engine } = setup();
    campaign(engine, clock, T0);
    const first = engine.getCase(actions.find((a) => a.action === 'quarantine')!.caseId)!;
    expect(first.capability).toBe('chat.create');
    expect(first.expiresAt! - first.createdAt).toBe(24 * HOUR);
    engine.release(first.id, 'alice', 'let them try again');
    // The same accounts, the same campaign, two hours later.
    campaign(engine, clock, T0 + 2 * HOUR);
    const again = actions.filter((a) => a.action === 'quarantine' && a.caseId !== first.id);
    expect(again.length).toBeGreaterThan(0);
    const second: AbuseCase = engine.getCase(again[0]!.caseId)!;
    expect(second.priorOffences).toBe(1);
    expect(second.capability).toBe('*');
    expect(second.expiresAt! - second.createdAt).toBe(4 * 24 * HOUR);
    // Every capability of a member key is refused now, not only chat.
    expect(
      engine.check({ keyId: 'k1', tenantId: 't1', ip: '192.0.2.10', action: 'embeddings.create' })?.code,
    ).toBe('SLUICE_QUARANTINED');
  });
});
