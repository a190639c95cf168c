import { describe, expect, it } from 'vitest';
import { AnomalyDetectors, type Observation } from '../../../src/core/anomaly/detectors.js';

const T0 = Date.UTC(2026, 0, 1);

function obs(i: number, endUser: string | null): Observation {
  return {
    requestId: `r${i}`,
    keyId: 'app',
    tenantId: 'appco',
    ip: '203.0.113.5',
    userAgent: 'openai-node/4.77.0',
    headerNames: ['user-agent', 'content-type'],
    endUser,
    action: 'chat.create',
    endpoint: 'chat',
    model: 'demo-model',
    prompt: `question ${i}`,
    inputTokens: 10,
    outputTokens: 20,
    status: 200,
  };
}

/** Ten minutes at 0.2/s, then three minutes at 3/s; end users from `who` (null: none). Returns volume-spike findings. */
function launch(who: (phase: 'before' | 'after', i: number) => string | null): number {
  const d = new AnomalyDetectors();
  let found = 0;
  let t = T0;
  let i = 0;
  for (; t < T0 + 600_000; t += 5_000, i++)
    found += d.observe(obs(i, who('before', i)), t).filter((f) => f.detector === 'volume-spike').length;
  for (; t < T0 + 780_000; t += 333, i++)
    found += d.observe(obs(i, who('after', i)), t).filter((f) => f.detector === 'volume-spike').length;
  return found;
}

describe('volume spike and product launches', () => {
  it('flags a fifteenfold jump from one client', () => {
    expect(launch(() => null)).toBeGreaterThan(0);
    // One end user sending it all is still one client.
    expect(launch(() => 'the-only-user')).toBeGreaterThan(0);
  });

  it('does not flag a fifteenfold jump carried by hundreds of end users at an ordinary pace (a launch)', () => {
    expect(launch((phase, i) => (phase === 'before' ? `old-${i % 30}` : `new-${(i * 7919) % 300}`))).toBe(0);
  });
});
