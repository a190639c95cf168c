/**
 * The portal and the console in a real browser (Debian's Chromium, headless, via playwright-core)
 * against a real `sluice serve` process: sign-in, the Limits table matching /sluice/v1/me, a usage
 * chart drawn from 100,000 ledger rows, an exception requested in the portal and approved in the
 * console that lifts a 429 and then ends by itself (an in-process `serve()` on a fake clock: the
 * expiry is reached by moving the clock, not by waiting), rotate-and-show-once, policy apply and
 * rollback, the auditor's read-only console, a quarantine explained in the portal and released from
 * the console's case queue with step-up, deprecation notices, accessibility checks, and screenshots
 * for the docs.
 * Needs `node scripts/build.mjs` first (npm's pretest runs it).
 */
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import pino from 'pino';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { totpCode } from '../../src/auth/totp.js';
import { parseConfig } from '../../src/config/load.js';
import { withDataDir } from '../../src/config/resolve.js';
import { type RunningSluice, serve } from '../../src/main.js';
import { createKey, ROOT, type SluiceProcess, startSluice, tempDir, writeConfig } from '../e2e/harness.js';
import { focusOutline, launch, lowContrast, unlabelledControls } from './support.js';

// Screenshots refresh docs/images only when asked (SLUICE_SCREENSHOTS=1), so a test run leaves the tree clean.
const IMAGES =
  process.env.SLUICE_SCREENSHOTS === '1' ? join(ROOT, 'docs', 'images') : tempDir('sluice-shots-');
const policy = (rpd: number) => `upstreams: [{ name: local, kind: mock }]
trustedProxies: ["127.0.0.1"]
models: [{ match: "*", upstream: local }]
prices:
  demo-model: { input: 0.5, output: 1.5, image: 0 }
  gpt-4o-mini: { input: 0.15, output: 0.6, image: 0 }
tiers:
  default:
    limits:
      - { id: rpd, requests: ${rpd}, window: 1d }
      - { id: tpm, tokens: 100000, window: 1m }
deprecations:
  - match: { model: gpt-4o-mini }
    announced: 2026-11-01
    sunset: 2099-03-31
    replacement: demo-model
    link: https://example.com/notices/gpt-4o-mini
`;

let s: SluiceProcess;
let browser: Browser;
let key: { id: string; key: string };
let adminToken: string;
let consolePassword: string;
const loadTimes: Record<string, number> = {};

const chat = (k = key.key) =>
  fetch(`${s.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${k}`, 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'demo-model', messages: [{ role: 'user', content: 'hello' }] }),
  });
const admin = (path: string, init: { method?: string; body?: unknown; token?: string } = {}) =>
  fetch(`${s.adminUrl}${path}`, {
    method: init.method ?? 'GET',
    headers: {
      authorization: `Bearer ${init.token ?? adminToken}`,
      ...(init.body ? { 'content-type': 'application/json' } : {}),
    },
    body: init.body ? JSON.stringify(init.body) : undefined,
  });

/** 100,000 usage rows over 30 days, three keys, three models, chat and embeddings. */
function seedUsage(dataDir: string, keyId: string): void {
  const db = new Database(join(dataDir, 'sluice.db'));
  db.pragma('busy_timeout = 10000');
  const ins = db.prepare(
    `insert into usage (request_id, at, key_id, tenant_id, project_id, model, action, upstream, input_tokens,
     output_tokens, images, usd, status, latency_ms) values (?, ?, ?, 'acme', null, ?, ?, 'local', ?, ?, 0, ?, 200, 12)`,
  );
  const now = Date.now();
  const keys = [keyId, 'kSeedTwo0001', 'kSeedThree01'];
  const models = ['demo-model', 'gpt-4o-mini', 'demo-embed'];
  db.transaction(() => {
    for (let i = 0; i < 100_000; i++) {
      const model = models[i % 3]!;
      const embed = model === 'demo-embed';
      const input = embed ? 20 + (i % 40) : 200 + (i % 900);
      const output = embed ? 0 : 50 + (i % 300);
      const at = now - 30 * 86_400_000 + Math.floor((i / 100_000) * 30 * 86_400_000);
      ins.run(
        `seed-${i}`,
        at,
        keys[i % 3],
        model,
        embed ? 'embeddings.create' : 'chat.create',
        input,
        output,
        (input + output) * 1e-6,
      );
    }
  })();
  db.close();
}

