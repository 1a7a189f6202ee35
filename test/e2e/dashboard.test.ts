import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { ALERT_TYPES } from '../../src/alerts/alert-types.js';
import { enqueueAlert } from '../../src/alerts/outbox.repository.js';
import { ManualClock } from '../../src/lib/clock.js';
import { createApiCredential, setupCaller } from '../helpers/health-fixtures.js';
import { startHttpStub, type HttpStub } from '../helpers/http-stub.js';
import { destroyTestVault, openTestVault, tokenWith, type TestVault } from '../helpers/test-vault.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const chromiumPath = process.env.AEGIS_CHROMIUM ?? '/usr/bin/chromium';
/** Set to 1 to rewrite docs/screenshots/*.png from this run; otherwise screenshots go to the test's folder. */
const updateScreenshots = process.env.AEGIS_UPDATE_SCREENSHOTS === '1';
const wait = { timeout: 15_000 };

/** A clock that reads the wall time, because the browser computes "expires in" from its own clock. */
class WallClock extends ManualClock {
  override now(): Date {
    return new Date();
  }
}

/**
 * The browser globals the page callbacks below use, because the test's TypeScript settings have no DOM
 * types. Callbacks run in the page, so they cast globalThis there rather than close over a Node value.
 */
interface BrowserGlobals {
  sessionStorage: { getItem(key: string): string | null };
  getComputedStyle(element: unknown): { backgroundColor: string };
  document: { documentElement: { scrollWidth: number }; activeElement: { textContent: string | null } | null };
}

/** Chromium flags for this machine's closed network: no background requests to any other host. */
export const chromiumArgs = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

let skipReason: string | false = false;
if (!fs.existsSync(chromiumPath)) {
  if (process.env.CI === 'true') throw new Error(`Chromium is missing at ${chromiumPath}, and CI=true requires it. Install it with apt-get install -y chromium.`);
  skipReason = `no Chromium at ${chromiumPath} (apt-get install -y chromium, or set AEGIS_CHROMIUM)`;
  process.stdout.write(`# skipping dashboard browser tests: ${skipReason}\n`);
}

