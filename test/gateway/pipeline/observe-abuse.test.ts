import { describe, expect, it } from 'vitest';
import type { Observation } from '../../../src/core/anomaly/detectors.js';
import type { RequestContext } from '../../../src/gateway/pipeline/context.js';
import { observeAbuse } from '../../../src/gateway/pipeline/stages/observe-abuse.js';

/** The fields of a context the stage reads, and an engine that keeps a copy of what it was given. */
function contextWith(upstreamStarted: number): { ctx: RequestContext; seen: Observation[] } {
  const seen: Observation[] = [];
  const ctx = {
    id: 'r1',
    ip: '203.0.113.9',
    endpoint: 'chat',
    action: 'chat.create',
    model: 'demo-model',
    body: { messages: [] },
    principal: { keyId: 'k1', tenantId: 't1' },
    facts: { endUser: 'u-1' },
    request: { headers: { 'user-agent': 'openai-node/4.77.0' }, raw: { rawHeaders: [] } },
    usage: { inputTokens: 3, outputTokens: 5 },
    response: { status: 200 },
    upstreamStarted,
    deps: { abuse: { observe: (o: Observation) => seen.push({ ...o }) } },
  } as unknown as RequestContext;
  return { ctx, seen };
}

describe('observe-abuse stage', () => {
  it('dates the observation by when the upstream call began, and by nothing when none was made', () => {
    const sent = contextWith(1_767_225_600_000);
    observeAbuse(sent.ctx);
    expect(sent.seen[0]?.sentAt).toBe(1_767_225_600_000);
    expect(sent.seen[0]?.endUser).toBe('u-1');
    // A cached or local answer made no upstream call.
    const local = contextWith(0);
    observeAbuse(local.ctx);
    expect(Number.isNaN(local.seen[0]?.sentAt)).toBe(true);
  });
});