async function shot(page: Page, name: string): Promise<void> {
  await page.screenshot({ path: join(IMAGES, `${name}.png`), fullPage: true });
}

async function a11y(page: Page): Promise<void> {
  expect(await unlabelledControls(page)).toEqual([]);
  expect(await lowContrast(page)).toEqual([]);
}

beforeAll(async () => {
  if (!existsSync(join(ROOT, 'dist', 'web', 'portal', 'index.html')))
    throw new Error('dist/web is missing: run `node scripts/build.mjs` first');
  mkdirSync(IMAGES, { recursive: true });
  const dir = tempDir('sluice-browser-');
  s = await startSluice({ config: writeConfig(dir, policy(2)), dataDir: dir });
  key = await createKey(s);
  adminToken = readFileSync(join(dir, 'admin-token'), 'utf8').trim();
  consolePassword = /password: (\S+)/.exec(readFileSync(join(dir, 'console-password'), 'utf8'))![1]!;
  seedUsage(dir, key.id);
  browser = await launch();
}, 120_000);

afterAll(async () => {
  await browser?.close();
  await s?.stop();
});

async function portalSignIn(page: Page): Promise<void> {
  await page.goto(`${s.url}/portal/`);
  await page.getByLabel('API key').fill(key.key);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('navigation', { name: 'Portal sections' }).waitFor();
}

async function consoleSignIn(page: Page, user = 'admin', password = consolePassword): Promise<void> {
  await page.goto(`${s.adminUrl}/console/`);
  await page.getByLabel('Username').fill(user);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('navigation', { name: 'Console sections' }).waitFor();
}