describe('web dashboard', { skip: skipReason }, () => {
  let t: TestVault;
  let baseUrl: string;
  let context: BrowserContext;
  let page: Page;
  let readToken: string;
  let profileDir: string;
  let envFile: string;
  let stub: HttpStub;
  /** The HTTP status the stand-in API returns to the next test request. */
  let stubStatus = 200;
  /** Requests the browser sent for /favicon.ico, which it sends on each page load unless the page names an icon. */
  let faviconRequests = 0;
  /** Console messages of the page that report a Content-Security-Policy violation. */
  const cspViolations: string[] = [];
  const screenshotDir = updateScreenshots ? path.join(root, 'docs/screenshots') : fs.mkdtempSync(path.join(os.tmpdir(), 'aegis-shots-'));

  async function createCredential(body: Record<string, unknown>): Promise<void> {
    const response = await t.app.inject({
      method: 'POST',
      url: '/credentials',
      headers: { authorization: `Bearer ${t.adminToken}`, 'content-type': 'application/json' },
      payload: JSON.stringify(body),
    });
    assert.equal(response.statusCode, 201, response.body);
  }

  async function signIn(token: string): Promise<void> {
    await page.goto(`${baseUrl}/ui/`);
    await page.getByLabel('API token').fill(token);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('heading', { name: 'Credentials', level: 1 }).waitFor(wait);
  }

  /** Signs the tab out and in again with another token. */
  async function switchToken(token: string): Promise<void> {
    await page.goto(`${baseUrl}/ui/`);
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByLabel('API token').waitFor(wait);
    await signIn(token);
  }

  let clockInstalled = false;

  /**
   * Replaces the page's timers with Playwright's clock and stops it, so a test fires the 5-second reload
   * with page.clock.runFor. The clock stays installed for the browser context, so each test resumes it.
   */
  async function pauseClock(): Promise<void> {
    if (!clockInstalled) {
      await page.clock.install();
      clockInstalled = true;
      // The reload timer starts when the script loads, so the page loads again with the fake timers.
      await page.reload();
    }
    // The page's clock runs ahead of the wall clock by the time earlier tests ran it for.
    const pageNow = await page.evaluate(() => Date.now());
    await page.clock.pauseAt(pageNow + 1_000);
  }

  /** Returns the paths and queries of the requests the page sends while `action` runs. */
  async function requestsDuring(action: () => Promise<unknown>): Promise<string[]> {
    const requested: string[] = [];
    const listener = (request: { url(): string }) => {
      const url = new URL(request.url());
      requested.push(`${url.pathname}${url.search}`);
    };
    page.on('request', listener);
    try {
      await action();
    } finally {
      page.off('request', listener);
    }
    return requested;
  }

  /** Clicks the dialog's confirm button, after checking that a confirmation was asked. */
  async function confirm(label: string): Promise<void> {
    const dialog = page.getByRole('dialog');
    await dialog.waitFor(wait);
    await dialog.getByRole('button', { name: label }).click();
    await dialog.waitFor({ state: 'detached', ...wait });
  }

  before(async () => {
    const build = spawnSync(process.execPath, [path.join(root, 'scripts/build-web.mjs')], { encoding: 'utf8' });
    assert.equal(build.status, 0, `web build failed: ${build.stderr}`);

    t = await openTestVault('sqlite', { clock: new WallClock() });
    await t.app.listen({ host: '127.0.0.1', port: 0 });
    const address = t.app.server.address();
    assert.ok(address && typeof address === 'object');
    baseUrl = `http://127.0.0.1:${address.port}`;
    // The browser requests the favicon itself, so Playwright does not report the request, and the server counts it.
    t.app.server.on('request', (request) => {
      if (request.url === '/favicon.ico') faviconRequests += 1;
    });

    const hour = 3_600_000;
    await createCredential({ name: 'svc/healthy', credential_type: 'httpHeaderAuth', provider: 'api', tags: ['web'] });
    await createCredential({ name: 'svc/expiring', credential_type: 'httpHeaderAuth', provider: 'api', expires_at: new Date(Date.now() + 24 * hour).toISOString() });
    await createCredential({ name: 'svc/expired', credential_type: 'httpHeaderAuth', provider: 'api', expires_at: new Date(Date.now() - 24 * hour).toISOString() });
    await createCredential({ name: 'svc/failed', credential_type: 'httpHeaderAuth', provider: 'api' });
    await createCredential({ name: 'svc/rotating', credential_type: 'httpHeaderAuth', provider: 'api' });
    await createCredential({ name: 'svc/retired', credential_type: 'httpHeaderAuth', provider: 'api' });
    const db = t.vault.db.kysely;
    await db.updateTable('aegis_credentials').set({ status: 'failed' }).where('name', '=', 'svc/failed').execute();
    await db.updateTable('aegis_credentials').set({ status: 'rotating' }).where('name', '=', 'svc/rotating').execute();
    await db.updateTable('aegis_credentials').set({ status: 'retired' }).where('name', '=', 'svc/retired').execute();

    envFile = path.join(t.dir, 'app.env');
    fs.writeFileSync(envFile, 'API_KEY=first-value\n', { mode: 0o600 });
    await createCredential({
      name: 'app/env-key',
      credential_type: 'env',
      provider: 'env',
      provider_config: { file: envFile, variable: 'API_KEY' },
      value: 'first-value',
      tags: ['web'],
    });
    readToken = await tokenWith(t, 'dashboard-reader', ['credentials:read', 'audit:read']);

    profileDir = fs.mkdtempSync(path.join(os.tmpdir(), 'aegis-chromium-'));
    context = await chromium.launchPersistentContext(profileDir, {
      executablePath: chromiumPath,
      headless: true,
      args: chromiumArgs,
      acceptDownloads: true,
      viewport: { width: 1400, height: 900 },
    });
    page = context.pages()[0] ?? (await context.newPage());
    page.on('console', (entry) => {
      if (/Content Security Policy/i.test(entry.text())) cspViolations.push(entry.text());
    });

    stub = await startHttpStub((_request, response) => {
      response.writeHead(stubStatus);
      response.end();
    });
  });

  after(async () => {
    await context?.close();
    await stub?.close();
    if (t) await destroyTestVault(t);
    if (profileDir) fs.rmSync(profileDir, { recursive: true, force: true });
    if (!updateScreenshots) fs.rmSync(screenshotDir, { recursive: true, force: true });
  });

  it('serves UI with strict headers', async () => {
    const ui = await fetch(`${baseUrl}/ui/`);
    assert.equal(ui.status, 200);
    const csp = ui.headers.get('content-security-policy') ?? '';
    assert.match(csp, /default-src 'self'/);
    assert.match(csp, /script-src 'self'(;|$)/);
    assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval/);
    assert.equal(ui.headers.get('cache-control'), 'no-store');
    assert.equal(ui.headers.get('x-frame-options'), 'DENY');
    const html = await ui.text();
    assert.doesNotMatch(html, /<script(?![^>]*\bsrc=)[^>]*>/, 'index.html has an inline script');

    const script = await fetch(`${baseUrl}/ui/dashboard.js`);
    assert.equal(script.status, 200);
    assert.match(script.headers.get('content-type') ?? '', /^text\/javascript/);

    const api = await fetch(`${baseUrl}/credentials`, { headers: { authorization: `Bearer ${t.adminToken}` } });
    assert.equal(api.status, 200);
    assert.equal(api.headers.get('cache-control'), 'no-store');

    const root = await fetch(`${baseUrl}/`, { redirect: 'manual' });
    assert.equal(root.status, 302);
    assert.equal(root.headers.get('location'), '/ui/');

    const compiledServerCode = await fetch(`${baseUrl}/ui/dashboard.routes.js`);
    assert.equal(compiledServerCode.status, 404);
  });

  it('rejects an invalid token', async () => {
    await page.goto(`${baseUrl}/ui/`);
    await page.getByLabel('API token').fill('aegis_000000000000_notavalidsecretnotavalidsecretnotavalidsecr');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('alert').filter({ hasText: '401' }).waitFor(wait);
    assert.equal(await page.evaluate(() => (globalThis as unknown as BrowserGlobals).sessionStorage.getItem('aegis.token')), null);
  });

  it('rejects a non-ASCII token', async () => {
    await page.getByLabel('API token').fill('aegis_token_ünïcødé_€');
    await page.getByRole('button', { name: 'Sign in' }).click();
    const problem = page.getByRole('alert');
    await problem.filter({ hasText: 'invalid' }).waitFor(wait);
    assert.equal(await problem.textContent(), 'Sign-in failed: the token is invalid, because it contains characters that no AEGIS token has. Paste the token again.');
  });

  it('signs in and shows statuses', async () => {
    await signIn(t.adminToken);
    assert.equal(await page.evaluate(() => (globalThis as unknown as BrowserGlobals).sessionStorage.getItem('aegis.token')), t.adminToken);
    assert.ok(!page.url().includes(t.adminToken), 'token in the URL');
    assert.deepEqual(await context.cookies(), []);

    const tiles = page.locator('.tile');
    await tiles.first().waitFor(wait);
    const expectedTiles: Record<string, [string, string]> = {
      green: ['2', 'Healthy'],
      yellow: ['1', 'Expiring Soon'],
      red: ['2', 'Action Required'],
      blue: ['1', 'Rotation in Progress'],
      gray: ['1', 'Retired'],
    };
    for (const [colour, [count, label]] of Object.entries(expectedTiles)) {
      const tile = page.locator(`.tile[data-colour="${colour}"]`);
      assert.equal(await tile.locator('.tile-count').textContent(), count, `${colour} tile count`);
      assert.equal(await tile.locator('.tile-label').textContent(), label, `${colour} tile label`);
    }

    const expectedRows: Record<string, [string, string]> = {
      'svc/healthy': ['green', 'Healthy'],
      'app/env-key': ['green', 'Healthy'],
      'svc/expiring': ['yellow', 'Expiring Soon'],
      'svc/expired': ['red', 'Action Required (expired)'],
      'svc/failed': ['red', 'Action Required (failed)'],
      'svc/rotating': ['blue', 'Rotation in Progress'],
      'svc/retired': ['gray', 'Retired'],
    };
    for (const [name, [colour, label]] of Object.entries(expectedRows)) {
      const badge = page.locator(`tr[data-name="${name}"] .status`);
      assert.equal(await badge.getAttribute('data-colour'), colour, `${name} colour`);
      assert.equal(await badge.locator('.status-label').textContent(), label, `${name} label`);
      const light = await badge.locator('.light').evaluate((element) => (globalThis as unknown as BrowserGlobals).getComputedStyle(element).backgroundColor);
      assert.notEqual(light, 'rgba(0, 0, 0, 0)', `${name} light has no colour`);
    }
    await page.screenshot({ path: path.join(screenshotDir, 'overview.png'), fullPage: true });
  });

  it('filters the overview', async () => {
    await page.getByLabel('Status', { exact: true }).selectOption('expiring');
    await page.locator('tr[data-name="svc/healthy"]').waitFor({ state: 'detached', ...wait });
    assert.deepEqual(await page.locator('tbody tr').evaluateAll((rows) => rows.map((row) => row.getAttribute('data-name'))), ['svc/expiring']);

    await page.getByLabel('Status', { exact: true }).selectOption('');
    await page.getByLabel('Tag').fill('web');
    await page.getByLabel('Tag').press('Enter');
    await page.locator('tr[data-name="svc/expired"]').waitFor({ state: 'detached', ...wait });
    assert.deepEqual(await page.locator('tbody tr').evaluateAll((rows) => rows.map((row) => row.getAttribute('data-name'))), ['app/env-key', 'svc/healthy']);

    await page.getByLabel('Search names').fill('env');
    await page.locator('tr[data-name="svc/healthy"]').waitFor({ state: 'detached', ...wait });
    assert.equal(await page.locator('tbody tr').count(), 1);
  });

  it('rotates and rolls back', async () => {
    await page.getByRole('link', { name: 'app/env-key' }).click();
    await page.getByRole('heading', { name: 'app/env-key', level: 1 }).waitFor(wait);
    await page.getByRole('cell', { name: '1 (current)' }).waitFor(wait);

    await page.getByRole('button', { name: 'Rotate', exact: true }).click();
    await page.getByRole('dialog').getByLabel('Reason (recorded in the history)').fill('dashboard test');
    await confirm('Rotate');
    await page.getByRole('status').filter({ hasText: 'Rotated: version 1 → 2' }).waitFor(wait);
    await page.getByRole('cell', { name: '2 (current)' }).waitFor(wait);
    const rotatedFile = fs.readFileSync(envFile, 'utf8');
    assert.doesNotMatch(rotatedFile, /API_KEY=first-value/);
    assert.match(rotatedFile, /^API_KEY=.+$/m);
    await page.getByRole('cell', { name: 'dashboard test' }).first().waitFor(wait);
    await page.screenshot({ path: path.join(screenshotDir, 'credential.png'), fullPage: true });

    await page.getByLabel('Version to roll back to').selectOption('1');
    await page.getByRole('button', { name: 'Roll back' }).click();
    await confirm('Roll back to 1');
    await page.getByRole('status').filter({ hasText: 'Rolled back: version 2 → 1' }).waitFor(wait);
    await page.getByRole('cell', { name: '1 (current)' }).waitFor(wait);
    assert.match(fs.readFileSync(envFile, 'utf8'), /^API_KEY=first-value$/m);
  });

  it('cancelled rotation changes nothing', async () => {
    await page.getByRole('button', { name: 'Rotate', exact: true }).click();
    const dialog = page.getByRole('dialog');
    await dialog.getByRole('button', { name: 'Cancel' }).click();
    await dialog.waitFor({ state: 'detached', ...wait });
    assert.match(fs.readFileSync(envFile, 'utf8'), /^API_KEY=first-value$/m);
    assert.equal(await page.getByRole('cell', { name: '1 (current)' }).count(), 1);
  });

  it('filters and exports audit', async () => {
    await page.getByRole('link', { name: 'Audit log' }).click();
    await page.getByRole('heading', { name: 'Audit log', level: 1 }).waitFor(wait);
    await page.getByLabel('Credential').fill('app/env-key');
    await page.getByLabel('Action').fill('rotated');
    await page.getByRole('button', { name: 'Apply filters' }).click();
    await page.locator('.page-summary', { hasText: 'of 1' }).waitFor(wait);
    const actions = await page.locator('tbody tr td:nth-child(4)').allTextContents();
    assert.deepEqual(actions, ['rotated']);

    const [csvDownload] = await Promise.all([page.waitForEvent('download', wait), page.getByRole('button', { name: 'Export CSV' }).click()]);
    const csv = fs.readFileSync((await csvDownload.path())!, 'utf8').trim().split('\r\n');
    assert.equal(csv[0], 'seq,timestamp,credential_name,action,actor,target,ip_address,success,error_message,details,entry_hash,id');
    assert.equal(csv.length, 2);
    assert.match(csv[1]!, /,app\/env-key,rotated,/);

    const [jsonDownload] = await Promise.all([page.waitForEvent('download', wait), page.getByRole('button', { name: 'Export JSON lines' }).click()]);
    const lines = fs.readFileSync((await jsonDownload.path())!, 'utf8').trim().split('\n').map((line) => JSON.parse(line));
    assert.equal(lines.length, 1);
    assert.equal(lines[0].credential_name, 'app/env-key');
    assert.equal(lines[0].action, 'rotated');

    await page.getByRole('button', { name: 'Verify hash chain' }).click();
    await page.getByRole('status').filter({ hasText: 'The chain verifies' }).waitFor(wait);
  });

  it('shows alerts and the schedule', async () => {
    await page.getByRole('link', { name: 'Alerts' }).click();
    await page.getByRole('heading', { name: 'Alerts', level: 1 }).waitFor(wait);
    await page.getByRole('cell', { name: 'rotation_success' }).first().waitFor(wait);

    await page.getByRole('link', { name: 'Rotation schedule' }).click();
    await page.getByRole('heading', { name: 'Rotation schedule', level: 1 }).waitFor(wait);
    await page.getByRole('heading', { name: 'Scheduler jobs' }).waitFor(wait);
  });

  it('read-only token cannot rotate', async () => {
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByLabel('API token').waitFor(wait);
    assert.equal(await page.evaluate(() => (globalThis as unknown as BrowserGlobals).sessionStorage.getItem('aegis.token')), null);

    await signIn(readToken);
    await page.getByRole('link', { name: 'app/env-key' }).click();
    await page.getByRole('heading', { name: 'app/env-key', level: 1 }).waitFor(wait);
    await page.getByRole('button', { name: 'Rotate', exact: true }).click();
    await confirm('Rotate');
    const problem = page.getByRole('alert').filter({ hasText: '403' });
    await problem.waitFor(wait);
    assert.match((await problem.textContent()) ?? '', /Rotation failed: 403 Forbidden \(forbidden\): This token lacks the scope credentials:rotate/);
    assert.match(fs.readFileSync(envFile, 'utf8'), /^API_KEY=first-value$/m);
  });

  it('search finds page 2', async () => {
    for (let index = 0; index < 55; index += 1) {
      await t.vault.registry.create(setupCaller, { name: `bulk/item-${String(index).padStart(2, '0')}`, credential_type: 'httpHeaderAuth', provider: 'api' });
    }
    await t.vault.registry.create(setupCaller, { name: 'zz/page-two', credential_type: 'httpHeaderAuth', provider: 'api' });

    await page.getByRole('link', { name: 'Credentials', exact: true }).click();
    await page.getByRole('heading', { name: 'Credentials', level: 1 }).waitFor(wait);
    await page.locator('.page-summary', { hasText: '1–50 of 63' }).waitFor(wait);
    assert.equal(await page.locator('tr[data-name="zz/page-two"]').count(), 0, 'zz/page-two is on page 1 already');

    await page.getByLabel('Search names').fill('PAGE-two');
    await page.locator('tr[data-name="zz/page-two"]').waitFor(wait);
    await page.locator('.page-summary', { hasText: '1–1 of 1' }).waitFor(wait);
    assert.deepEqual(await page.locator('tbody tr').evaluateAll((rows) => rows.map((row) => row.getAttribute('data-name'))), ['zz/page-two']);

    await page.getByLabel('Search names').fill('');
    await page.locator('.page-summary', { hasText: '1–50 of 63' }).waitFor(wait);
    await page.getByRole('button', { name: 'Name ▲' }).click();
    await page.locator('th[aria-sort="descending"]', { hasText: 'Name' }).waitFor(wait);
    await page.locator('tbody tr').first().and(page.locator('tr[data-name="zz/page-two"]')).waitFor(wait);
  });

  it('charts health-check history', async () => {
    await createApiCredential(t, 'svc/monitored', stub.url);
    for (const status of [200, 500, 200]) {
      stubStatus = status;
      const response = await t.app.inject({ method: 'POST', url: '/credentials/svc%2Fmonitored/test', headers: { authorization: `Bearer ${t.adminToken}` } });
      assert.equal(response.statusCode, 200, response.body);
    }

    await page.goto(`${baseUrl}/ui/#/credential/svc%2Fmonitored`);
    await page.getByRole('heading', { name: 'svc/monitored', level: 1 }).waitFor(wait);
    const chart = page.locator('svg.health-chart');
    await chart.waitFor(wait);
    assert.equal(await chart.getAttribute('role'), 'img');
    assert.equal(await chart.locator('circle.check-healthy').count(), 2);
    assert.equal(await chart.locator('path.check-unhealthy').count(), 1);
    assert.equal(await chart.locator('polyline.response-line').count(), 1);

    const summary = page.locator('#health-summary');
    assert.match((await summary.textContent()) ?? '', /Showing 3 checks from .*: 2 healthy, 1 unhealthy, 0 unknown\. Response time: minimum \d+ ms/);
    assert.equal(await chart.getAttribute('aria-describedby'), 'health-summary');

    const statuses = await page.locator('.health-history tbody tr td:nth-child(2)').allTextContents();
    assert.deepEqual(statuses, ['healthy', 'unhealthy', 'healthy']);
    await page.getByRole('cell', { name: 'test request answered HTTP 500' }).waitFor(wait);
    assert.deepEqual(cspViolations, []);
  });

  it('lists the 100 newest versions', async () => {
    await createCredential({ name: 'svc/many-versions', credential_type: 'apiKey', provider: 'api', value: 'version-value-1' });
    for (let version = 2; version <= 101; version += 1) {
      const response = await t.app.inject({
        method: 'PATCH',
        url: '/credentials/svc%2Fmany-versions',
        headers: { authorization: `Bearer ${t.adminToken}`, 'content-type': 'application/json' },
        payload: JSON.stringify({ value: `version-value-${version}` }),
      });
      assert.equal(response.statusCode, 200, response.body);
    }

    await page.goto(`${baseUrl}/ui/#/credential/svc%2Fmany-versions`);
    await page.getByRole('cell', { name: '101 (current)' }).waitFor(wait);
    await page.getByText('The 100 newest of 101 versions.').waitFor(wait);
    assert.equal(await page.getByRole('cell', { name: '1', exact: true }).count(), 0);
    assert.equal(await page.getByLabel('Version to roll back to').locator('option[value="2"]').count(), 1);
  });

  it('lists where it is applied', async () => {
    await createApiCredential(t, 'svc/applied', stub.url);
    const credential = await t.vault.db.kysely.selectFrom('aegis_credentials').select('id').where('name', '=', 'svc/applied').executeTakeFirstOrThrow();
    const applied = (workflowId: string, nodeName: string, actor: string) => ({
      credentialId: credential.id,
      credentialName: 'svc/applied',
      action: 'applied',
      actor,
      target: `workflow:${workflowId}`,
      details: { workflow_id: workflowId, node_name: nodeName },
      success: true,
    });
    await t.vault.audit.record(applied('wf-invoices', 'Send invoice', 'HEPHAESTUS'));
    t.clock.advanceHours(1);
    await t.vault.audit.record(applied('wf-invoices', 'Send invoice', 'ARIA'));
    await t.vault.audit.record(applied('wf-reports', 'Fetch report', 'ARIA'));
    await t.vault.audit.record({ ...applied('wf-denied', 'Never', 'ARIA'), success: false, errorMessage: 'forbidden' });

    await page.goto(`${baseUrl}/ui/#/credential/svc%2Fapplied`);
    await page.getByRole('heading', { name: 'Where it is applied' }).waitFor(wait);
    const rows = page.getByRole('table', { name: 'Workflow nodes it was applied to, most recent first' }).locator('tbody tr');
    await rows.first().waitFor(wait);
    const cells = await rows.evaluateAll((elements) => elements.map((row) => [...row.querySelectorAll('td')].map((cell) => cell.textContent ?? '')));
    assert.deepEqual(
      cells.map((row) => [row[0], row[1], row[3]]),
      [
        ['wf-reports', 'Fetch report', 'ARIA'],
        ['wf-invoices', 'Send invoice', 'ARIA'],
      ],
    );
  });

  it('saves only the changed setting', async () => {
    const expiresAt = new Date(Date.now() + 30 * 24 * 3_600_000);
    expiresAt.setUTCSeconds(30, 0);
    await createCredential({ name: 'svc/expiry-seconds', credential_type: 'httpHeaderAuth', provider: 'api', expires_at: expiresAt.toISOString() });
    await switchToken(t.adminToken);
    await page.goto(`${baseUrl}/ui/#/credential/svc%2Fexpiry-seconds`);
    await page.getByRole('heading', { name: 'svc/expiry-seconds', level: 1 }).waitFor(wait);

    await page.getByLabel('Alert threshold (hours before expiry)').fill('48');
    const [patch] = await Promise.all([
      page.waitForRequest((request) => request.method() === 'PATCH', wait),
      page.getByRole('button', { name: 'Save settings' }).click(),
    ]);
    assert.deepEqual(patch.postDataJSON(), { alert_threshold_hours: 48 });
    await page.getByRole('status').filter({ hasText: 'Saved: alert_threshold_hours.' }).waitFor(wait);
    const stored = await t.vault.db.kysely.selectFrom('aegis_credentials').select('expires_at').where('name', '=', 'svc/expiry-seconds').executeTakeFirstOrThrow();
    assert.equal(new Date(stored.expires_at as string).toISOString(), expiresAt.toISOString());
  });

  it('never expires disables the date', async () => {
    const date = page.getByLabel('Expires at (UTC)');
    const never = page.getByLabel('Never expires');
    assert.equal(await date.isDisabled(), false);
    await never.check();
    assert.equal(await date.isDisabled(), true);
    await never.uncheck();
    assert.equal(await date.isDisabled(), false);

    await page.goto(`${baseUrl}/ui/#/credential/svc%2Fhealthy`);
    await page.getByRole('heading', { name: 'svc/healthy', level: 1 }).waitFor(wait);
    assert.equal(await date.isDisabled(), true);
    await never.uncheck();
    await date.fill('2030-01-02T03:04');
    const [patch] = await Promise.all([
      page.waitForRequest((request) => request.method() === 'PATCH', wait),
      page.getByRole('button', { name: 'Save settings' }).click(),
    ]);
    assert.deepEqual(patch.postDataJSON(), { expires_at: '2030-01-02T03:04:00.000Z' });
    await page.getByRole('status').filter({ hasText: 'Saved: expires_at.' }).waitFor(wait);
  });

  it('fits long names and a phone width', async () => {
    const longName = `svc/${'n'.repeat(124)}`;
    await createCredential({ name: longName, credential_type: `${'t'.repeat(120)}Type1234`, provider: 'api' });
    await page.goto(`${baseUrl}/ui/#/`);
    await page.getByLabel('Search names').fill('nnnnnnnn');
    const row = page.locator(`tr[data-name="${longName}"]`);
    await row.waitFor(wait);
    for (const cell of [row.locator('th'), row.locator('td').nth(2)]) {
      const box = await cell.boundingBox();
      assert.ok(box);
      assert.ok(box.width < 500, `a cell is ${box.width} px wide`);
    }
    const pageWidth = () => page.evaluate(() => (globalThis as unknown as BrowserGlobals).document.documentElement.scrollWidth);
    assert.equal(await pageWidth(), 1400);
    await page.screenshot({ path: path.join(screenshotDir, 'long-names-1400.png'), fullPage: true });

    await page.setViewportSize({ width: 375, height: 800 });
    try {
      await page.goto(`${baseUrl}/ui/#/credential/app%2Fenv-key`);
      await page.getByRole('heading', { name: 'app/env-key', level: 1 }).waitFor(wait);
      await page.getByLabel('Version to roll back to').locator('option[value="2"]').waitFor({ state: 'attached', ...wait });
      assert.equal(await pageWidth(), 375);
      for (const control of [page.getByRole('button', { name: 'Sign out' }), page.getByLabel('Version to roll back to')]) {
        const box = await control.boundingBox();
        assert.ok(box);
        assert.ok(box.x >= 0, `a control starts at ${box.x} px`);
        assert.ok(box.x + box.width <= 375, `a control ends at ${box.x + box.width} px`);
      }
      await page.screenshot({ path: path.join(screenshotDir, 'credential-375.png'), fullPage: true });
    } finally {
      await page.setViewportSize({ width: 1400, height: 900 });
    }
  });

  it('malformed link shows not found', async () => {
    await page.goto(`${baseUrl}/ui/#/`);
    await page.getByRole('heading', { name: 'Credentials', level: 1 }).waitFor(wait);
    await page.goto(`${baseUrl}/ui/#/credential/%E0%A4%A`);
    await page.getByRole('heading', { name: 'Page not found', level: 1 }).waitFor(wait);
    assert.equal(await page.getByRole('heading', { name: 'Credentials', level: 1 }).count(), 0);
    assert.equal(await page.title(), 'Page not found · AEGIS');

    await page.reload();
    await page.getByRole('heading', { name: 'Page not found', level: 1 }).waitFor(wait);
  });

  it('lists every alert type', async () => {
    await enqueueAlert(t.vault.db.kysely, { type: 'daily_report', conditionKey: 'daily_report:dashboard-test', credentialId: null, credentialName: '*', message: 'Daily report' }, new Date());
    await page.goto(`${baseUrl}/ui/#/alerts`);
    await page.getByRole('heading', { name: 'Alerts', level: 1 }).waitFor(wait);
    const types = await page.getByLabel('Alert type').locator('option').evaluateAll((options) => options.map((option) => option.getAttribute('value')));
    assert.deepEqual(types, ['', ...Object.keys(ALERT_TYPES)]);
    assert.ok(types.includes('audit_anomaly'));

    const row = page.getByRole('row').filter({ hasText: 'Daily report' });
    await row.waitFor(wait);
    assert.equal(await row.getByRole('cell', { name: '*', exact: true }).count(), 1);
    assert.equal(await row.getByRole('link').count(), 0);
  });

  it('hide value refocuses reveal', async () => {
    await page.goto(`${baseUrl}/ui/#/credential/app%2Fenv-key`);
    await page.getByRole('heading', { name: 'app/env-key', level: 1 }).waitFor(wait);
    await page.getByRole('button', { name: 'Reveal value' }).click();
    await confirm('Reveal');
    await page.getByRole('button', { name: 'Hide value' }).click();
    await page.getByLabel('Revealed value').waitFor({ state: 'detached', ...wait });
    const focused = await page.evaluate(() => (globalThis as unknown as BrowserGlobals).document.activeElement?.textContent);
    assert.equal(focused, 'Reveal value');
  });

  it('reload skips rejected sections', async () => {
    const token = await tokenWith(t, 'dashboard-no-audit', ['credentials:read']);
    await switchToken(token);
    await pauseClock();
    try {
      await page.goto(`${baseUrl}/ui/#/schedule`);
      await page.getByRole('heading', { name: 'Rotation schedule', level: 1 }).waitFor(wait);
      await page.getByRole('alert').filter({ hasText: '403' }).waitFor(wait);
      // The reload sends the schedule request, and the scheduler jobs request would go out together with it.
      const onSchedule = await requestsDuring(() => Promise.all([
        page.waitForResponse((response) => response.url().includes('/rotation/schedule'), wait),
        page.clock.runFor(5_000),
      ]));
      assert.ok(onSchedule.includes('/rotation/schedule?limit=200'), onSchedule.join(', '));
      assert.ok(!onSchedule.includes('/scheduler'), onSchedule.join(', '));

      await page.goto(`${baseUrl}/ui/#/credential/svc%2Fhealthy`);
      await page.getByRole('heading', { name: 'svc/healthy', level: 1 }).waitFor(wait);
      await page.getByRole('heading', { name: 'Recent audit entries' }).waitFor(wait);
      await page.getByRole('alert').filter({ hasText: '403' }).nth(1).waitFor(wait);
      const onCredential = await requestsDuring(() => Promise.all([
        page.waitForResponse((response) => response.url().includes('/health-checks'), wait),
        page.clock.runFor(5_000),
      ]));
      assert.ok(onCredential.includes('/credentials/svc%2Fhealthy'), onCredential.join(', '));
      assert.deepEqual(onCredential.filter((request) => request.startsWith('/audit/log')), []);
      assert.equal(await page.getByRole('alert').filter({ hasText: 'audit:read' }).count(), 2);
    } finally {
      await page.clock.resume();
    }
  });

  it('unreached credential loads nothing more', async () => {
    const token = await tokenWith(t, 'dashboard-team-a', ['credentials:read', 'audit:read'], { namePatterns: ['team-a/*'] });
    await switchToken(token);
    // The token gets 403 for a name outside its limits whether or not it exists, as for svc/healthy here.
    const requested = await requestsDuring(async () => {
      await page.goto(`${baseUrl}/ui/#/credential/svc%2Fhealthy`);
      await page.getByRole('alert').filter({ hasText: '403' }).waitFor(wait);
    });
    assert.ok(requested.includes('/credentials/svc%2Fhealthy'), requested.join(', '));
    assert.deepEqual(requested.filter((request) => /\/versions|\/health-checks|\/rotation\/history|\/audit\/log/.test(request)), []);
    assert.equal(await page.getByRole('alert').count(), 1);
  });

  it('clears results of a rejected filter', async () => {
    await switchToken(t.adminToken);
    await pauseClock();
    try {
      await page.locator('tr[data-name="app/env-key"]').waitFor(wait);
      await page.getByLabel('Tag').fill('bad tag!');
      await page.getByLabel('Tag').press('Enter');
      await page.getByRole('alert').filter({ hasText: '400' }).waitFor(wait);
      assert.equal(await page.locator('tbody tr').count(), 0);
      assert.equal(await page.locator('.tile').count(), 0);
      assert.equal(await page.locator('.page-summary').count(), 0);

      // The page sends this request after the reload ran, so a request of the reload would come before it.
      const requested = await requestsDuring(async () => {
        await page.clock.runFor(5_000);
        await page.evaluate(() => fetch('/ui/dashboard.css'));
      });
      assert.deepEqual(requested, ['/ui/dashboard.css']);

      await page.getByLabel('Tag').fill('web');
      await page.getByLabel('Tag').press('Enter');
      await page.locator('tr[data-name="app/env-key"]').waitFor(wait);
      assert.equal(await page.getByRole('alert').count(), 0);
    } finally {
      await page.clock.resume();
    }
  });

  it('requests no favicon', () => {
    assert.equal(faviconRequests, 0);
    assert.deepEqual(cspViolations, []);
  });
});
