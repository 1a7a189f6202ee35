import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import pg from 'pg';
import { callJson, emit, loadTest, log, machine, shortMode, type LoadResult } from './common.js';
import { processCpu, processesCpu } from './cpu.js';
import { adminTokenOf, buildServerCode, startAegis, startBare, startFloor, stopServer, type ChildServer } from './servers.js';

/**
 * B1 and B2: autocannon in this process sends `GET /credentials/{name}` with a valid read token to
 * `aegis serve`, which runs in a child process and logs at info level to a file. The same load then goes
 * to the bare Fastify baseline, which returns the same JSON body for the same path. The run fails unless
 * every response is 200 and the audit log grew by one entry per response.
 *
 * B1 also measures its floor (bench/floor-server.ts), a one-thread audited read with nothing else, so
 * that BENCHMARKS.md can tell what the audited read costs on the machine from what AEGIS adds to it.
 *
 * Each measured run also reports the CPU time per response of the server, its event loop and autocannon,
 * and for B2 of PostgreSQL. From these, B1 and B2 state how much CPU time per read the bar leaves AEGIS
 * on this machine's cores.
 *
 * BENCH_CPU_PROF=<folder> starts the AEGIS child with `node --cpu-prof` and keeps the profile there.
 */
const postgresUrl = process.env.AEGIS_TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const connections = 16;
const seconds = shortMode ? 3 : 10;
const warmUpSeconds = shortMode ? 1 : 2;
const credentialName = 'bench-read';

export interface ReadBenchmark {
  id: 'B1' | 'B2';
  dialect: 'sqlite' | 'postgres';
  /** Lowest accepted throughput as a share of the baseline's. */
  minRatio: number;
  /** Highest accepted p99 in milliseconds, or undefined where the bar sets none. */
  maxP99Ms: number | undefined;
}

/** Counts the rows of the audit log in the benchmark's SQLite file or PostgreSQL schema. */
async function auditCount(dialect: ReadBenchmark['dialect'], dir: string, schema: string): Promise<number> {
  if (dialect === 'sqlite') {
    const db = new Database(path.join(dir, 'aegis.db'), { readonly: true });
    try {
      return (db.prepare('select count(*) as count from aegis_audit_log').get() as { count: number }).count;
    } finally {
      db.close();
    }
  }
  const client = new pg.Client({ connectionString: postgresUrl });
  await client.connect();
  try {
    const result = await client.query<{ count: string }>(`select count(*) as count from "${schema}".aegis_audit_log`);
    return Number(result.rows[0]!.count);
  } finally {
    await client.end();
  }
}

/**
 * Counts the audit log once it stops growing. autocannon stops at its deadline without waiting for the
 * requests still in flight, one per connection at most, and the server still serves and audits those.
 */
async function settledAuditCount(dialect: ReadBenchmark['dialect'], dir: string, schema: string): Promise<number> {
  let count = await auditCount(dialect, dir, schema);
  for (;;) {
    await new Promise((resolve) => setTimeout(resolve, 500));
    const next = await auditCount(dialect, dir, schema);
    if (next === count) return count;
    count = next;
  }
}

async function dropSchema(schema: string): Promise<void> {
  const client = new pg.Client({ connectionString: postgresUrl });
  await client.connect();
  try {
    await client.query(`drop schema if exists "${schema}" cascade`);
  } finally {
    await client.end();
  }
}

/** Creates the credential and a token with only credentials:read, and returns the token and the response body to serve from the baseline. */
async function prepare(server: ChildServer): Promise<{ token: string; body: unknown }> {
  const admin = adminTokenOf(server);
  const created = await callJson(`${server.url}/credentials`, admin, 'POST', {
    name: credentialName,
    credential_type: 'apiKey',
    provider: 'api',
    value: crypto.randomBytes(24).toString('base64url'),
    tags: ['bench'],
  });
  if (created.status !== 201) throw new Error(`POST /credentials returned ${created.status}: ${created.text}`);
  const token = await callJson(`${server.url}/tokens`, admin, 'POST', { actor: 'bench-agent', scopes: ['credentials:read'] });
  if (token.status !== 201) throw new Error(`POST /tokens returned ${token.status}: ${token.text}`);
  const read = await callJson(`${server.url}/credentials/${credentialName}`, token.json.token);
  if (read.status !== 200) throw new Error(`GET /credentials/${credentialName} returned ${read.status}: ${read.text}`);
  return { token: token.json.token, body: read.json };
}