describe('developer portal', () => {
  it('signs in with the keyboard; the key is not kept in the page, storage or a readable cookie', async () => {
    const page = await browser.newPage();
    await page.goto(`${s.url}/portal/`);
    await a11y(page);
    await shot(page, 'portal-signin');
    // 1. keyboard only: Tab to the field, type, Tab to the button (visible focus), Enter
    await page.keyboard.press('Tab');
    expect(await page.evaluate(() => (document.activeElement as HTMLInputElement).name)).toBe('apiKey');
    await page.keyboard.type(key.key);
    await page.keyboard.press('Tab');
    const focus = await focusOutline(page);
    expect(focus.tag).toBe('BUTTON');
    expect(focus.style).not.toBe('none');
    expect(focus.width).toBeGreaterThanOrEqual(2);
    await page.keyboard.press('Enter');
    await page.getByRole('navigation', { name: 'Portal sections' }).waitFor();
    // 2. nothing script-readable holds the key
    const stored = await page.evaluate(() => ({
      cookie: document.cookie,
      local: JSON.stringify(localStorage),
      session: JSON.stringify(sessionStorage),
      html: document.documentElement.outerHTML,
    }));
    for (const v of Object.values(stored)) expect(v).not.toContain(key.key);
    const cookies = await page.context().cookies();
    expect(cookies.find((c) => c.name === 'sluice_portal')).toMatchObject({
      httpOnly: true,
      sameSite: 'Strict',
    });
    // 3. the page came with a strict CSP
    const r = await fetch(`${s.url}/portal/`);
    expect(r.headers.get('content-security-policy')).toContain("script-src 'self'");
    expect(await r.text()).not.toMatch(/<script(?![^>]*\bsrc=)/);
    await page.close();
  });

  it('the Limits table matches /sluice/v1/me', async () => {
    const page = await browser.newPage();
    await portalSignIn(page);
    await page.goto(`${s.url}/portal/#/limits`);
    const table = page.getByRole('table', { name: 'Limits' });
    await table.waitFor();
    const me = (await (
      await fetch(`${s.url}/sluice/v1/me`, { headers: { authorization: `Bearer ${key.key}` } })
    ).json()) as {
      limits: { id: string; limit: number; remaining: number; kind: string }[];
    };
    const rows = await table
      .locator('tbody tr')
      .evaluateAll((trs) =>
        trs.map((tr) => Array.from(tr.querySelectorAll('th, td')).map((c) => (c.textContent ?? '').trim())),
      );
    const num = (t: string) => Number(t.replace(/,/g, ''));
    expect(rows.map((r) => ({ id: r[0], kind: r[2], limit: num(r[4]!), remaining: num(r[6]!) }))).toEqual(
      me.limits.map((l) => ({ id: l.id, kind: l.kind, limit: l.limit, remaining: l.remaining })),
    );
    expect(rows.length).toBeGreaterThanOrEqual(2);
    // The deprecation that touches this key, as /sluice/v1/me lists it, with its link.
    const deps = page.getByRole('table', { name: 'Deprecated things you use' });
    await deps.getByRole('rowheader', { name: 'model gpt-4o-mini' }).waitFor();
    expect(await deps.getByRole('link', { name: 'Notice for gpt-4o-mini' }).getAttribute('href')).toBe(
      'https://example.com/notices/gpt-4o-mini',
    );
    expect(await deps.textContent()).toContain('demo-model');
    await a11y(page);
    await shot(page, 'portal-limits');
    await page.close();
  });

  it('draws the usage chart from aggregated queries over 100,000 rows (load time measured)', async () => {
    const page = await browser.newPage();
    await portalSignIn(page);
    // 1. cold: navigation to the chart drawn (session check, /me, the aggregated query, uPlot)
    let t0 = performance.now();
    await page.goto(`${s.url}/portal/#/usage`);
    await page.waitForFunction(
      () => Number(document.querySelector('.chart')?.getAttribute('data-points')) >= 30,
    );
    loadTimes['day-by-model-cold'] = Math.round(performance.now() - t0);
    // 2. warm: the same page reloaded (bundle cached)
    t0 = performance.now();
    await page.reload();
    await page.waitForFunction(
      () => Number(document.querySelector('.chart')?.getAttribute('data-points')) >= 30,
    );
    loadTimes['day-by-model-warm'] = Math.round(performance.now() - t0);
    // 3. hourly, by key: 30 days × 24 hours on the chart
    t0 = performance.now();
    await page.locator('select[name=groupBy]').selectOption('key');
    await page.locator('select[name=bucket]').selectOption('hour');
    await page.waitForFunction(
      () => Number(document.querySelector('.chart')?.getAttribute('data-points')) > 24 * 29,
    );
    loadTimes['hour-by-key-switch'] = Math.round(performance.now() - t0);
    // Aggregated, not rows: at most one point per hour of the 30 days, whatever the ledger holds.
    expect(Number(await page.locator('.chart').getAttribute('data-points'))).toBeLessThanOrEqual(30 * 24 + 1);
    // Several keys of the tenant on one chart: one series per key (uPlot's legend lists them).
    const legend = await page.locator('.u-legend .u-series').count();
    expect(legend).toBeGreaterThanOrEqual(1 + 3);
    const totals = page.getByRole('table', { name: 'Totals by key' });
    expect(await totals.locator('tbody tr').count()).toBeGreaterThanOrEqual(3);
    const api = await page.evaluate(async () => {
      const t = performance.now();
      const body = await (await fetch('/sluice/v1/usage?groupBy=key&bucket=hour&days=30')).text();
      const ms = performance.now() - t;
      const t2 = performance.now();
      await (await fetch('/sluice/v1/usage?groupBy=model&bucket=day&days=30')).text();
      return { bytes: body.length, hourlyMs: Math.round(ms), dailyMs: Math.round(performance.now() - t2) };
    });
    loadTimes.hourlyJsonBytes = api.bytes;
    expect(api.bytes).toBeLessThan(3 * (30 * 24 + 1) * 150);
    loadTimes.apiHourByKeyMs = api.hourlyMs;
    loadTimes.apiDayByModelMs = api.dailyMs;
    console.log(`portal usage with 100,000 rows: ${JSON.stringify(loadTimes)}`);
    await a11y(page);
    await shot(page, 'portal-usage');
    await page.goto(`${s.url}/portal/#/recommendations`);
    await page.getByRole('heading', { name: 'Batch your embeddings' }).waitFor();
    await shot(page, 'portal-recommendations');
    await page.close();
  }, 120_000);
});

