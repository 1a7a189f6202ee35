import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import { sql } from 'kysely';
import pg from 'pg';
import { loadConfig } from '../../src/config/config.js';
import { keyCheckValue } from '../../src/crypto/key-material.js';
import { openDatabase } from '../../src/db/database.js';
import type { CheckResult } from '../../src/doctor/check.js';
import { runDoctor } from '../../src/doctor/doctor.js';
import { ManualClock } from '../../src/lib/clock.js';
import { createLogger } from '../../src/lib/logger.js';
import { openVault } from '../../src/vault.js';
import { runCli, type CliResult } from '../helpers/cli.js';
import { dropSchema, testDialects, testPostgresUrl, type DialectName } from '../helpers/databases.js';
import { snapshotDatabase, type TableSnapshot } from '../helpers/db-snapshot.js';
import { startHttpStub, type HttpStub } from '../helpers/http-stub.js';
import { LogCapture } from '../helpers/test-vault.js';

const execFileAsync = promisify(execFile);

const webhookSecret = 'doctor-webhook-secret-0123456789';
const n8nApiKey = 'doctor-n8n-api-key-abcdef';
const sinkPassword = 'doctor-sink-password';
const sinkQueryToken = 'doctor-query-token';

/** Creates a self-signed certificate and its key with openssl, valid for `days` days. */
async function makeCertificate(folder: string, name: string, days: number): Promise<{ cert: string; key: string }> {
  const cert = path.join(folder, `${name}.crt`);
  const key = path.join(folder, `${name}.key`);
  await execFileAsync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', String(days), '-subj', '/CN=localhost']);
  fs.chmodSync(key, 0o600);
  return { cert, key };
}

/** Returns a TCP port on 127.0.0.1 that nothing listens on: one a server just gave back. */
async function closedPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

function writeKeyFile(file: string): string {
  const key = crypto.randomBytes(32).toString('base64');
  fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  fs.writeFileSync(file, `${key}\n`, { mode: 0o600 });
  return key;
}

/** Lists every file under `folder` with its size and modification time, to show nothing was written. */
function listFiles(folder: string): string[] {
  const entries: string[] = [];
  for (const entry of fs.readdirSync(folder, { recursive: true, withFileTypes: true })) {
    const full = path.join(entry.parentPath ?? entry.path, entry.name);
    const stat = fs.statSync(full);
    // A folder's modification time changes when a test adds its own files, so folders list without it.
    const details = stat.isDirectory() ? 'folder' : `${stat.size} ${stat.mtimeMs}`;
    entries.push(`${path.relative(folder, full)} ${details} ${(stat.mode & 0o777).toString(8)}`);
  }
  return entries.sort();
}

async function schemaNames(): Promise<string[]> {
  const client = new pg.Client({ connectionString: testPostgresUrl });
  await client.connect();
  try {
    const result = await client.query<{ name: string }>('select schema_name as name from information_schema.schemata');
    return result.rows.map((row) => row.name).sort();
  } finally {
    await client.end();
  }
}

/** A check as `aegis doctor --json` prints it. */
type CheckJson = Omit<CheckResult, 'dependsOn'> & { depends_on?: string };

function parseJson(result: CliResult): { ok: boolean; checks: CheckJson[] } {
  assert.equal(result.stderr, '', 'doctor wrote to stderr');
  return JSON.parse(result.stdout);
}

function findCheck(checks: CheckJson[], name: string): CheckJson {
  const check = checks.find((entry) => entry.name === name);
  assert.ok(check, `no "${name}" check in ${JSON.stringify(checks.map((entry) => entry.name))}`);
  return check;
}

