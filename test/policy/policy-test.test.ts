/**
 * `sluice policy test`: cases evaluated with the real compiled policy (access policy, routes, tier
 * caps, limit plan, memory limit store on a virtual clock). Allow, deny and limited cases pass; a
 * case that the policy contradicts fails with a readable diff; the CLI exits 1 and prints JSON.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { policyEvaluator, runPolicyTests, runtimeForPolicy } from '../../src/cli/policy.js';
import { formatResults, parseCases, runCase } from '../../src/core/policy-test/runner.js';

const POLICY = `
upstreams:
  - { name: mock, kind: mock }
models:
  - { match: "*", upstream: mock }
tiers:
  free:
    scopes: ["chat.create"]
    models: ["small-*"]
    limits:
      - { id: rpm, per: key, requests: 3, window: 1m }
  pro:
    limits:
      - { id: tpm, per: tenant, tokens: 1000, window: 1m }
    rules:
      deny: ["198.51.100.0/24"]
deprecations:
  - { match: { model: old-model }, announced: 2025-01-01, sunset: 2025-06-01, replacement: small-2 }
`;

const CASES = `
cases:
  - name: free may chat with a small model
    principal: { tier: free }
    request: { model: small-1 }
    expect: allow
  - name: free may not use big models
    principal: { tier: free }
    request: { model: big-1 }
    expect: { deny: SLUICE_MODEL_DENIED }
  - name: free may not embed
    principal: { tier: free }
    request: { path: /v1/embeddings, model: small-1 }
    expect: { deny: SLUICE_SCOPE_DENIED }
  - name: pro is refused from a denied range
    principal: { tier: pro, ip: 198.51.100.9 }
    request: { model: big-1 }
    expect: { deny: SLUICE_IP_DENIED }
  - name: free is limited after 3 requests at once
    principal: { tier: free }
    request: { model: small-1 }
    expect: { limited: { after: 3 } }
  - name: one a second, the 4th request (at 3s) is still limited
    principal: { tier: free }
    request: { model: small-1 }
    expect: { limited: { after: 3, every: 1s } }
  - name: pro tokens per tenant bind after 4 requests of 200+50
    principal: { tier: pro }
    request: { model: big-1, tokens: 200, maxTokens: 50 }
    expect: { limited: { after: 4 } }
  - name: a retired model is gone after its sunset
    principal: { tier: pro, time: 2025-07-01T00:00:00Z }
    request: { model: old-model }
    expect: { deny: SLUICE_SUNSET }
`;

const dir = mkdtempSync(join(tmpdir(), 'sluice-policy-test-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const policyFile = join(dir, 'policy.yaml');
writeFileSync(policyFile, POLICY);

describe('policy test runner', () => {
  it('allow, deny and limited cases pass against the real compiled policy', async () => {
    const { rt } = await runtimeForPolicy(policyFile);
    const cases = parseCases(parse(CASES), 'cases.yaml');
    const results = [];
    for (const c of cases) results.push(await runCase(c, policyEvaluator(rt)));
    expect(results.filter((r) => !r.passed)).toEqual([]);
    expect(results).toHaveLength(8);
  });

  it('a case the policy contradicts fails, with the expected and actual decision', async () => {
    const { rt } = await runtimeForPolicy(policyFile);
    const [wrongAllow, wrongLimit] = parseCases(
      parse(`
cases:
  - name: free may use big models (wrong)
    principal: { tier: free }
    request: { model: big-1 }
    expect: allow
  - name: free gets 5 at once (wrong)
    principal: { tier: free }
    request: { model: small-1 }
    expect: { limited: { after: 5 } }
`),
      'wrong.yaml',
    );
    const a = await runCase(wrongAllow!, policyEvaluator(rt));
    expect(a).toMatchObject({ passed: false, expected: 'allow' });
    expect(a.actual).toMatch(/^deny SLUICE_MODEL_DENIED \(403\)/);
    const l = await runCase(wrongLimit!, policyEvaluator(rt));
    expect(l.passed).toBe(false);
    expect(l.actual).toMatch(
      /^request #4 was refused: deny SLUICE_RATE_LIMITED \(429\): Rate limit reached for rpm/,
    );
    const text = formatResults([a, l]);
    expect(text).toContain(
      'FAIL  wrong.yaml > free may use big models (wrong)\n      - expected: allow\n      + actual:   deny',
    );
    expect(text).toContain('0 passed, 2 failed, 2 total');
  });

  it('rejects malformed cases with a message naming the case', () => {
    expect(() =>
      parseCases(
        parse('cases:\n  - { name: x, principal: { tier: free }, request: {} , expect: allow }'),
        'f.yaml',
      ),
    ).toThrow('f.yaml: case 1: request.model: expected a string');
    expect(() =>
      parseCases(
        parse('cases:\n  - { name: x, principal: { tier: free }, request: { model: m }, expect: maybe }'),
        'f.yaml',
      ),
    ).toThrow(/expect must be/);
  });

  it('the example policy passes its shipped tests', async () => {
    const results = await runPolicyTests('examples/sluice.yaml', []);
    expect(results.length).toBeGreaterThan(5);
    expect(results.filter((r) => !r.passed)).toEqual([]);
  });

  it('the CLI exits 1 on a failing case and prints JSON with --json', () => {
    const bad = join(dir, 'bad.yaml');
    writeFileSync(
      bad,
      'cases:\n  - { name: wrong, principal: { tier: free }, request: { model: big-1 }, expect: allow }\n',
    );
    const good = join(dir, 'good.yaml');
    writeFileSync(good, CASES);
    const run = (...args: string[]) =>
      spawnSync('node', ['bin/sluice.js', 'policy', 'test', ...args], { encoding: 'utf8' });
    const ok = run(policyFile, good);
    expect(ok.status).toBe(0);
    expect(ok.stdout).toContain('8 passed, 0 failed, 8 total');
    const fail = run(policyFile, good, bad, '--json');
    expect(fail.status).toBe(1);
    const json = JSON.parse(fail.stdout) as { name: string; passed: boolean }[];
    expect(json.filter((r) => !r.passed).map((r) => r.name)).toEqual(['wrong']);
  });

  it('policy apply refuses when a decision test fails; --force applies and audits the override', () => {
    const data = join(dir, 'data');
    const bad = join(dir, 'bad.yaml');
    writeFileSync(
      bad,
      'cases:\n  - { name: wrong, principal: { tier: free }, request: { model: big-1 }, expect: allow }\n',
    );
    const run = (...args: string[]) => spawnSync('node', ['bin/sluice.js', ...args], { encoding: 'utf8' });
    const refused = run('policy', 'apply', policyFile, '--data-dir', data, '--tests', bad);
    expect(refused.status).toBe(1);
    expect(refused.stderr).toContain('FAIL  ');
    expect(refused.stderr).toContain('1 decision test(s) failed; not applied');
    expect(run('policy', 'history', '--data-dir', data, '--json').stdout.trim()).toBe('[]');
    const forced = run('policy', 'apply', policyFile, '--data-dir', data, '--tests', bad, '--force');
    expect(forced.status).toBe(0);
    expect(forced.stdout).toContain('applied');
    expect(JSON.parse(run('policy', 'history', '--data-dir', data, '--json').stdout)).toHaveLength(1);
    const events = run('audit', 'export', '--data-dir', data)
      .stdout.trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { action: string; details: { failedTests?: string[] } });
    const override = events.find((e) => e.action === 'cli.policy.apply_forced');
    expect(override?.details.failedTests).toEqual([`${bad} > wrong`]);
  });
});
