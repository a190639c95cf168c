/**
 * The console's policy page in a real browser (Debian's Chromium, headless, via playwright-core)
 * against a real `sluice serve` process (issue 19): traffic of a free and a pro key is recorded, a
 * candidate that keeps the free tier to `gpt-4o*` is replayed from the page and the table names the
 * free key (and only it) as losing access; after the apply, the "Since last apply" panel shows the
 * before/after figures and the rollback command, refuses the rollback without a one-time code
 * (step-up) and rolls back with one.
 * Needs `node scripts/build.mjs` first (npm's pretest runs it).
 */
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { totpCode } from '../../src/auth/totp.js';
import { createKey, ROOT, type SluiceProcess, startSluice, tempDir, writeConfig } from '../e2e/harness.js';
import { launch, lowContrast, unlabelledControls } from './support.js';

const IMAGES =
  process.env.SLUICE_SCREENSHOTS === '1' ? join(ROOT, 'docs', 'images') : tempDir('sluice-shots-');
const policy = (freeModels: string, proRpm = 1000) => `upstreams: [{ name: local, kind: mock }]
trustedProxies: ["127.0.0.1"]
models: [{ match: "*", upstream: local }]
prices:
  demo-model: { input: 0.5, output: 1.5, image: 0 }
tiers:
  default:
    limits:
      - { id: rpm, requests: 1000, window: 1m }
  free:
    models: [${freeModels}]
    limits:
      - { id: rpm, requests: 1000, window: 1m }
  pro:
    limits:
      - { id: rpm, requests: ${proRpm}, window: 1m }
`;
const RUNNING = policy('"demo-*", "gpt-4o*"');
/** Locks the free tier out of every model its keys used. */
const CANDIDATE = policy('"gpt-4o*"');
/** Keeps the pro tier to 5 requests a minute. */
const TIGHT = policy('"demo-*", "gpt-4o*"', 5);

let s: SluiceProcess;
let browser: Browser;
let adminToken: string;
let consolePassword: string;
let free: { id: string; key: string };
let pro: { id: string; key: string };

const chat = (k: string) =>
  fetch(`${s.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${k}`, 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'demo-model', messages: [{ role: 'user', content: 'hello' }] }),
  });
const admin = async (path: string, method = 'GET') =>
  (
    await fetch(`${s.adminUrl}${path}`, { method, headers: { authorization: `Bearer ${adminToken}` } })
  ).json();

beforeAll(async () => {
  if (!existsSync(join(ROOT, 'dist', 'web', 'console', 'index.html')))
    throw new Error('dist/web is missing: run `node scripts/build.mjs` first');
  mkdirSync(IMAGES, { recursive: true });
  const dir = tempDir('sluice-browser-impact-');
  s = await startSluice({ config: writeConfig(dir, RUNNING), dataDir: dir });
  free = await createKey(s, [], 'small-co', 'free');
  pro = await createKey(s, [], 'acme', 'pro');
  adminToken = readFileSync(join(dir, 'admin-token'), 'utf8').trim();
  consolePassword = /password: (\S+)/.exec(readFileSync(join(dir, 'console-password'), 'utf8'))![1]!;
  // the recorded traffic: 3 calls of the free key, 2 of the pro key, all allowed by the running policy
  for (const k of [free.key, free.key, free.key, pro.key, pro.key]) expect((await chat(k)).status).toBe(200);
  browser = await launch();
}, 120_000);

afterAll(async () => {
  await browser?.close();
  await s?.stop();
});

async function policyPage(user = 'admin', password = consolePassword): Promise<Page> {
  const page = await browser.newPage();
  await page.goto(`${s.adminUrl}/console/`);
  await page.getByLabel('Username').fill(user);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('navigation', { name: 'Console sections' }).waitFor();
  await page.goto(`${s.adminUrl}/console/#/policy`);
  await expect.poll(() => page.getByLabel('Policy source (YAML)').inputValue()).toContain('"demo-*"');
  await page.locator('#watch-figures').waitFor();
  return page;
}

const cells = (page: Page, selector: string) =>
  page
    .locator(`${selector} tbody tr`)
    .evaluateAll((trs) =>
      trs.map((tr) => Array.from(tr.querySelectorAll('th, td')).map((c) => (c.textContent ?? '').trim())),
    );

