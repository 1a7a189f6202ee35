import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { ManualClock } from '../src/lib/clock.js';
import type { Caller } from '../src/tokens/caller.js';
import { destroyTestVault, openTestVault, type TestVault } from '../test/helpers/test-vault.js';

/**
 * D1: how long the dashboard overview takes to become usable in Chromium with 10,000 credentials,
 * against the same page with 10 credentials in the same run. "Usable" means the tiles show the full
 * count and the first page of 50 rows is in the table, timed from the start of a reload.
 */
const chromiumPath = process.env.AEGIS_CHROMIUM ?? '/usr/bin/chromium';
const chromiumArgs = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];
const runs = Number(process.env.BENCH_RUNS ?? (process.env.AEGIS_BENCH_SHORT === '1' ? 3 : 7));
const largeCount = 10_000;
const smallCount = 10;

class WallClock extends ManualClock {
  override now(): Date {
    return new Date();
  }
}

const seeder: Caller = { actor: 'bench-seed', tokenId: null, scopes: ['admin'], namePatterns: [], tags: [], ipAddress: null };

async function seededVault(count: number): Promise<{ t: TestVault; baseUrl: string }> {
  const t = await openTestVault('sqlite', { clock: new WallClock() });
  const hour = 3_600_000;
  for (let i = 0; i < count; i += 1) {
    // Every 7th credential expires within a day, so the table and the tiles show several statuses.
    const expiresAt = i % 7 === 0 ? new Date(Date.now() + 20 * hour).toISOString() : null;
    await t.vault.registry.create(seeder, {
      name: `bench/cred-${String(i).padStart(5, '0')}`,
      credential_type: 'httpHeaderAuth',
      provider: 'api',
      expires_at: expiresAt,
      tags: [i % 2 === 0 ? 'even' : 'odd'],
    });
  }
  await t.app.listen({ host: '127.0.0.1', port: 0 });
  const address = t.app.server.address();
  if (!address || typeof address !== 'object') throw new Error('the test server has no TCP address');
  return { t, baseUrl: `http://127.0.0.1:${address.port}` };
}

/** Returns the median time, in milliseconds, from a reload until the overview shows `count` credentials and its first page. */
async function timeOverview(page: Page, baseUrl: string, token: string, count: number): Promise<number> {
  await page.goto(`${baseUrl}/ui/`);
  await page.getByLabel('API token').fill(token);
  await page.getByRole('button', { name: 'Sign in' }).click();
  const expectedRows = Math.min(count, 50);
  const usable = async () => {
    await page.locator('.page-summary', { hasText: `of ${count}` }).waitFor({ timeout: 60_000 });
    await page.locator(`tbody tr:nth-child(${expectedRows})`).waitFor({ timeout: 60_000 });
  };
  await usable();

  const times: number[] = [];
  for (let run = 0; run < runs; run += 1) {
    const started = performance.now();
    await page.reload();
    await usable();
    times.push(performance.now() - started);
  }
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)]!;
}

if (!fs.existsSync(chromiumPath)) {
  throw new Error(`Chromium not found at ${chromiumPath}; install it or set AEGIS_CHROMIUM to its executable. D1 needs a real browser.`);
}

const build = spawnSync(process.execPath, ['scripts/build-web.mjs'], { encoding: 'utf8' });
if (build.status !== 0) throw new Error(`web build failed: ${build.stderr}`);

const seedStarted = performance.now();
const large = await seededVault(largeCount);
process.stderr.write(`seeded ${largeCount} credentials in ${Math.round(performance.now() - seedStarted)} ms\n`);
const small = await seededVault(smallCount);

const profileDir = fs.mkdtempSync(path.join(os.tmpdir(), 'aegis-bench-chromium-'));
let context: BrowserContext | undefined;
let largeMs: number;
let smallMs: number;
try {
  context = await chromium.launchPersistentContext(profileDir, { executablePath: chromiumPath, headless: true, args: chromiumArgs, viewport: { width: 1400, height: 900 } });
  const page = context.pages()[0] ?? (await context.newPage());
  smallMs = await timeOverview(page, small.baseUrl, small.t.adminToken, smallCount);
  largeMs = await timeOverview(page, large.baseUrl, large.t.adminToken, largeCount);
} finally {
  await context?.close();
  fs.rmSync(profileDir, { recursive: true, force: true });
  await destroyTestVault(large.t);
  await destroyTestVault(small.t);
}
process.stderr.write(`overview usable: ${Math.round(smallMs)} ms with ${smallCount}, ${Math.round(largeMs)} ms with ${largeCount} (median of ${runs})\n`);

const ratio = largeMs / smallMs;
const result = {
  id: 'D1',
  workload: `dashboard overview usable in Chromium (tiles and first 50 rows after a reload), ${largeCount.toLocaleString('en')} credentials, SQLite`,
  bar: `<= 2 x the same page with ${smallCount} credentials, same run`,
  figure: `${Math.round(largeMs)} ms (${smallCount} credentials: ${Math.round(smallMs)} ms)`,
  ratio_to_baseline: Number(ratio.toFixed(2)),
  holds: ratio <= 2,
  baseline_note: `D1 compares with the same overview, browser and server code on a vault of ${smallCount} credentials; both load one page of 50 through GET /credentials, so the difference is the server's count and page queries over ${largeCount.toLocaleString('en')} rows.`,
  machine: { cpus: os.cpus().length, cpu: os.cpus()[0]?.model, memory_gib: Math.round(os.totalmem() / 2 ** 30), node: process.version },
};
process.stdout.write(`${JSON.stringify(result)}\n`);