function checkClean(label: string, result: LoadResult): void {
  if (result.non200 > 0 || result.errors > 0 || result.timeouts > 0) {
    throw new Error(`${label}: ${result.non200} responses other than 200, ${result.errors} errors, ${result.timeouts} timeouts of ${result.responses}`);
  }
}

/** CPU time per response in microseconds, spent during one measured run. */
interface CpuPerResponse {
  /** The server process, all its threads. */
  server: number;
  /** The server's main thread, which runs its event loop. */
  eventLoop: number;
  /** This process, which runs autocannon. */
  loadGenerator: number;
  /** PostgreSQL's server processes, for B2. */
  database: number | undefined;
}

type MeasuredLoad = LoadResult & { cpu: CpuPerResponse };

/** Runs the load on a server in a child process and adds the CPU time that it, the load generator and PostgreSQL spent per response. */
async function measuredLoad(url: string, headers: Record<string, string>, pid: number, withDatabase: boolean): Promise<MeasuredLoad> {
  const databaseBefore = withDatabase ? processesCpu('postgres') : 0;
  const serverBefore = processCpu(pid);
  const loadBefore = process.cpuUsage();
  const result = await loadTest(url, headers, connections, seconds);
  const load = process.cpuUsage(loadBefore);
  const serverAfter = processCpu(pid);
  const perResponse = (micros: number) => Number((micros / Math.max(1, result.responses)).toFixed(1));
  return {
    ...result,
    cpu: {
      server: perResponse(serverAfter.all - serverBefore.all),
      eventLoop: perResponse(serverAfter.main - serverBefore.main),
      loadGenerator: perResponse(load.user + load.system),
      database: withDatabase ? perResponse(processesCpu('postgres') - databaseBefore) : undefined,
    },
  };
}

function describe(result: LoadResult | MeasuredLoad): string {
  const cpu = 'cpu' in result ? `; CPU per response: server ${result.cpu.server} us (event loop ${result.cpu.eventLoop} us), autocannon ${result.cpu.loadGenerator} us${result.cpu.database === undefined ? '' : `, PostgreSQL ${result.cpu.database} us`}` : '';
  return `${Math.round(result.requestsPerSecond)} requests/s, p50 ${result.p50} ms, p99 ${result.p99} ms, ${result.responses} responses${cpu}`;
}

/** Measures B1's floor on a SQLite file of its own in `dir`, and checks that it stored one audit row per response. */
async function runFloor(buildDir: string, dir: string, token: string, body: unknown, url: string): Promise<MeasuredLoad> {
  const database = path.join(dir, 'floor.db');
  const floor = await startFloor(buildDir, {
    env: { FLOOR_TOKEN: token, FLOOR_CREDENTIAL: credentialName, FLOOR_BODY_FILE: path.join(dir, 'body.json'), FLOOR_DATABASE: database },
    logFile: path.join(dir, 'floor.log'),
  });
  const count = () => {
    const db = new Database(database, { readonly: true });
    try {
      return (db.prepare('select count(*) as count from audit').get() as { count: number }).count;
    } finally {
      db.close();
    }
  };
  const headers = { authorization: `Bearer ${token}` };
  let result: MeasuredLoad;
  let audited: number;
  try {
    const sample = await callJson(floor.url + url, token);
    if (JSON.stringify(sample.json) !== JSON.stringify(body)) throw new Error(`the floor returned ${sample.status} with a body other than AEGIS's`);
    checkClean('floor warm-up', await loadTest(floor.url + url, headers, connections, warmUpSeconds));
    // As for AEGIS, the warm-up's last requests may still be committing.
    let before = count();
    for (let settled = false; !settled; ) {
      await new Promise((resolve) => setTimeout(resolve, 500));
      const next = count();
      settled = next === before;
      before = next;
    }
    result = await measuredLoad(floor.url + url, headers, floor.pid, false);
    await stopServer(floor);
    audited = count() - before;
  } finally {
    await stopServer(floor);
  }
  log(`floor: ${describe(result)}; ${audited} audit rows written`);
  checkClean('floor', result);
  if (audited < result.responses || audited > result.responses + connections) {
    throw new Error(`the floor's audit table grew by ${audited} rows for ${result.responses} responses`);
  }
  return result;
}

