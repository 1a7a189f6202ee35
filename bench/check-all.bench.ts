import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { request } from 'undici';
import { loadConfig } from '../src/config/config.js';
import { buildApp } from '../src/http/app.js';
import { createLogger } from '../src/lib/logger.js';
import { localCaller } from '../src/tokens/caller.js';
import { openVault } from '../src/vault.js';

/**
 * B4: `POST /health/check-all` over 10,000 api credentials whose test endpoint responds after 20 ms,
 * with AEGIS_HEALTH_CONCURRENCY=50, on SQLite. The bar is a wall time of at most 1.25 × (10,000 × 20 ms ÷ 50)
 * = 5 s and at most 100 MB of RSS growth during the run. The baseline, measured in the same run, is the
 * same 10,000 requests sent by a bare loop of undici's request() (the client the api provider uses) at the same concurrency, without AEGIS.
 * The stand-in endpoint runs in a child process on 127.0.0.1, so its work does not share AEGIS's event loop.
 */
const credentialCount = Number(process.env.BENCH_CREDENTIALS ?? (process.env.AEGIS_BENCH_SHORT === '1' ? 1_000 : 10_000));
const concurrency = 50;
const delayMs = 20;
const boundMs = (1.25 * credentialCount * delayMs) / concurrency;
const rssLimitBytes = 100 * 2 ** 20;

const stubSource = `
const http = require('node:http');
const server = http.createServer((request, response) => {
  request.resume();
  setTimeout(() => { response.writeHead(200); response.end(); }, ${delayMs});
});
server.listen(0, '127.0.0.1', () => process.stdout.write(server.address().port + '\\n'));
`;

async function startStub(): Promise<{ url: string; child: ChildProcess }> {
  const child = spawn(process.execPath, ['-e', stubSource], { stdio: ['ignore', 'pipe', 'inherit'] });
  const port = await new Promise<string>((resolve, reject) => {
    child.once('error', reject);
    child.stdout!.once('data', (chunk: Buffer) => resolve(chunk.toString('utf8').trim()));
  });
  return { url: `http://127.0.0.1:${port}`, child };
}

/** Sends `count` GET requests to `url`, `concurrency` at a time; returns the wall time in milliseconds. */
async function bareFetchLoop(url: string, count: number): Promise<number> {
  let next = 0;
  const started = performance.now();
  const worker = async () => {
    while (next < count) {
      next += 1;
      const response = await request(url, { headers: { authorization: 'Bearer bench' }, signal: AbortSignal.timeout(10_000) });
      await response.body.dump();
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return performance.now() - started;
}

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'aegis-bench-'));
const stub = await startStub();
const quiet = new Writable({ write: (_chunk, _encoding, callback) => callback() });
const config = loadConfig({ AEGIS_DATA_DIR: dir, AEGIS_LOG_LEVEL: 'warn', AEGIS_HEALTH_CONCURRENCY: String(concurrency) }, dir);
const vault = await openVault(config, { log: createLogger(config.logLevel, quiet) });
try {
  const adminToken = (await vault.tokens.createInitialAdmin())!;
  const setupStarted = performance.now();
  const caller = localCaller('bench-setup');
  for (let index = 0; index < credentialCount; index += 1) {
    const name = `bench/key-${String(index).padStart(5, '0')}`;
    await vault.registry.create(caller, {
      name,
      credential_type: 'httpHeaderAuth',
      provider: 'api',
      value: `bench-value-${index}`,
      provider_config: { test: { method: 'GET', url: `${stub.url}/check/${index}`, headers: { authorization: 'Bearer {{value}}' } } },
    });
  }
  process.stderr.write(`created ${credentialCount} credentials in ${Math.round(performance.now() - setupStarted)} ms\n`);

  const baselineMs = await bareFetchLoop(`${stub.url}/check/baseline`, credentialCount);
  process.stderr.write(`baseline (bare request loop, concurrency ${concurrency}): ${Math.round(baselineMs)} ms\n`);

  const app = await buildApp(vault);
  await app.ready();
  const rssBefore = process.memoryUsage().rss;
  let rssPeak = rssBefore;
  const sampler = setInterval(() => {
    rssPeak = Math.max(rssPeak, process.memoryUsage().rss);
  }, 20);
  const started = performance.now();
  const response = await app.inject({ method: 'POST', url: '/health/check-all', headers: { authorization: `Bearer ${adminToken}` } });
  const wallMs = performance.now() - started;
  clearInterval(sampler);
  rssPeak = Math.max(rssPeak, process.memoryUsage().rss);
  const body = response.json() as { checked: number; healthy: number; unhealthy: number };
  await app.close();
  if (response.statusCode !== 200 || body.checked !== credentialCount || body.healthy !== credentialCount) {
    throw new Error(`check-all returned ${response.statusCode}: checked ${body.checked}, healthy ${body.healthy} of ${credentialCount}`);
  }
  const rssGrowthMib = (rssPeak - rssBefore) / 2 ** 20;
  process.stderr.write(`check-all: ${Math.round(wallMs)} ms (bound ${boundMs} ms), RSS growth ${rssGrowthMib.toFixed(1)} MiB\n`);

  const result = {
    id: 'B4',
    workload: `POST /health/check-all, ${credentialCount.toLocaleString('en-US')} api credentials, endpoint responding in ${delayMs} ms, concurrency ${concurrency}, SQLite`,
    bar: `wall time <= ${(boundMs / 1000).toFixed(2)} s; RSS growth <= 100 MB`,
    figure: `${(wallMs / 1000).toFixed(2)} s; RSS growth ${rssGrowthMib.toFixed(1)} MiB`,
    wall_ms: Math.round(wallMs),
    baseline_ms: Math.round(baselineMs),
    rss_growth_mib: Number(rssGrowthMib.toFixed(1)),
    ratio_to_baseline: Number((wallMs / baselineMs).toFixed(3)),
    holds: wallMs <= boundMs && rssPeak - rssBefore <= rssLimitBytes,
    baseline_note: `B4 compares with the same ${credentialCount.toLocaleString('en-US')} requests to the same endpoint sent by a bare loop of undici's request(), ${concurrency} at a time, without AEGIS.`,
    machine: { cpus: os.cpus().length, cpu: os.cpus()[0]?.model, memory_gib: Math.round(os.totalmem() / 2 ** 30), node: process.version },
  };
  process.stdout.write(`${JSON.stringify(result)}\n`);
} finally {
  await vault.close();
  stub.child.kill();
  fs.rmSync(dir, { recursive: true, force: true });
}
