import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { callJson, emit, log, percentile, shortMode } from './common.js';
import { seedCredentials } from './seed.js';
import { adminTokenOf, buildServerCode, residentBytes, startAegis, startAegisFromSource, startBare, stopServer, type ChildServer, type StartOptions } from './servers.js';

/**
 * B8.1: time from spawning `aegis serve` on an empty data folder (new master key, migrations, first admin
 * token) until its first response to GET /health, median of several starts, against the same time for
 * the bare Fastify app. B8.2: resident memory of `aegis serve` with 100,000 credentials, idle after two
 * dashboard requests, against the bare app idle after serving the same body twice.
 */
const starts = shortMode ? 3 : 7;
const sourceStarts = shortMode ? 1 : 3;
const idleMs = 3_000;
const credentialCount = 100_000;
const maxStartMs = 1_000;
const maxRssBytes = 150 * 2 ** 20;

/** Spawns a server, sends one GET and returns the milliseconds from spawn to the response. */
async function timeFirstResponse(start: () => Promise<ChildServer>, route: string): Promise<number> {
  const started = performance.now();
  const server = await start();
  try {
    const response = await fetch(server.url + route);
    await response.arrayBuffer();
    const elapsed = performance.now() - started;
    if (response.status !== 200) throw new Error(`GET ${route} returned ${response.status}`);
    return elapsed;
  } finally {
    await stopServer(server);
  }
}

/** Waits `idleMs` and returns the largest of the RSS samples taken meanwhile. */
async function idleRss(pid: number): Promise<number> {
  let largest = 0;
  for (let waited = 0; waited < idleMs; waited += 500) {
    await new Promise((resolve) => setTimeout(resolve, 500));
    largest = Math.max(largest, residentBytes(pid));
  }
  return largest;
}

const mib = (bytes: number) => bytes / 2 ** 20;
const buildDir = await buildServerCode();
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'aegis-bench-b8-'));
try {
  const emptyVault = (run: number): StartOptions => ({ env: { AEGIS_DATA_DIR: path.join(work, `empty-${run}`), AEGIS_LOG_LEVEL: 'info' } });
  const bodyFile = path.join(work, 'health.json');
  fs.writeFileSync(bodyFile, JSON.stringify({ status: 'ok' }));
  const aegisTimes: number[] = [];
  const bareTimes: number[] = [];
  // Alternating the two spreads the other processes' load on the machine over both.
  for (let run = 0; run < starts; run += 1) {
    aegisTimes.push(await timeFirstResponse(() => startAegis(buildDir, emptyVault(run)), '/health'));
    bareTimes.push(await timeFirstResponse(() => startBare(buildDir, '/health', bodyFile), '/health'));
  }
  const sourceTimes: number[] = [];
  for (let run = 0; run < sourceStarts; run += 1) {
    sourceTimes.push(await timeFirstResponse(() => startAegisFromSource(emptyVault(starts + run)), '/health'));
  }
  const startMs = percentile(aegisTimes, 0.5);
  const bareMs = percentile(bareTimes, 0.5);
  const sourceMs = percentile(sourceTimes, 0.5);
  log(`spawn to first response: AEGIS ${aegisTimes.map(Math.round).join(', ')} ms; bare ${bareTimes.map(Math.round).join(', ')} ms; AEGIS through tsx ${sourceTimes.map(Math.round).join(', ')} ms`);
  emit({
    id: 'B8.1',
    workload: `start-up on an empty database: spawn of aegis serve to the first GET /health response, median of ${starts}, SQLite`,
    bar: `<= ${maxStartMs} ms`,
    figure: `${Math.round(startMs)} ms (bare: ${Math.round(bareMs)} ms; from the TypeScript sources through tsx: ${Math.round(sourceMs)} ms)`,
    start_ms: Math.round(startMs),
    baseline_ms: Math.round(bareMs),
    source_start_ms: Math.round(sourceMs),
    ratio_to_baseline: Number((startMs / bareMs).toFixed(2)),
    holds: startMs <= maxStartMs,
    baseline_note: 'B8.1 compares with spawning the bare Fastify app and getting its first response, alternated with the AEGIS starts in the same run, so Node.js start-up is in both. Both run as JavaScript transpiled by esbuild, as `npm run build` ships it; the figure in brackets loads the sources through tsx.',
  });

  const dir = path.join(work, 'large');
  await seedCredentials(dir, credentialCount);
  let aegisRss: number;
  const aegis = await startAegis(buildDir, { env: { AEGIS_DATA_DIR: dir, AEGIS_LOG_LEVEL: 'info', AEGIS_SCHEDULER: 'off' }, logFile: path.join(dir, 'aegis.log') });
  try {
    const token = adminTokenOf(aegis);
    for (let i = 0; i < 2; i += 1) {
      const dashboard = await callJson(`${aegis.url}/health/dashboard`, token);
      if (dashboard.status !== 200 || dashboard.json.summary.total !== credentialCount) throw new Error(`GET /health/dashboard returned ${dashboard.status}: ${dashboard.text.slice(0, 300)}`);
      fs.writeFileSync(bodyFile, dashboard.text);
    }
    aegisRss = await idleRss(aegis.pid);
  } finally {
    await stopServer(aegis);
  }
  let bareRss: number;
  const bare = await startBare(buildDir, '/health/dashboard', bodyFile);
  try {
    for (let i = 0; i < 2; i += 1) await (await fetch(`${bare.url}/health/dashboard`)).arrayBuffer();
    bareRss = await idleRss(bare.pid);
  } finally {
    await stopServer(bare);
  }
  log(`idle RSS: AEGIS ${mib(aegisRss).toFixed(1)} MiB with ${credentialCount} credentials; bare ${mib(bareRss).toFixed(1)} MiB`);
  emit({
    id: 'B8.2',
    workload: `idle RSS of aegis serve with ${credentialCount.toLocaleString('en')} credentials after two GET /health/dashboard, scheduler off, SQLite`,
    bar: '<= 150 MiB',
    figure: `${mib(aegisRss).toFixed(1)} MiB (bare: ${mib(bareRss).toFixed(1)} MiB)`,
    rss_mib: Number(mib(aegisRss).toFixed(1)),
    baseline_rss_mib: Number(mib(bareRss).toFixed(1)),
    ratio_to_baseline: Number((aegisRss / bareRss).toFixed(2)),
    holds: aegisRss <= maxRssBytes,
    baseline_note: `B8.2 compares with the bare Fastify app idle after serving the same dashboard body twice. RSS is the largest /proc VmRSS sample over ${idleMs / 1000} s of idling.`,
  });
} finally {
  fs.rmSync(work, { recursive: true, force: true });
  fs.rmSync(buildDir, { recursive: true, force: true });
}