describe('exceptions from the portal to the console (fake clock)', () => {
  // The same composition root as `sluice serve` (serve()), in this process, so its clock is the
  // test's: the exception's expiry is reached by moving the clock, not by waiting.
  const clock = {
    t: Date.now(),
    now() {
      return this.t;
    },
  };
  let x: RunningSluice;
  let xKey: { id: string; key: string };
  let xPassword: string;
  const xChat = () =>
    fetch(`${x.urls.gateway}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${xKey.key}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'demo-model', messages: [{ role: 'user', content: 'hello' }] }),
    });

  beforeAll(async () => {
    const dir = tempDir('sluice-browser-exc-');
    const yaml = policy(2);
    x = await serve({
      source: { file: null, source: yaml, config: withDataDir(parseConfig(yaml, 'test'), dir) },
      port: 0,
      adminPort: 0,
      host: '127.0.0.1',
      clock,
      logger: pino({ level: 'silent' }),
    });
    const token = readFileSync(join(dir, 'admin-token'), 'utf8').trim();
    xPassword = /password: (\S+)/.exec(readFileSync(join(dir, 'console-password'), 'utf8'))![1]!;
    const r = await fetch(`${x.urls.admin}/admin/v1/keys`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ tenant: 'acme' }),
    });
    xKey = (await r.json()) as { id: string; key: string };
  }, 60_000);
  afterAll(async () => {
    await x?.close(5000);
  });

  it('a requested and approved exception lifts the 429, then ends by itself at its expiry', async () => {
    // 1. the daily limit binds
    expect((await xChat()).status).toBe(200);
    expect((await xChat()).status).toBe(200);
    expect((await xChat()).status).toBe(429);
    // 2. the developer asks in the portal
    const dev = await browser.newPage();
    await dev.goto(`${x.urls.gateway}/portal/`);
    await dev.getByLabel('API key').fill(xKey.key);
    await dev.getByRole('button', { name: 'Sign in' }).click();
    await dev.getByRole('navigation', { name: 'Portal sections' }).waitFor();
    await dev.goto(`${x.urls.gateway}/portal/#/refusals`);
    await dev.getByRole('table', { name: /Refused requests/ }).waitFor();
    await shot(dev, 'portal-refusals');
    await dev.goto(`${x.urls.gateway}/portal/#/exceptions`);
    await dev.getByLabel('Limit to raise').selectOption('rpd');
    await dev.getByLabel('New amount per window').fill('8');
    await dev.getByLabel('Duration (hours)').fill('24');
    await dev.getByLabel('Justification').fill('Launch-day demo needs a few more calls');
    await dev.getByRole('button', { name: 'Request exception' }).click();
    const status = dev.getByRole('status');
    await status.waitFor();
    const id = /exc_\S+/.exec((await status.textContent()) ?? '')![0];
    await a11y(dev);
    await shot(dev, 'portal-exceptions');
    expect((await xChat()).status).toBe(429);
    // 3. the operator approves it in the console, narrowed to 15 seconds
    const ops = await browser.newPage();
    await ops.goto(`${x.urls.admin}/console/`);
    await ops.getByLabel('Username').fill('admin');
    await ops.getByLabel('Password').fill(xPassword);
    await ops.getByRole('button', { name: 'Sign in' }).click();
    await ops.getByRole('navigation', { name: 'Console sections' }).waitFor();
    await ops.goto(`${x.urls.admin}/console/#/exceptions`);
    await ops.getByLabel('Grant for (seconds; empty: as asked)').fill('15');
    await ops.getByRole('button', { name: `Approve ${id}` }).click();
    await ops.getByRole('button', { name: `Revoke ${id}` }).waitFor();
    await a11y(ops);
    await shot(ops, 'console-exceptions');
    // 4. lifted at once
    expect((await xChat()).status).toBe(200);
    // 5. 14 s later it still applies; at 15 s it has ended by itself, and the policy's limit binds again
    clock.t += 14_000;
    expect((await xChat()).status).toBe(200);
    clock.t += 1_000;
    const after = (await (
      await fetch(`${x.urls.gateway}/sluice/v1/exceptions/${id}`, {
        headers: { authorization: `Bearer ${xKey.key}` },
      })
    ).json()) as { status: string };
    expect(after.status).toBe('expired');
    expect((await xChat()).status).toBe(429);
    // 6. the portal's list says so
    await dev.reload();
    await dev
      .getByRole('table', { name: 'Your exception requests' })
      .getByRole('row', { name: new RegExp(id) })
      .getByText('expired', { exact: true })
      .waitFor();
    await dev.close();
    await ops.close();
  }, 120_000);
});