/** Runs B1 (SQLite) or B2 (PostgreSQL) and prints its result line. */
export async function runReadBenchmark(bench: ReadBenchmark): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `aegis-bench-${bench.id.toLowerCase()}-`));
  const schema = `bench_${bench.id.toLowerCase()}_${crypto.randomBytes(4).toString('hex')}`;
  const buildDir = await buildServerCode();
  const profileDir = process.env.BENCH_CPU_PROF;
  const url = `/credentials/${credentialName}`;
  try {
    const env: Record<string, string> = {
      AEGIS_DATA_DIR: dir,
      AEGIS_LOG_LEVEL: 'info',
      AEGIS_SCHEDULER: 'off',
      ...(bench.dialect === 'postgres' ? { DATABASE_URL: postgresUrl, AEGIS_DATABASE_SCHEMA: schema } : {}),
    };
    const nodeOptions = profileDir ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`] : [];
    const aegis = await startAegis(buildDir, { env, logFile: path.join(dir, 'aegis.log'), nodeOptions });
    let aegisResult: MeasuredLoad;
    let audited: number;
    let token: string;
    let body: unknown;
    try {
      ({ token, body } = await prepare(aegis));
      fs.writeFileSync(path.join(dir, 'body.json'), JSON.stringify(body));
      const headers = { authorization: `Bearer ${token}` };
      checkClean('AEGIS warm-up', await loadTest(aegis.url + url, headers, connections, warmUpSeconds));
      const before = await settledAuditCount(bench.dialect, dir, schema);
      aegisResult = await measuredLoad(aegis.url + url, headers, aegis.pid, bench.dialect === 'postgres');
      await stopServer(aegis);
      audited = (await auditCount(bench.dialect, dir, schema)) - before;
    } finally {
      await stopServer(aegis);
    }
    log(`AEGIS: ${describe(aegisResult)}; ${audited} audit entries written`);
    checkClean('AEGIS', aegisResult);
    // The requests in flight at the deadline are audited but not counted as responses (see settledAuditCount).
    if (audited < aegisResult.responses || audited > aegisResult.responses + connections) {
      throw new Error(`the audit log grew by ${audited} entries for ${aegisResult.responses} responses (expected ${aegisResult.responses} to ${aegisResult.responses + connections})`);
    }

    const bare = await startBare(buildDir, '/credentials/:name', path.join(dir, 'body.json'));
    let bareResult: MeasuredLoad;
    try {
      checkClean('baseline warm-up', await loadTest(bare.url + url, {}, connections, warmUpSeconds));
      bareResult = await measuredLoad(bare.url + url, {}, bare.pid, false);
    } finally {
      await stopServer(bare);
    }
    log(`bare Fastify: ${describe(bareResult)}`);
    checkClean('baseline', bareResult);

    const floorResult = bench.dialect === 'sqlite' ? await runFloor(buildDir, dir, token, body, url) : undefined;

    const ratio = aegisResult.requestsPerSecond / bareResult.requestsPerSecond;
    // The most CPU time a read may take, in AEGIS and PostgreSQL together, for the bar to be reachable
    // at all: the machine's cores at the bar's rate, less autocannon's time per response. The lowest of
    // autocannon's figures in this run is taken, so that the budget is an upper bound.
    const cpu = aegisResult.cpu;
    const barMicros = 1e6 / (bench.minRatio * bareResult.requestsPerSecond);
    const loadGeneratorMicros = Math.min(...[aegisResult, bareResult, floorResult].flatMap((run) => (run === undefined ? [] : [run.cpu.loadGenerator])));
    const budget = Math.round(machine.cpus * barMicros - loadGeneratorMicros);
    // One event loop serves one request at a time, so at the bar's rate it has this long for each.
    const eventLoopBudget = Math.round(barMicros);
    const floorCpu = floorResult === undefined ? '' : `, floor ${floorResult.cpu.server} us`;
    const databaseCpu = cpu.database === undefined ? '' : ` and PostgreSQL ${cpu.database} us`;
    const cpuFigure = `; CPU per read: AEGIS ${cpu.server} us (event loop ${cpu.eventLoop} us)${databaseCpu}${floorCpu}, bare ${bareResult.cpu.server} us, autocannon ${cpu.loadGenerator} us; at the bar's rate, the ${machine.cpus} cores leave at most ${budget} us of CPU per read, and an event loop at most ${eventLoopBudget} us`;
    const floorFigure = floorResult === undefined ? '' : `; floor: ${Math.round(floorResult.requestsPerSecond)} requests/s, p99 ${floorResult.p99} ms`;
    const p99Bar = bench.maxP99Ms === undefined ? '' : `; p99 <= ${bench.maxP99Ms} ms`;
    const database = bench.dialect === 'sqlite' ? 'SQLite' : 'PostgreSQL';
    emit({
      id: bench.id,
      workload: `GET /credentials/{name}, read token, audited, info log to a file, ${database}, ${connections} connections, ${seconds} s`,
      bar: `>= ${bench.minRatio} x bare Fastify requests/s${p99Bar}`,
      figure: `${Math.round(aegisResult.requestsPerSecond)} requests/s, p99 ${aegisResult.p99} ms (bare: ${Math.round(bareResult.requestsPerSecond)} requests/s, p99 ${bareResult.p99} ms${floorFigure}${cpuFigure})`,
      requests_per_second: Math.round(aegisResult.requestsPerSecond),
      p99_ms: aegisResult.p99,
      baseline_requests_per_second: Math.round(bareResult.requestsPerSecond),
      audit_entries: audited,
      cpu_us_per_read: cpu.server,
      event_loop_cpu_us_per_read: cpu.eventLoop,
      autocannon_cpu_us_per_read: cpu.loadGenerator,
      ...(cpu.database === undefined ? {} : { postgres_cpu_us_per_read: cpu.database }),
      baseline_cpu_us_per_read: bareResult.cpu.server,
      cpu_budget_us_per_read: budget,
      event_loop_budget_us_per_read: eventLoopBudget,
      responses: aegisResult.responses,
      ratio_to_baseline: Number(ratio.toFixed(3)),
      ...(floorResult === undefined
        ? {}
        : {
            floor_requests_per_second: Math.round(floorResult.requestsPerSecond),
            floor_cpu_us_per_read: floorResult.cpu.server,
            floor_ratio_to_baseline: Number((floorResult.requestsPerSecond / bareResult.requestsPerSecond).toFixed(3)),
            ratio_to_floor: Number((aegisResult.requestsPerSecond / floorResult.requestsPerSecond).toFixed(3)),
          }),
      holds: ratio >= bench.minRatio && (bench.maxP99Ms === undefined || aegisResult.p99 <= bench.maxP99Ms),
      baseline_note:
        `${bench.id} compares with a bare Fastify app (no logger, token, database or audit) that returns the same JSON for GET /credentials/:name, run after AEGIS with the same ${connections} connections and ${seconds} s; the servers run as child processes and autocannon runs in the benchmark process, on the same cores.` +
        (floorResult === undefined ? '' : ' The floor in its figure runs last, under the same load: one thread that logs each request, checks the token, reads the credential from SQLite and commits one hash-chained audit row per request in groups, and nothing else (bench/floor-server.ts).'),
    });
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
    fs.rmSync(buildDir, { recursive: true, force: true });
    if (bench.dialect === 'postgres') await dropSchema(schema);
  }
}