/** Asserts that each named check was skipped, without a fix, because the check `dependsOn` failed. */
function assertSkipped(checks: CheckJson[], names: string[], dependsOn: string): void {
  for (const name of names) {
    const check = findCheck(checks, name);
    assert.equal(check.status, 'skip', `${name}: ${JSON.stringify(check)}`);
    assert.equal(check.depends_on, dependsOn, `${name}: ${JSON.stringify(check)}`);
    assert.equal(check.message, `not run, because the ${dependsOn} check failed`, name);
    assert.equal(check.fix, undefined, `${name} has a fix`);
  }
}

/** Asserts that the text report has a skip line for each named check. */
function assertSkippedLines(report: string, names: string[], dependsOn: string): void {
  for (const name of names) {
    assert.match(report, new RegExp(`^skip {2}${name} +not run, because the ${dependsOn} check failed$`, 'm'), `no skip line for ${name}`);
  }
}

/** A deployment as production would have it: a config file, a key file apart from the data, TLS and sinks. */
interface Deployment {
  dir: string;
  configFile: string;
  keyFile: string;
  key: string;
  schema: string;
  tls: { cert: string; key: string };
  sqlitePath: string;
  sinks: HttpStub;
  n8n: HttpStub;
}

async function createDeployment(dialect: DialectName): Promise<Deployment> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'aegis-doctor-'));
  const etc = path.join(dir, 'etc');
  fs.mkdirSync(etc, { mode: 0o700 });
  const keyFile = path.join(dir, 'keys', 'master.key');
  const key = writeKeyFile(keyFile);
  const tls = await makeCertificate(etc, 'server', 365);
  const sinks = await startHttpStub((_request, response) => response.writeHead(404).end());
  const n8n = await startHttpStub((_request, response) => response.writeHead(401).end());
  const schema = `aegis_t_${crypto.randomBytes(6).toString('hex')}`;
  const storage =
    dialect === 'postgres'
      ? `  database_url: ${testPostgresUrl}\n  database_schema: ${schema}\n`
      : '  sqlite_path: ../data/aegis.db\n';
  const configFile = path.join(etc, 'aegis.yaml');
  fs.writeFileSync(
    configFile,
    `server:
  host: 127.0.0.1
  tls:
    cert_file: server.crt
    key_file: server.key
storage:
  data_dir: ../data
${storage}keys:
  master_key_file: ../keys/master.key
sinks:
  hermes_url: ${sinks.url}/hermes
  webhooks:
    - url: ${sinks.url}/hook
      secret: ${webhookSecret}
providers:
  n8n:
    url: ${n8n.url}
    api_key: ${n8nApiKey}
`,
    { mode: 0o600 },
  );

  const config = loadConfig({ AEGIS_CONFIG: configFile }, dir);
  const vault = await openVault(config, { log: createLogger('warn', new LogCapture()) });
  await vault.tokens.createInitialAdmin();
  await vault.close();
  if (dialect === 'sqlite') fs.chmodSync(config.sqlitePath, 0o600);
  return { dir, configFile, keyFile, key, schema, tls, sqlitePath: config.sqlitePath, sinks, n8n };
}

/** Stops a deployment's stubs and deletes its folder, and its schema on PostgreSQL. */
async function removeDeployment(deployment: Deployment, dialect: DialectName): Promise<void> {
  await deployment.sinks.close();
  await deployment.n8n.close();
  if (dialect === 'postgres') await dropSchema(deployment.schema);
  fs.rmSync(deployment.dir, { recursive: true, force: true });
}

async function databaseSnapshot(deployment: Deployment): Promise<TableSnapshot> {
  const db = await openDatabase(loadConfig({ AEGIS_CONFIG: deployment.configFile }, deployment.dir));
  try {
    return await snapshotDatabase(db);
  } finally {
    await db.close();
  }
}

