import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { callJson, emit, log, percentile, shortMode } from './common.js';
import { seedCredentials } from './seed.js';
import { adminTokenOf, buildServerCode, startAegis, startBare, stopServer, type ChildServer } from './servers.js';

/**
 * B3: p95 of `GET /health/dashboard` (first page of 50, summary counts, newest alerts) with 10,000 and
 * with 100,000 credentials on SQLite. Requests go one at a time over a keep-alive connection to
 * `aegis serve`, which runs in a child process and logs at info level to a file. The baseline is the
 * bare Fastify app returning the same body on the same path, measured in the same run.
 */
const requests = shortMode ? 40 : 200;
const warmUp = 10;
const sizes = [
  { id: 'B3.1', count: 10_000, maxP95Ms: 50 },
  { id: 'B3.2', count: 100_000, maxP95Ms: 500 },
];

/** Sends `requests` sequential GET requests and returns their latencies in milliseconds; each must be 200. */
async function timeRequests(url: string, token: string, check: (json: any) => void): Promise<number[]> {
  const latencies: number[] = [];
  for (let i = 0; i < warmUp + requests; i += 1) {
    const started = performance.now();
    const response = await callJson(url, token);
    const elapsed = performance.now() - started;
    if (response.status !== 200) throw new Error(`GET ${url} returned ${response.status}: ${response.text.slice(0, 500)}`);
    check(response.json);
    if (i >= warmUp) latencies.push(elapsed);
  }
  return latencies;
}

const buildDir = await buildServerCode();
try {
  for (const size of sizes) {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'aegis-bench-b3-'));
    try {
      const seedStarted = performance.now();
      await seedCredentials(dir, size.count);
      log(`seeded ${size.count} credentials in ${Math.round(performance.now() - seedStarted)} ms`);

      let aegis: ChildServer | undefined;
      let body: unknown;
      let aegisLatencies: number[];
      try {
        aegis = await startAegis(buildDir, { env: { AEGIS_DATA_DIR: dir, AEGIS_LOG_LEVEL: 'info', AEGIS_SCHEDULER: 'off' }, logFile: path.join(dir, 'aegis.log') });
        aegisLatencies = await timeRequests(`${aegis.url}/health/dashboard`, adminTokenOf(aegis), (json) => {
          if (json.summary.total !== size.count || json.credentials.length !== 50) {
            throw new Error(`the dashboard counted ${json.summary.total} credentials and listed ${json.credentials.length}; expected ${size.count} and 50`);
          }
          body = json;
        });
      } finally {
        if (aegis) await stopServer(aegis);
      }
      const bodyFile = path.join(dir, 'body.json');
      fs.writeFileSync(bodyFile, JSON.stringify(body));

      const bare = await startBare(buildDir, '/health/dashboard', bodyFile);
      let bareLatencies: number[];
      try {
        bareLatencies = await timeRequests(`${bare.url}/health/dashboard`, 'unused', () => {});
      } finally {
        await stopServer(bare);
      }

      const p95 = percentile(aegisLatencies, 0.95);
      const p50 = percentile(aegisLatencies, 0.5);
      const bareP95 = percentile(bareLatencies, 0.95);
      const bytes = Buffer.byteLength(JSON.stringify(body));
      log(`${size.count} credentials: p50 ${p50.toFixed(1)} ms, p95 ${p95.toFixed(1)} ms; bare route with the same ${bytes}-byte body: p95 ${bareP95.toFixed(1)} ms`);
      emit({
        id: size.id,
        workload: `GET /health/dashboard, ${size.count.toLocaleString('en')} credentials, ${requests} sequential requests, info log to a file, SQLite`,
        bar: `p95 <= ${size.maxP95Ms} ms`,
        figure: `p95 ${p95.toFixed(1)} ms (p50 ${p50.toFixed(1)} ms; bare: p95 ${bareP95.toFixed(1)} ms)`,
        p95_ms: Number(p95.toFixed(1)),
        baseline_p95_ms: Number(bareP95.toFixed(1)),
        ratio_to_baseline: Number((p95 / bareP95).toFixed(1)),
        holds: p95 <= size.maxP95Ms,
        baseline_note: `${size.id} compares with a bare Fastify route returning the same ${bytes}-byte dashboard body on the same path; the ratio is AEGIS's p95 over the bare route's. Seeding copies one credential's rows, which is valid because the dashboard never decrypts a value.`,
      });
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }
} finally {
  fs.rmSync(buildDir, { recursive: true, force: true });
}