describe('console policy page: impact and watch', () => {
  it('runs impact for a candidate that locks out the free tier and lists the affected key', async () => {
    const page = await policyPage();
    await page.getByLabel('Policy source (YAML)').fill(CANDIDATE);
    await page.getByLabel('Replay the calls of').selectOption('1h');
    await page.getByRole('button', { name: 'Run impact' }).click();
    await page.locator('#impact-result').waitFor();
    await expect
      .poll(() => page.getByRole('status').first().textContent())
      .toMatch(/Replayed 5 recorded call\(s\): 3 newly refused, 0 newly allowed/);
    // the before/after table: one group, the free key's three calls, allow -> deny SLUICE_MODEL_DENIED
    expect(await cells(page, '#impact-changes')).toEqual([
      ['small-co', free.id, 'chat.create', 'demo-model', 'allow', 'deny SLUICE_MODEL_DENIED', '3'],
    ]);
    expect(await cells(page, '#impact-counts')).toEqual([
      ['tenant', 'small-co', '3'],
      ['action', 'chat.create', '3'],
      ['model', 'demo-model', '3'],
      ['rule (code)', 'SLUICE_MODEL_DENIED', '3'],
    ]);
    expect(await page.locator('#impact-keys li').allTextContents()).toEqual([free.id]);
    expect(await page.locator('#impact-missing li').count()).toBeGreaterThan(0);
    expect(await page.locator('#impact-missing').textContent()).toContain('prompt text');
    // the page shows what the API answers for the same source and period
    const api = (await (
      await fetch(`${s.adminUrl}/admin/v1/policy/impact`, {
        method: 'POST',
        headers: { authorization: `Bearer ${adminToken}`, 'content-type': 'application/json' },
        body: JSON.stringify({ source: CANDIDATE, since: '1h' }),
      })
    ).json()) as { keysLosingAccess: string[]; newlyRefused: unknown[] };
    expect(api.keysLosingAccess).toEqual([free.id]);
    expect(api.newlyRefused).toHaveLength(3);
    expect(await unlabelledControls(page)).toEqual([]);
    expect(await lowContrast(page)).toEqual([]);
    await page.screenshot({ path: join(IMAGES, 'console-policy-impact.png'), fullPage: true });
    await page.close();
  });

  it('after an apply, shows the before/after watch with its regression flag and rolls back from it with step-up', async () => {
    // 20 more calls under the running policy: 25 before the apply in all
    for (let i = 0; i < 20; i++) expect((await chat(pro.key)).status).toBe(200);
    const before = (await admin('/admin/v1/policy')) as { version: number };
    const page = await policyPage();
    await page.getByLabel('Policy source (YAML)').fill(TIGHT);
    await page.getByRole('button', { name: 'Apply' }).click();
    await page.getByRole('status').filter({ hasText: 'Applied' }).waitFor();
    const applied = (await admin('/admin/v1/policy')) as { version: number };
    expect(applied.version).toBe(before.version + 1);
    // the watch panel follows the running version: the new one, with the previous named for rollback
    const panel = page.locator('#policy-watch');
    await panel.getByText(`Version ${applied.version} applied`).waitFor();
    expect(await page.locator('#watch-rollback').textContent()).toBe(
      `sluice policy rollback ${before.version}`,
    );
    const rows = await cells(page, '#watch-figures');
    expect(rows.map((r) => r[0])).toEqual([
      'Period',
      'Requests',
      'Error rate',
      '429 rate',
      'Added latency',
      'Throughput',
    ]);
    expect(rows[1]).toEqual(['Requests', '25', '0']);
    expect(rows[3]).toEqual(['429 rate', '0.0%', '—']);
    expect(await page.locator('#watch-verdict').textContent()).toBe('not enough traffic');
    // 20 calls under the tightened policy: most get 429; a new period re-reads the watch
    let limited = 0;
    for (let i = 0; i < 20; i++) if ((await chat(pro.key)).status === 429) limited++;
    expect(limited).toBeGreaterThan(1);
    await panel.getByLabel('Compare minutes before and after').selectOption('30');
    await page.locator('#watch-regressions').waitFor();
    expect(await page.locator('#watch-verdict').textContent()).toBe('regressed');
    expect(await page.locator('#watch-regressions').textContent()).toContain(
      `429 rate 0.0% -> ${((limited / 20) * 100).toFixed(1)}%`,
    );
    expect((await cells(page, '#watch-figures'))[3]).toEqual([
      '429 rate',
      '0.0%',
      `${((limited / 20) * 100).toFixed(1)}%`,
    ]);
    await page.screenshot({ path: join(IMAGES, 'console-policy-watch.png'), fullPage: true });
    // no factor, no code: the API asks for step-up and the page says so; nothing is rolled back
    const button = page.getByRole('button', { name: `Restore version ${before.version}` });
    await button.click();
    await panel.getByText('Rolling back needs step-up').waitFor();
    expect(((await admin('/admin/v1/policy')) as { version: number }).version).toBe(applied.version);
    const { secret } = (await admin('/admin/v1/me/totp', 'POST')) as { secret: string };
    await panel.getByLabel('One-time code for this rollback (TOTP)').fill(totpCode(secret, Date.now()));
    await button.click();
    await page.getByRole('status').filter({ hasText: 'Rolled back' }).waitFor();
    const after = (await admin('/admin/v1/policy')) as { version: number; source: string };
    expect(after.version).toBe(applied.version + 1);
    expect(after.source).toContain('requests: 1000');
    expect(after.source).not.toContain('requests: 5,');
    await panel.getByText(`Version ${after.version} applied`).waitFor();
    expect(await unlabelledControls(page)).toEqual([]);
    expect(await lowContrast(page)).toEqual([]);
    await page.close();
  });

  it('an auditor runs impact and reads the watch, with no rollback offered', async () => {
    const post = (path: string, body: unknown, token = adminToken) =>
      fetch(`${s.adminUrl}${path}`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
    const u = (await (await post('/admin/v1/users', { name: 'ida', role: 'auditor' })).json()) as {
      token: string;
    };
    expect((await post('/admin/v1/me/password', { password: 'correct horse battery' }, u.token)).status).toBe(
      204,
    );
    const page = await policyPage('ida', 'correct horse battery');
    expect(await page.locator('#watch-rollback').textContent()).toMatch(/^sluice policy rollback \d+$/);
    expect(await page.getByRole('button', { name: /Restore version/ }).count()).toBe(0);
    expect(await page.getByRole('button', { name: 'Apply' }).count()).toBe(0);
    await page.getByLabel('Policy source (YAML)').fill(CANDIDATE);
    await page.getByRole('button', { name: 'Run impact' }).click();
    await page.locator('#impact-keys li').first().waitFor();
    expect(await page.locator('#impact-keys li').allTextContents()).toEqual([free.id]);
    await page.close();
  });
});