for (const dialect of await testDialects()) {
  describe(`aegis doctor on ${dialect}`, () => {
    let deployment: Deployment;
    let snapshotBefore: TableSnapshot;
    let filesBefore: string[];
    const outputs: string[] = [];

    /** Runs `aegis doctor --json` against the deployment with extra environment settings. */
    async function doctor(env: Record<string, string> = {}, args: string[] = []): Promise<{ result: CliResult; checks: CheckJson[]; ok: boolean }> {
      const result = await runCli([...args, 'doctor', '--json'], { AEGIS_CONFIG: deployment.configFile, ...env }, { cwd: deployment.dir });
      outputs.push(result.stdout, result.stderr);
      const report = parseJson(result);
      return { result, checks: report.checks, ok: report.ok };
    }

    /** Runs `aegis doctor` (text report) against the deployment with extra environment settings. */
    async function doctorText(env: Record<string, string> = {}, args: string[] = []): Promise<CliResult> {
      const result = await runCli([...args, 'doctor'], { AEGIS_CONFIG: deployment.configFile, ...env }, { cwd: deployment.dir });
      outputs.push(result.stdout, result.stderr);
      assert.equal(result.stderr, '', 'doctor wrote to stderr');
      return result;
    }

    before(async () => {
      deployment = await createDeployment(dialect);
      snapshotBefore = await databaseSnapshot(deployment);
      filesBefore = listFiles(deployment.dir);
    });

    after(async () => {
      await removeDeployment(deployment, dialect);
    });

    it('healthy deployment passes', async () => {
      const { result, checks, ok } = await doctor();
      assert.equal(result.code, 0, result.stdout);
      assert.equal(ok, true);
      const notOk = checks.filter((check) => check.status !== 'ok');
      assert.deepEqual(notOk, []);
      const names = checks.map((check) => check.name);
      for (const name of ['configuration', 'database', 'migrations', 'master key', 'key placement', 'file modes', 'tls certificate', 'tls key', 'listen address', 'clock', 'sink hermes', 'sink webhook 1', 'n8n']) {
        assert.ok(names.includes(name), `no "${name}" check`);
      }
      assert.ok(deployment.sinks.requests.every((request) => request.method === 'HEAD'), 'doctor sent something other than HEAD to a sink');
      assert.ok(deployment.sinks.requests.length >= 2, 'doctor did not contact the sinks');
    });

    it('text report lists every check', async () => {
      const result = await runCli(['doctor'], { AEGIS_CONFIG: deployment.configFile }, { cwd: deployment.dir });
      outputs.push(result.stdout, result.stderr);
      assert.equal(result.code, 0, result.stdout + result.stderr);
      assert.match(result.stdout, /^ok {4}configuration /m);
      assert.match(result.stdout, /^ok {4}master key /m);
      assert.match(result.stdout, /\d+ ok, 0 warning\(s\), 0 failed, 0 skipped\n$/);
      assert.doesNotMatch(result.stdout, /^skip /m);
    });

    it('wrong master key fails', async () => {
      const otherKeyFile = path.join(deployment.dir, 'other-keys', 'master.key');
      writeKeyFile(otherKeyFile);
      const { result, checks } = await doctor({ AEGIS_MASTER_KEY_FILE: otherKeyFile });
      assert.equal(result.code, 1);
      const check = findCheck(checks, 'master key');
      assert.equal(check.status, 'fail');
      assert.match(check.message, /does not hold the current master key/);
      assert.match(check.fix!, /keys\.master_key_file \(AEGIS_MASTER_KEY_FILE\)/);
      fs.rmSync(path.dirname(otherKeyFile), { recursive: true });
    });

    it('unfinished key rotation warns', async () => {
      // A deployment of its own: this test changes the key file and the database, which the others
      // compare in 'doctor wrote nothing'.
      const own = await createDeployment(dialect);
      const run = async () => {
        const result = await runCli(['doctor', '--json'], { AEGIS_CONFIG: own.configFile }, { cwd: own.dir });
        outputs.push(result.stdout, result.stderr);
        return { result, check: findCheck(parseJson(result).checks, 'master key') };
      };
      const db = await openDatabase(loadConfig({ AEGIS_CONFIG: own.configFile }, own.dir));
      try {
        // A second key, current, beside the first one left active: a rotation that stopped part-way.
        const second = crypto.randomBytes(32);
        fs.appendFileSync(own.keyFile, `${second.toString('base64')}\n`);
        await db.kysely.updateTable('aegis_master_keys').set({ state: 'active' }).execute();
        await db.kysely
          .insertInto('aegis_master_keys')
          .values({ key_id: 'mk_doctor_test', state: 'current', check_value: keyCheckValue(second), source: 'file', kdf_salt: null, created_at: '2026-12-05T00:00:00.000Z', retired_at: null })
          .execute();
        const unfinished = await run();
        assert.equal(unfinished.check.status, 'warn');
        assert.match(unfinished.check.message, /1 key\(s\) beside the current one are still active/);
        assert.match(unfinished.check.fix!, /keys rotate/);

        await db.kysely.updateTable('aegis_master_keys').set({ state: 'retired' }).execute();
        const noCurrent = await run();
        assert.equal(noCurrent.result.code, 1);
        assert.equal(noCurrent.check.status, 'fail');
        assert.match(noCurrent.check.message, /none is current/);
      } finally {
        await db.close();
        await removeDeployment(own, dialect);
      }
    });

    it('key file 0644 fails', async () => {
      fs.chmodSync(deployment.keyFile, 0o644);
      try {
        const { result, checks } = await doctor();
        assert.equal(result.code, 1);
        const modes = checks.filter((check) => check.name === 'file modes');
        const keyProblem = modes.find((check) => check.message.includes(deployment.keyFile));
        assert.ok(keyProblem, JSON.stringify(modes));
        assert.equal(keyProblem.status, 'fail');
        assert.equal(keyProblem.fix, `Run \`chmod 600 ${deployment.keyFile}\`.`);
        assert.equal(findCheck(checks, 'master key').fix, `Run \`chmod 600 ${deployment.keyFile}\`.`);
      } finally {
        fs.chmodSync(deployment.keyFile, 0o600);
      }
    });

    it('pending migrations are listed', async () => {
      const emptyDatabase: Record<string, string> =
        dialect === 'postgres' ? { AEGIS_DATABASE_SCHEMA: `aegis_t_${crypto.randomBytes(6).toString('hex')}` } : { AEGIS_SQLITE_PATH: path.join(deployment.dir, 'data', 'empty.db') };
      if (dialect === 'sqlite') fs.writeFileSync(emptyDatabase.AEGIS_SQLITE_PATH!, '', { mode: 0o600 });
      try {
        const { result, checks } = await doctor(emptyDatabase);
        assert.equal(result.code, 1);
        const check = findCheck(checks, 'migrations');
        assert.equal(check.status, 'fail');
        // On PostgreSQL the schema itself is missing, which a misspelled name would also cause.
        if (dialect === 'postgres') {
          assert.equal(check.message, `The schema ${emptyDatabase.AEGIS_DATABASE_SCHEMA} does not exist in the database, so it holds no vault yet.`);
          assert.match(check.fix!, /misspelled name creates a new, empty vault/);
        } else {
          assert.match(check.message, /^\d+ migration\(s\) are not applied: 0001_initial, 0002_rotation, /);
        }
        // The fix names the deployment's configuration file, so the command acts on this vault.
        assert.ok(check.fix!.includes(`aegis --config ${deployment.configFile} migrate`), check.fix);
        if (dialect === 'sqlite') assert.equal(fs.statSync(emptyDatabase.AEGIS_SQLITE_PATH!).size, 0, 'doctor wrote to the empty SQLite file');
        if (dialect === 'postgres') assert.ok(!(await schemaNames()).includes(emptyDatabase.AEGIS_DATABASE_SCHEMA!), 'doctor created the schema');
      } finally {
        if (dialect === 'sqlite') fs.rmSync(emptyDatabase.AEGIS_SQLITE_PATH!);
      }
    });

    it('newer schema fails', async () => {
      // A deployment of its own, because this test changes the database.
      const own = await createDeployment(dialect);
      const db = await openDatabase(loadConfig({ AEGIS_CONFIG: own.configFile }, own.dir));
      try {
        await sql`insert into aegis_migrations (name, timestamp) values ('9999_from_a_newer_build', '2027-01-01T00:00:00.000Z')`.execute(db.kysely);
        const result = await runCli(['doctor', '--json'], { AEGIS_CONFIG: own.configFile }, { cwd: own.dir });
        outputs.push(result.stdout, result.stderr);
        assert.equal(result.code, 1);
        const check = findCheck(parseJson(result).checks, 'migrations');
        assert.equal(check.status, 'fail');
        assert.match(check.message, /was migrated by a newer AEGIS build: it has applied 9999_from_a_newer_build, which this build does not have/);
        assert.match(check.fix!, /start the newer build again, or restore the backup taken before the upgrade/);
      } finally {
        await db.close();
        await removeDeployment(own, dialect);
      }
    });

    it('unreachable database fails', async () => {
      const port = await closedPort();
      const { result, checks, ok } = await doctor({ DATABASE_URL: `postgres://postgres@127.0.0.1:${port}/test` });
      assert.equal(result.code, 1);
      assert.equal(ok, false);
      const check = findCheck(checks, 'database');
      assert.equal(check.status, 'fail');
      assert.match(check.message, new RegExp(`Cannot connect to PostgreSQL: .*ECONNREFUSED 127\\.0\\.0\\.1:${port}`));
      assert.match(check.fix!, /storage\.database_url \(DATABASE_URL\)/);
      assertSkipped(checks, ['migrations', 'master key', 'clock'], 'database');
      // The checks that do not need the database still run.
      assert.equal(findCheck(checks, 'key placement').status, 'ok');
      assert.equal(findCheck(checks, 'tls key').status, 'ok');
      assert.equal(findCheck(checks, 'sink hermes').status, 'ok');
      assert.equal(checks.filter((entry) => entry.status === 'skip').length, 3);
    });

    it('unreachable database text report', async () => {
      const port = await closedPort();
      const result = await doctorText({ DATABASE_URL: `postgres://postgres@127.0.0.1:${port}/test` });
      assert.equal(result.code, 1);
      assert.match(result.stdout, /^fail  database +Cannot connect to PostgreSQL: /m);
      assertSkippedLines(result.stdout, ['migrations', 'master key', 'clock'], 'database');
      assert.match(result.stdout, /\d+ ok, 0 warning\(s\), 1 failed, 3 skipped\n$/);
    });

    it('missing SQLite file is not created', { skip: dialect !== 'sqlite' }, async () => {
      const missing = path.join(deployment.dir, 'nowhere', 'aegis.db');
      const { result, checks } = await doctor({ AEGIS_SQLITE_PATH: missing });
      assert.equal(result.code, 1);
      assert.equal(findCheck(checks, 'database').message, `The SQLite file ${missing} does not exist.`);
      assertSkipped(checks, ['migrations', 'master key', 'clock'], 'database');
      assert.ok(!fs.existsSync(path.dirname(missing)), 'doctor created the folder of the SQLite file');
    });

    it('unreachable sink fails', async () => {
      const port = await closedPort();
      const { result, checks } = await doctor({ HERMES_URL: `http://127.0.0.1:${port}/alerts` });
      assert.equal(result.code, 1);
      const check = findCheck(checks, 'sink hermes');
      assert.equal(check.status, 'fail');
      assert.equal(check.message, `Cannot reach http://127.0.0.1:${port}/alerts: connect ECONNREFUSED 127.0.0.1:${port}.`);
      assert.match(check.fix!, /sinks\.hermes_url \(HERMES_URL\)/);
      assert.equal(findCheck(checks, 'n8n').status, 'ok');
    });

    it('sink URL with credentials fails', async () => {
      const port = await closedPort();
      const { result, checks } = await doctor({ HERMES_URL: `http://alerts:${sinkPassword}@127.0.0.1:${port}/notify?token=${sinkQueryToken}` });
      assert.equal(result.code, 1);
      const check = findCheck(checks, 'configuration');
      assert.equal(check.status, 'fail');
      assert.match(check.message, /HERMES_URL must not contain a user name or password/);
    });

    it('slow sink times out', async () => {
      const slow = await startHttpStub(() => {});
      try {
        const results = await runDoctor({ env: { AEGIS_CONFIG: deployment.configFile, N8N_URL: slow.url }, cwd: deployment.dir, sinkTimeoutMs: 200 });
        outputs.push(JSON.stringify(results));
        const check = findCheck(results, 'n8n');
        assert.equal(check.status, 'fail');
        assert.equal(check.message, `Cannot reach ${slow.url}: no response within 200 ms.`);
      } finally {
        await slow.close();
      }
    });

    it('expiring certificate warns', async () => {
      const soon = await makeCertificate(path.join(deployment.dir, 'etc'), 'soon', 10);
      const { result, checks } = await doctor({ AEGIS_TLS_CERT_FILE: soon.cert, AEGIS_TLS_KEY_FILE: soon.key });
      assert.equal(result.code, 0);
      const check = findCheck(checks, 'tls certificate');
      assert.equal(check.status, 'warn');
      assert.match(check.message, /expires in (9|10) day\(s\)/);
      assert.match(check.fix!, /Renew the certificate/);
    });

    it('expired certificate fails', async () => {
      const shortLived = await makeCertificate(path.join(deployment.dir, 'etc'), 'short', 1);
      const clock = new ManualClock(new Date(Date.now() + 2 * 86_400_000));
      const env = { AEGIS_CONFIG: deployment.configFile, AEGIS_TLS_CERT_FILE: shortLived.cert, AEGIS_TLS_KEY_FILE: shortLived.key };
      const results = await runDoctor({ env, cwd: deployment.dir, clock });
      outputs.push(JSON.stringify(results));
      const check = findCheck(results, 'tls certificate');
      assert.equal(check.status, 'fail');
      assert.match(check.message, /expired on \d{4}-/);
      assert.match(check.fix!, /Renew the certificate/);
      assert.equal(findCheck(results, 'tls key').status, 'ok');
    });

    it('missing certificate skips the key', async () => {
      const missing = path.join(deployment.dir, 'etc', 'missing.crt');
      const { result, checks } = await doctor({ AEGIS_TLS_CERT_FILE: missing });
      assert.equal(result.code, 1);
      const check = findCheck(checks, 'tls certificate');
      assert.equal(check.status, 'fail');
      assert.equal(check.message, `Cannot read the certificate file ${missing}: ENOENT.`);
      assertSkipped(checks, ['tls key'], 'tls certificate');
      assert.equal(checks.filter((entry) => entry.status === 'skip').length, 1);

      const text = await doctorText({ AEGIS_TLS_CERT_FILE: missing });
      assert.equal(text.code, 1);
      assertSkippedLines(text.stdout, ['tls key'], 'tls certificate');
      assert.match(text.stdout, /, 1 skipped\n$/);
    });

    it('mismatched TLS key fails', async () => {
      const other = await makeCertificate(path.join(deployment.dir, 'etc'), 'other', 365);
      const { result, checks } = await doctor({ AEGIS_TLS_KEY_FILE: other.key });
      assert.equal(result.code, 1);
      const check = findCheck(checks, 'tls key');
      assert.equal(check.status, 'fail');
      assert.equal(check.message, `The key file ${other.key} does not belong to the certificate in ${deployment.tls.cert}.`);
      assert.match(check.fix!, /server\.tls\.key_file \(AEGIS_TLS_KEY_FILE\)/);
    });

    it('non-loopback host without TLS fails', async () => {
      const noTls = path.join(deployment.dir, 'etc', 'no-tls.yaml');
      const text = fs.readFileSync(deployment.configFile, 'utf8').replace(/ {2}tls:\n.*\n.*\n/, '');
      fs.writeFileSync(noTls, text, { mode: 0o600 });
      const { result, checks } = await doctor({ AEGIS_HOST: '0.0.0.0' }, ['--config', noTls]);
      assert.equal(result.code, 1);
      const check = findCheck(checks, 'listen address');
      assert.equal(check.status, 'fail');
      assert.match(check.message, /^0\.0\.0\.0 is not a loopback address and no TLS is configured/);
      assert.match(check.fix!, /server\.tls\.cert_file \(AEGIS_TLS_CERT_FILE\)/);

      const allowed = await doctor({ AEGIS_HOST: '0.0.0.0', AEGIS_ALLOW_INSECURE_LISTEN: 'on' }, ['--config', noTls]);
      assert.equal(findCheck(allowed.checks, 'listen address').status, 'warn');
      assert.equal(allowed.result.code, 0);
    });

    it('unlimited postgres roles warn', async () => {
      const env = { AEGIS_CONFIG: deployment.configFile, AEGIS_POSTGRES_ADMIN_URL: 'postgres://admin:doctor-admin-pw@127.0.0.1:1/postgres' };
      const open = findCheck(await runDoctor({ env, cwd: deployment.dir }), 'postgres roles');
      assert.equal(open.status, 'warn');
      assert.match(open.message, /^No list limits the PostgreSQL roles whose passwords AEGIS may set through default:/);
      assert.match(open.fix!, /providers\.postgres\.allowed_roles \(AEGIS_POSTGRES_ALLOWED_ROLES\)/);
      assert.ok(!JSON.stringify(open).includes('doctor-admin-pw'), 'the connection password is in the report');

      const limited = findCheck(await runDoctor({ env: { ...env, AEGIS_POSTGRES_ALLOWED_ROLES: 'app_*,reporting' }, cwd: deployment.dir }), 'postgres roles');
      assert.equal(limited.status, 'ok');
      assert.equal(limited.message, 'postgres credentials are limited to the roles app_*, reporting');
      assert.equal(findCheck(await runDoctor({ env: { AEGIS_CONFIG: deployment.configFile }, cwd: deployment.dir }), 'postgres roles').status, 'ok');
    });

    it('clock difference is reported', async () => {
      const env = { AEGIS_CONFIG: deployment.configFile };
      const ahead = await runDoctor({ env, cwd: deployment.dir, clock: new ManualClock(new Date(Date.now() + 120_000)) });
      const slightlyAhead = await runDoctor({ env, cwd: deployment.dir, clock: new ManualClock(new Date(Date.now() + 10_000)) });
      outputs.push(JSON.stringify(ahead), JSON.stringify(slightlyAhead));
      if (dialect === 'postgres') {
        assert.equal(findCheck(ahead, 'clock').status, 'fail');
        assert.match(findCheck(ahead, 'clock').message, /clock is 1[12]\d\.\d s behind the local clock/);
        assert.match(findCheck(ahead, 'clock').fix!, /NTP/);
        assert.equal(findCheck(slightlyAhead, 'clock').status, 'warn');
      } else {
        assert.equal(findCheck(ahead, 'clock').status, 'ok');
      }
    });

    it('config error skips other checks', async () => {
      const broken = path.join(deployment.dir, 'etc', 'broken.yaml');
      fs.writeFileSync(broken, 'storage:\n  pool_max: 0\n', { mode: 0o600 });
      const sinkRequestsBefore = deployment.sinks.requests.length;
      const { result, checks, ok } = await doctor({}, ['--config', broken]);
      assert.equal(result.code, 1);
      assert.equal(ok, false);
      assert.equal(checks[0]!.name, 'configuration');
      assert.equal(checks[0]!.status, 'fail');
      assert.equal(checks[0]!.message, `storage.pool_max in ${broken} (or AEGIS_DATABASE_POOL_MAX) must be between 1 and 1000, got 0.`);
      assert.ok(checks[0]!.fix);
      const configured = ['database', 'migrations', 'master key', 'clock', 'key placement', 'file modes', 'tls', 'listen address', 'postgres roles', 'sinks and n8n'];
      assert.deepEqual(checks.slice(1).map((check) => check.name), configured);
      assertSkipped(checks, configured, 'configuration');
      assert.equal(deployment.sinks.requests.length, sinkRequestsBefore, 'doctor contacted a sink without a configuration');

      const text = await doctorText({}, ['--config', broken]);
      assert.equal(text.code, 1);
      assert.match(text.stdout, /^fail  configuration +storage\.pool_max /m);
      assertSkippedLines(text.stdout, configured, 'configuration');
      assert.match(text.stdout, /\n0 ok, 0 warning\(s\), 1 failed, 10 skipped\n$/);
    });

    it('readable config with secrets fails', async () => {
      fs.chmodSync(deployment.configFile, 0o644);
      try {
        const { result, checks } = await doctor();
        assert.equal(result.code, 1);
        const check = checks.find((entry) => entry.name === 'file modes' && entry.message.includes(deployment.configFile));
        assert.ok(check, JSON.stringify(checks));
        assert.equal(check.status, 'fail');
        assert.match(check.message, /sinks\.webhooks/);
        assert.equal(check.fix, `Run \`chmod 600 ${deployment.configFile}\`.`);
      } finally {
        fs.chmodSync(deployment.configFile, 0o600);
      }
    });

    it('development key warns', async () => {
      const devDir = path.join(deployment.dir, 'dev');
      const results = await runDoctor({ env: { AEGIS_DATA_DIR: devDir }, cwd: deployment.dir });
      outputs.push(JSON.stringify(results));
      const check = findCheck(results, 'key placement');
      assert.equal(check.status, 'warn');
      assert.match(check.message, /^The master key is the development key file .*dev\/master\.key in the data folder, which does not exist yet: a first start on an empty database creates it there/);
      assert.match(check.fix!, /keys\.master_key_file \(AEGIS_MASTER_KEY_FILE\)/);
      assert.ok(!fs.existsSync(devDir), 'doctor created the data folder');

      // Once a start has generated it, the warning names the file.
      const started = fs.mkdtempSync(path.join(os.tmpdir(), 'aegis-doctor-dev-'));
      try {
        fs.writeFileSync(path.join(started, 'master.key'), `${crypto.randomBytes(32).toString('base64')}\n`, { mode: 0o600 });
        const generated = findCheck(await runDoctor({ env: { AEGIS_DATA_DIR: started }, cwd: deployment.dir }), 'key placement');
        assert.equal(generated.status, 'warn');
        assert.match(generated.message, /is the development key generated in the data folder/);
      } finally {
        fs.rmSync(started, { recursive: true, force: true });
      }
    });

    it('doctor wrote nothing', async () => {
      assert.deepEqual(listFiles(deployment.dir).filter((entry) => !/^etc\/(soon|short|other|no-tls|broken)/.test(entry)), filesBefore);
      assert.deepEqual(await databaseSnapshot(deployment), snapshotBefore);
    });

    it('output contains no secret', () => {
      const text = outputs.join('\n');
      assert.ok(outputs.length > 10, 'too few outputs collected');
      for (const secret of [webhookSecret, n8nApiKey, sinkPassword, sinkQueryToken, deployment.key]) {
        assert.ok(!text.includes(secret), `the doctor output contains the secret ${secret.slice(0, 6)}...`);
      }
    });
  });
}