describe('admin console', () => {
  it('rotates a key and shows the new secret once', async () => {
    const page = await browser.newPage();
    await consoleSignIn(page);
    await page.goto(`${s.adminUrl}/console/#/keys`);
    await page.getByRole('button', { name: `Rotate key ${key.id}` }).click();
    const secret = ((await page.locator('#show-once-secret').textContent()) ?? '').trim();
    expect(secret).toMatch(/^sk-sluice-/);
    expect(secret).not.toBe(key.key);
    await a11y(page);
    await shot(page, 'console-keys');
    expect(
      (await fetch(`${s.url}/sluice/v1/me`, { headers: { authorization: `Bearer ${secret}` } })).status,
    ).toBe(200);
    await page.getByRole('button', { name: 'I have copied it' }).click();
    await page.reload();
    await page.getByRole('table', { name: /Keys/ }).waitFor();
    expect(await page.content()).not.toContain(secret);
    key = { id: key.id, key: secret };
    await page.close();
  });

  it('applies a policy change and rolls it back with a TOTP step-up', async () => {
    const enrolled = (await (await admin('/admin/v1/me/totp', { method: 'POST' })).json()) as {
      secret: string;
    };
    const page = await browser.newPage();
    await consoleSignIn(page);
    await page.goto(`${s.adminUrl}/console/#/policy`);
    const source = page.getByLabel('Policy source (YAML)');
    await expect.poll(async () => source.inputValue()).toContain('requests: 2');
    await source.fill(policy(50));
    await page.getByRole('button', { name: 'Diff against running' }).click();
    await page.locator('pre.diff').waitFor();
    await page.getByRole('button', { name: 'Apply' }).click();
    await page.getByRole('status').filter({ hasText: 'Applied' }).waitFor();
    const applied = (await (await admin('/admin/v1/policy')).json()) as { version: number; source: string };
    expect(applied.source).toContain('requests: 50');
    await page.getByLabel('Roll back to version').selectOption(String(applied.version - 1));
    await page.getByLabel('One-time code (TOTP, when required)').fill(totpCode(enrolled.secret, Date.now()));
    await page.getByRole('button', { name: 'Roll back' }).click();
    await page.getByRole('status').filter({ hasText: 'Rolled back' }).waitFor();
    const after = (await (await admin('/admin/v1/policy')).json()) as { version: number; source: string };
    expect(after.version).toBe(applied.version + 1);
    expect(after.source).toContain('requests: 2');
    await a11y(page);
    await shot(page, 'console-policy');
    for (const tab of ['audit', 'alerts', 'cases']) {
      await page.goto(`${s.adminUrl}/console/#/${tab}`);
      await page.getByRole('heading', { level: 2 }).waitFor();
      if (tab === 'audit') await page.getByText(/Chain verification: (intact|FAILED)/).waitFor();
      await a11y(page);
      await shot(page, `console-${tab}`);
    }
    await page.close();
  });

  it('shows live traffic per tenant from the server-sent event stream', async () => {
    const page = await browser.newPage();
    await consoleSignIn(page);
    await page.goto(`${s.adminUrl}/console/#/traffic`);
    await page.getByText('Stream: live').waitFor();
    // Requests made while the page listens show up in its per-tenant table within a tick or two.
    expect(
      (await fetch(`${s.url}/sluice/v1/me`, { headers: { authorization: `Bearer ${key.key}` } })).status,
    ).toBe(200);
    await chat();
    await page
      .getByRole('table', { name: /Traffic per tenant/ })
      .getByRole('rowheader', { name: 'acme' })
      .waitFor();
    await a11y(page);
    await shot(page, 'console-traffic');
    await page.close();
  });

  it("an auditor's console reads but offers no writes, and the API refuses them", async () => {
    const u = (await (
      await admin('/admin/v1/users', { method: 'POST', body: { name: 'audra', role: 'auditor' } })
    ).json()) as {
      token: string;
    };
    expect(
      (
        await admin('/admin/v1/me/password', {
          method: 'POST',
          body: { password: 'correct horse battery' },
          token: u.token,
        })
      ).status,
    ).toBe(204);
    const page = await browser.newPage();
    await consoleSignIn(page, 'audra', 'correct horse battery');
    await page.goto(`${s.adminUrl}/console/#/keys`);
    await page.getByRole('table', { name: /Keys/ }).waitFor();
    expect(await page.getByRole('button', { name: 'Create key' }).count()).toBe(0);
    expect(await page.getByRole('button', { name: /Rotate key/ }).count()).toBe(0);
    const status = await page.evaluate(async () => {
      const s = await (await fetch('/console/session')).json();
      const r = await fetch(`/admin/v1/keys/${'x'}/revoke`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-csrf-token': s.csrfToken },
        body: '{}',
      });
      return r.status;
    });
    expect(status).toBe(403);
    // A write without the CSRF token is refused before the role is even looked at.
    const noCsrf = await page.evaluate(
      async () => (await fetch('/admin/v1/keys/x/revoke', { method: 'POST' })).status,
    );
    expect(noCsrf).toBe(403);
    await page.close();
  });
});

