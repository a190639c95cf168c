import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
// @ts-expect-error: a plain ES module without types (examples/scenarios/generate.mjs)
import { generate } from '../../examples/scenarios/generate.mjs';
import { parseTrace, runSimulation, scanTrace, TraceError } from '../../src/abuse/simulator.js';
import { parseConfig } from '../../src/config/load.js';
import { DEFAULT_SOURCE } from '../../src/config/resolve.js';

const run = promisify(execFile);
const dir = mkdtempSync(join(tmpdir(), 'sluice-simtest-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const defaultSource = () => ({ file: null, source: DEFAULT_SOURCE, config: parseConfig(DEFAULT_SOURCE) });

describe('trace parsing', () => {
  it('names the line and field of a malformed trace', () => {
    const key = '{"type":"key","name":"a","tenant":"t","tier":"default"}';
    const cases: [string, RegExp][] = [
      [
        `${key}\n{"type":"request","t":"x","key":"a","ip":"10.0.0.1","path":"/v1/chat/completions"}`,
        /line 2: field "t"/,
      ],
      [`${key}\n{"type":"request","t":1,"key":"a","path":"/v1/chat/completions"}`, /line 2: field "ip"/],
      [
        `${key}\n{"type":"request","t":2,"key":"a","ip":"10.0.0.1","path":"/x"}\n{"type":"request","t":1,"key":"a","ip":"10.0.0.1","path":"/x"}`,
        /line 3: field "t" goes back/,
      ],
      [
        `${key}\n{"type":"request","t":1,"key":"b","ip":"10.0.0.1","path":"/x"}`,
        /line 2: field "key" names undeclared/,
      ],
      [`${key}\n{"type":"nope"}`, /line 2: field "type"/],
      [`${key}\nnot json`, /line 2: not valid JSON/],
    ];
    for (const [text, re] of cases) {
      expect(() => parseTrace(text)).toThrow(TraceError);
      expect(() => parseTrace(text)).toThrow(re);
    }
  });
});

describe('sluice simulate', () => {
  it('overlaps requests in virtual time: a concurrency limit of one refuses the second call in flight', async () => {
    const source = {
      file: null,
      source: '',
      config: parseConfig(`
upstreams: [{ name: local, kind: mock }]
models: [{ match: '*', upstream: local }]
tiers:
  default:
    scopes: ['*']
    models: ['*']
    limits:
      - { id: inflight, per: key, concurrent: 1 }
`),
    };
    const body = { model: 'demo-model', messages: [{ role: 'user', content: 'hi' }] };
    const req = (t: number) =>
      JSON.stringify({
        type: 'request',
        t,
        key: 'a',
        ip: '10.0.0.1',
        path: '/v1/chat/completions',
        body,
        upstream: { latencyMs: 1000, outputTokens: 7 },
      });
    const trace = parseTrace(
      ['{"type":"key","name":"a","tenant":"t","tier":"default"}', req(0), req(0.5), req(1.5)].join('\n'),
    );
    const r = await runSimulation({ trace, traceName: 'overlap', source, seed: 1 });
    const statuses = r.decisions.map((l) => JSON.parse(l).status);
    // 1. t=0 holds the slot until t=1; 2. t=0.5 overlaps it and is refused; 3. t=1.5 finds it free.
    expect(statuses).toEqual([200, 429, 200]);
    expect(JSON.parse(r.decisions[1]!).code).toBe('SLUICE_CONCURRENCY_LIMITED');
    expect(r.report.virtualSeconds).toBe(1.5);
  }, 60_000);

  it('is deterministic: the same trace gives byte-identical report and decisions, with the campaign quarantined', async () => {
    const { text } = generate('template-campaign', 5, { duration: 240 });
    const trace = parseTrace(text);
    const a = await runSimulation({ trace, traceName: 'c.jsonl', source: defaultSource(), seed: 1 });
    // The second run reads the trace as the CLI does, each request line parsed when it is reached.
    const lazy = scanTrace(Buffer.from(text));
    expect(lazy.requests.length).toBe(trace.requests.length);
    const b = await runSimulation({ trace: lazy, traceName: 'c.jsonl', source: defaultSource(), seed: 1 });
    expect(JSON.stringify(b.report)).toBe(JSON.stringify(a.report));
    expect(b.decisions.join('\n')).toBe(a.decisions.join('\n'));
    expect(
      a.report.actions.some((x) => x.action === 'quarantine' && x.detector === 'template-campaign'),
    ).toBe(true);
    expect(a.report.byCode.SLUICE_QUARANTINED).toBeGreaterThan(0);
  }, 300_000);

  it('exits 0 with report and decisions files, 1 on a malformed trace, 2 on a bad config', async () => {
    const good = join(dir, 'good.jsonl');
    writeFileSync(
      good,
      '{"type":"key","name":"a","tenant":"t","tier":"default"}\n{"type":"request","t":0,"key":"a","ip":"10.0.0.1","path":"/v1/chat/completions","body":{"model":"demo-model","messages":[{"role":"user","content":"hi"}]}}\n{"type":"request","t":0.2,"authorization":"Bearer sk-sluice-AAAAAAAAAAAA-wrong","ip":"10.0.0.2","path":"/v1/messages","body":{"model":"demo-model","max_tokens":10,"messages":[{"role":"user","content":"hi"}]}}\n',
    );
    const report = join(dir, 'report.json');
    const decisions = join(dir, 'decisions.jsonl');
    const ok = await run('node', [
      'bin/sluice.js',
      'simulate',
      good,
      '--report',
      report,
      '--decisions',
      decisions,
    ]);
    expect(ok.stderr).toMatch(/sluice simulate: 2 requests/);
    const rep = JSON.parse(readFileSync(report, 'utf8'));
    expect(rep).toMatchObject({
      requests: 2,
      byStatus: { '200': 1, '401': 1 },
      byCode: { SLUICE_INVALID_KEY: 1 },
    });
    expect(
      readFileSync(decisions, 'utf8')
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l).line),
    ).toEqual([2, 3]);

    const bad = join(dir, 'bad.jsonl');
    writeFileSync(bad, '{"type":"request","t":0,"ip":"10.0.0.1","path":"/v1/models"}\n');
    const e1 = await run('node', ['bin/sluice.js', 'simulate', bad]).catch((e) => e);
    expect(e1.code).toBe(1);
    expect(e1.stderr).toMatch(/line 1: field "key"/);

    // A bad request line the run reaches after others have run: still exit 1 naming it, no report.
    const late = join(dir, 'late.jsonl');
    const lateReport = join(dir, 'late-report.json');
    writeFileSync(
      late,
      `${readFileSync(good, 'utf8')}{"type":"request","t":0.1,"key":"a","ip":"10.0.0.1","path":"/v1/models"}\n`,
    );
    const e3 = await run('node', ['bin/sluice.js', 'simulate', late, '--report', lateReport]).catch((e) => e);
    expect(e3.code).toBe(1);
    expect(e3.stderr).toContain(
      `sluice simulate: ${late}: line 4: field "t" goes back in time (0.1 after 0.2)`,
    );
    expect(existsSync(lateReport)).toBe(false);

    const cfg = join(dir, 'bad.yaml');
    writeFileSync(cfg, 'upstreams: 7\n');
    const e2 = await run('node', ['bin/sluice.js', 'simulate', good, '--config', cfg]).catch((e) => e);
    expect(e2.code).toBe(2);
  }, 120_000);

  it('a trace over the size bound runs in a child (larger young generation): same files and exit codes', async () => {
    const trace = join(dir, 'child.jsonl');
    writeFileSync(trace, generate('template-campaign', 11, { duration: 240 }).text);
    // Every Node process of the command (NODE_OPTIONS reaches the child too) logs its flags here.
    const preload = join(dir, 'log-flags.cjs');
    writeFileSync(
      preload,
      "require('node:fs').appendFileSync(process.env.FLAGS_LOG, JSON.stringify(process.execArgv) + '\\n');\n",
    );
    const files = async (env: Record<string, string>, name: string) => {
      const report = join(dir, `${name}-report.json`);
      const decisions = join(dir, `${name}-decisions.jsonl`);
      const log = join(dir, `${name}-flags.log`);
      await run('node', ['bin/sluice.js', 'simulate', trace, '--report', report, '--decisions', decisions], {
        env: { ...process.env, ...env, NODE_OPTIONS: `--require ${preload}`, FLAGS_LOG: log },
      });
      const flags = readFileSync(log, 'utf8')
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as string[]);
      return { files: [readFileSync(report, 'utf8'), readFileSync(decisions, 'utf8')], flags };
    };
    const here = await files({ SLUICE_SIMULATE_CHILD_BYTES: String(1 << 30) }, 'here');
    const child = await files({ SLUICE_SIMULATE_CHILD_BYTES: '0' }, 'child');
    // One process under the bound; over it, a second one with the larger young generation.
    expect(here.flags).toHaveLength(1);
    expect(child.flags).toHaveLength(2);
    expect(child.flags[1]).toContain('--max-semi-space-size=32');
    expect(child.files).toEqual(here.files);
    expect(JSON.parse(here.files[0]!).requests).toBeGreaterThan(100);
    const bad = join(dir, 'child-bad.jsonl');
    writeFileSync(bad, '{"type":"request","t":0,"ip":"10.0.0.1","path":"/v1/models"}\n');
    const e1 = await run('node', ['bin/sluice.js', 'simulate', bad], {
      env: { ...process.env, SLUICE_SIMULATE_CHILD_BYTES: '0' },
    }).catch((e) => e);
    expect(e1.code).toBe(1);
    expect(e1.stderr).toMatch(/line 1: field "key"/);
  }, 120_000);
});
