/** `sluice config check` validates the files a policy names (Cedar, reputation lists), not just the YAML. */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { cli, tempDir, writeConfig } from './harness.js';

describe('sluice config check', () => {
  const dir = tempDir();
  const file = writeConfig(
    dir,
    `upstreams: [{ name: local, kind: mock }]
models: [{ match: "*", upstream: local }]
tiers: { default: { rules: { reputation: [bad] } } }
reputation: { bad: { file: bad.txt } }
policies: { cedar: p.cedar }
`,
  );

  it('accepts a policy whose Cedar file and reputation list load', async () => {
    writeFileSync(join(dir, 'p.cedar'), 'permit (principal, action, resource);\n');
    writeFileSync(join(dir, 'bad.txt'), '203.0.113.0/24\n');
    const r = await cli(['config', 'check', file]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('OK');
  });

  it('refuses a Cedar policy that does not validate against the schema, naming the problem', async () => {
    writeFileSync(join(dir, 'p.cedar'), 'permit (principal, action, resource) when { context.nope == 1 };\n');
    const r = await cli(['config', 'check', file]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/Cedar policies: .*attribute `nope`/);
  });

  it('refuses a missing reputation list', async () => {
    writeFileSync(join(dir, 'p.cedar'), 'permit (principal, action, resource);\n');
    writeFileSync(join(dir, 'bad.txt'), '');
    const { unlinkSync } = await import('node:fs');
    unlinkSync(join(dir, 'bad.txt'));
    const r = await cli(['config', 'check', file]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/bad/);
  });
});