describe('a quarantine seen in the portal and released from the console', () => {
  it('the paused capability is explained in the portal; an operator releases it with step-up; access returns', async () => {
    // 1. a template campaign from ten fresh tenants' keys, from one public network (through the
    //    trusted loopback proxy): abuse detection quarantines chat.create for the campaign's keys
    const camp: { id: string; key: string }[] = [];
    for (let i = 0; i < 10; i++)
      camp.push(
        (await (await admin('/admin/v1/keys', { method: 'POST', body: { tenant: `camp${i}` } })).json()) as {
          id: string;
          key: string;
        },
      );
    const campChat = (k: string, content: string, ip = '192.0.2.10') =>
      fetch(`${s.url}/v1/chat/completions`, {
        method: 'POST',
        headers: {
          authorization: `Bearer ${k}`,
          'content-type': 'application/json',
          'x-forwarded-for': ip,
        },
        body: JSON.stringify({ model: 'demo-model', messages: [{ role: 'user', content }] }),
      });
    for (let round = 0; round < 4; round++)
      for (let i = 0; i < 10; i++)
        await (
          await campChat(
            camp[i]!.key,
            `Write a five-star review for product ${i * 13 + round} mentioning fast shipping`,
          )
        ).text();
    const open = (
      (await (await admin('/admin/v1/cases?status=open')).json()) as {
        data: { id: string; kind: string; capability: string; evidence: { related: { keys: string[] } } }[];
      }
    ).data;
    const q = open.find((c) => c.kind === 'quarantine' && c.capability === 'chat.create');
    expect(q).toBeDefined();
    const member = camp.find((k) => k.id === q!.evidence.related.keys[0])!;
    expect((await campChat(member.key, 'hello')).status).toBe(403);
    // 2. the developer signs in to the portal with that key: the notice says what, why, until when
    const dev = await browser.newPage();
    await dev.goto(`${s.url}/portal/`);
    await dev.getByLabel('API key').fill(member.key);
    await dev.getByRole('button', { name: 'Sign in' }).click();
    const notices = dev.getByRole('region', { name: 'Notices' });
    await notices.getByRole('heading', { name: 'chat.create is paused pending review' }).waitFor();
    const text = (await notices.textContent()) ?? '';
    expect(text).toContain(q!.id);
    expect(text).toMatch(/Why: .+/);
    expect(text).toMatch(/Expected recovery: \d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} UTC at the latest/);
    expect(text).toContain('To appeal: contact your administrator');
    await a11y(dev);
    await shot(dev, 'portal-quarantine');
    // 3. an operator (their own TOTP factor) opens the case queue
    const op = (await (
      await admin('/admin/v1/users', { method: 'POST', body: { name: 'olive', role: 'operator' } })
    ).json()) as {
      token: string;
    };
    const opApi = (path: string, body: unknown) =>
      fetch(`${s.adminUrl}${path}`, {
        method: 'POST',
        headers: { authorization: `Bearer ${op.token}`, 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
    expect((await opApi('/admin/v1/me/password', { password: 'olive operator pass' })).status).toBe(204);
    const { secret } = (await (await opApi('/admin/v1/me/totp', {})).json()) as { secret: string };
    const ops = await browser.newPage();
    await consoleSignIn(ops, 'olive', 'olive operator pass');
    await ops.goto(`${s.adminUrl}/console/#/cases`);
    const row = ops
      .getByRole('table', { name: 'Cases (newest first)' })
      .getByRole('row', { name: new RegExp(q!.id) });
    await row.waitFor();
    await row.getByText('Evidence').click();
    // A reviewer's confirmation keeps the hold (the list shows what is in force: open or confirmed).
    await ops.getByRole('button', { name: `Confirm ${q!.id}` }).click();
    await ops
      .getByRole('status')
      .filter({ hasText: `Confirmed ${q!.id} (now confirmed)` })
      .waitFor();
    await row.getByRole('cell', { name: 'confirmed', exact: true }).waitFor();
    expect((await campChat(member.key, 'hello')).status).toBe(403);
    await a11y(ops);
    await shot(ops, 'console-cases');
    // 4. release without a code: the API asks for step-up, the case stays open and the key stays paused
    await ops
      .getByLabel('Note (kept with a release, or added on its own)')
      .fill('reviewed: a load test by the vendor');
    await ops.getByRole('button', { name: `Release ${q!.id}` }).click();
    await ops.getByText('Releasing a case needs step-up').waitFor();
    expect((await campChat(member.key, 'hello')).status).toBe(403);
    // 5. with a fresh one-time code it is released, and the key works again at once
    await ops.getByLabel('One-time code (TOTP, needed to release)').fill(totpCode(secret, Date.now()));
    await ops.getByRole('button', { name: `Release ${q!.id}` }).click();
    await ops
      .getByRole('status')
      .filter({ hasText: `Released ${q!.id} (now released)` })
      .waitFor();
    // (from another network: one more call of the campaign's client from 192.0.2.0/24 would be evidence again)
    expect((await campChat(member.key, 'hello', '198.51.100.7')).status).toBe(200);
    const c = (await (await admin(`/admin/v1/cases/${q!.id}`)).json()) as {
      status: string;
      notes: { text: string; by: string }[];
    };
    expect(c.status).toBe('released');
    expect(c.notes).toContainEqual(
      expect.objectContaining({ text: 'reviewed: a load test by the vendor', by: 'olive' }),
    );
    // 6. the portal no longer shows the released case's notice
    await dev.goto(`${s.url}/portal/#/limits`);
    await dev.reload();
    await dev.getByRole('table', { name: 'Limits' }).waitFor(); // /sluice/v1/me has answered
    expect(await dev.locator(`#paused-${q!.id}`).count()).toBe(0);
    await dev.close();
    await ops.close();
  }, 180_000);
});
