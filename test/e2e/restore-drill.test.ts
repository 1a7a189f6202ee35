import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import pg from 'pg';
import { runCli, type CliResult } from '../helpers/cli.js';
import { dropSchema, postgresReachable, testPostgresUrl } from '../helpers/databases.js';
import { callServer, type ServerProcess, startServer, stopServer } from '../helpers/server-process.js';

const passphrase = 'drill passphrase: amber-heron-93-cliff';
/** Known values, each stressing another part of the round trip: ASCII, random bytes in base64, Unicode, JSON-like text. */
const credentials: Record<string, string> = {
  'drill-ascii': 'drill-value-6b1f0e2a',
  'drill-random': crypto.randomBytes(48).toString('base64'),
  'drill-unicode': 'Grüße – 鍵 – 🔐 – \u00e9\u0301',
  'drill-json': '{"user":"svc","password":"p@ss\\"w0rd"}',
};
const firstVersion = 'drill-first-version-5c2d';

interface Drill {
  root: string;
  dataDir: string;
  keyFile: string;
  backups: string;
  env: Record<string, string>;
  outputs: string[];
}

function newDrill(extraEnv: Record<string, string>): Drill {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'aegis-drill-'));
  const dataDir = path.join(root, 'data');
  const keyDir = path.join(root, 'keys');
  const backups = path.join(root, 'backups');
  fs.mkdirSync(keyDir, { mode: 0o700 });
  fs.mkdirSync(backups, { mode: 0o700 });
  const keyFile = path.join(keyDir, 'master.key');
  fs.writeFileSync(keyFile, `${crypto.randomBytes(32).toString('base64')}\n`, { mode: 0o600 });
  const env = { AEGIS_DATA_DIR: dataDir, AEGIS_MASTER_KEY_FILE: keyFile, AEGIS_LOG_LEVEL: 'warn', ...extraEnv };
  return { root, dataDir, keyFile, backups, env, outputs: [] };
}

async function aegis(drill: Drill, args: string[], extraEnv: Record<string, string> = {}): Promise<CliResult> {
  const result = await runCli(args, { ...drill.env, ...extraEnv }, { cwd: drill.root });
  drill.outputs.push(result.stdout, result.stderr);
  return result;
}

/** Starts AEGIS, creates the known credentials (one with two versions) and returns the admin token. */
async function createCredentials(drill: Drill): Promise<{ server: ServerProcess; token: string }> {
  const server = await startServer({ env: { ...drill.env, AEGIS_LOG_LEVEL: 'info' }, cwd: drill.root, expectToken: true });
  const token = server.adminToken!;
  const first = await callServer(server, token, 'POST', '/credentials', { name: 'drill-ascii', credential_type: 'apiKey', provider: 'api', value: firstVersion });
  assert.equal(first.status, 201, first.text);
  const changed = await callServer(server, token, 'PATCH', '/credentials/drill-ascii', { value: credentials['drill-ascii'] });
  assert.equal(changed.status, 200, changed.text);
  for (const [name, value] of Object.entries(credentials)) {
    if (name === 'drill-ascii') continue;
    const created = await callServer(server, token, 'POST', '/credentials', { name, credential_type: 'apiKey', provider: 'api', value });
    assert.equal(created.status, 201, created.text);
  }
  return { server, token };
}

async function backUpKeys(drill: Drill): Promise<string> {
  const file = path.join(drill.backups, 'keys.json');
  const backup = await aegis(drill, ['keys', 'backup', '--to', file], { AEGIS_RECOVERY_PASSPHRASE: passphrase });
  assert.equal(backup.code, 0, backup.stderr);
  return file;
}

async function restoreKeys(drill: Drill, file: string): Promise<void> {
  const restore = await aegis(drill, ['keys', 'restore', '--from', file, '--to-key-file', drill.keyFile], { AEGIS_RECOVERY_PASSPHRASE: passphrase });
  assert.equal(restore.code, 0, restore.stderr);
  assert.match(restore.stdout, /database check: every current and active key of the vault at .* matches/);
  assert.equal(fs.statSync(drill.keyFile).mode & 0o777, 0o600);
}

/** Starts the restored vault, reveals every value and compares the bytes, then checks the audit chain. */
async function checkRestoredVault(drill: Drill, token: string): Promise<void> {
  const server = await startServer({ env: { ...drill.env, AEGIS_LOG_LEVEL: 'info' }, cwd: drill.root });
  try {
    for (const [name, value] of Object.entries(credentials)) {
      const revealed = await callServer(server, token, 'GET', `/credentials/${name}/value`);
      assert.equal(revealed.status, 200, `${name}: ${revealed.text}`);
      const restored = Buffer.from((JSON.parse(revealed.text) as { value: string }).value, 'utf8');
      assert.equal(Buffer.compare(restored, Buffer.from(value, 'utf8')), 0, `${name} differs after the restore`);
    }
    const older = await callServer(server, token, 'GET', '/credentials/drill-ascii/value?version=1');
    assert.equal(older.status, 200, older.text);
    assert.equal((JSON.parse(older.text) as { value: string }).value, firstVersion);
  } finally {
    drill.outputs.push(server.output());
    await stopServer(server);
  }
  const verify = await aegis(drill, ['audit', 'verify']);
  assert.equal(verify.code, 0, `${verify.stdout}${verify.stderr}`);
  assert.match(verify.stdout, /^audit chain verified: \d+ entries/);
}

/** Searches every output and backup file of the drill for the values, the passphrase and the master key. */
function assertNoSecrets(drill: Drill, masterKey: string): void {
  const files = fs.readdirSync(drill.backups).map((name) => fs.readFileSync(path.join(drill.backups, name)).toString('latin1'));
  const haystack = [...drill.outputs, ...files].join('\n');
  const keyBytes = Buffer.from(masterKey, 'base64');
  const secrets = [passphrase, firstVersion, ...Object.values(credentials), masterKey, keyBytes.toString('hex'), keyBytes.toString('base64url')];
  for (const secret of secrets) assert.ok(!haystack.includes(secret), `a secret (${secret.length} characters) appears in the drill's output or backups`);
}

describe('restore drill on sqlite', () => {
  it('restores values byte for byte', async () => {
    const drill = newDrill({});
    const masterKey = fs.readFileSync(drill.keyFile, 'utf8').trim();
    try {
      const { server, token } = await createCredentials(drill);
      let keyBackup: string;
      const databaseBackup = path.join(drill.backups, 'aegis.db');
      try {
        // Both backups run while the server is serving.
        const backup = await aegis(drill, ['backup', '--to', databaseBackup]);
        assert.equal(backup.code, 0, backup.stderr);
        assert.match(backup.stdout, /^audit entry: written \(database_backed_up\)$/m);
        const entries = await runCli(['audit', 'export', '--format', 'jsonl', '--action', 'database_backed_up'], drill.env, { cwd: drill.root });
        assert.equal(entries.code, 0, entries.stderr);
        assert.match(entries.stdout, /"target":"file:[^"]*aegis\.db"/);
        assert.equal(fs.statSync(databaseBackup).mode & 0o777, 0o600);
        keyBackup = await backUpKeys(drill);
      } finally {
        drill.outputs.push(server.output());
        await stopServer(server);
      }

      fs.rmSync(drill.dataDir, { recursive: true, force: true });
      fs.rmSync(drill.keyFile);
      const lost = await runCli(['audit', 'verify'], drill.env, { cwd: drill.root });
      assert.notEqual(lost.code, 0, 'the vault should not open without its data');
      assert.match(lost.stderr, /No vault at .*aegis\.db: the file does not exist/);
      assert.equal(fs.existsSync(drill.dataDir), false, 'the failed command created the data folder');

      fs.mkdirSync(drill.dataDir, { mode: 0o700 });
      fs.copyFileSync(databaseBackup, path.join(drill.dataDir, 'aegis.db'));
      fs.chmodSync(path.join(drill.dataDir, 'aegis.db'), 0o600);
      await restoreKeys(drill, keyBackup);
      await checkRestoredVault(drill, token);
      assertNoSecrets(drill, masterKey);
    } finally {
      fs.rmSync(drill.root, { recursive: true, force: true });
    }
  });
});

describe('restore drill on postgres', () => {
  it('restores values byte for byte', async (t) => {
    if (!(await postgresReachable())) {
      t.skip(`no PostgreSQL at ${testPostgresUrl}`);
      return;
    }
    for (const tool of ['pg_dump', 'pg_restore']) {
      if (spawnSync(tool, ['--version']).error) {
        process.stdout.write(`# skipping the PostgreSQL restore drill: ${tool} is not on PATH; the SQLite drill covers the steps\n`);
        t.skip(`${tool} is not on PATH`);
        return;
      }
    }
    const schema = `aegis_drill_${crypto.randomBytes(6).toString('hex')}`;
    const drill = newDrill({ DATABASE_URL: testPostgresUrl, AEGIS_DATABASE_SCHEMA: schema });
    const masterKey = fs.readFileSync(drill.keyFile, 'utf8').trim();
    try {
      const { server, token } = await createCredentials(drill);
      const dumpFile = path.join(drill.backups, 'aegis.dump');
      let keyBackup: string;
      try {
        const backup = await aegis(drill, ['backup', '--to', dumpFile]);
        assert.equal(backup.code, 1);
        const command = /^\s+(pg_dump .*)$/m.exec(backup.stderr)?.[1];
        assert.ok(command, backup.stderr);
        assert.ok(command.includes(`--schema=${schema}`), command);
        // The printed command is run as printed, so the drill also proves it works.
        const dump = spawnSync('sh', ['-c', command], { encoding: 'utf8' });
        assert.equal(dump.status, 0, dump.stderr);
        keyBackup = await backUpKeys(drill);
      } finally {
        drill.outputs.push(server.output());
        await stopServer(server);
      }

      await dropSchemaNow(schema);
      fs.rmSync(drill.keyFile);
      const restore = spawnSync('pg_restore', [`--dbname=${testPostgresUrl}`, dumpFile], { encoding: 'utf8' });
      assert.equal(restore.status, 0, restore.stderr);

      await restoreKeys(drill, keyBackup);
      await checkRestoredVault(drill, token);
      assertNoSecrets(drill, masterKey);
    } finally {
      await dropSchema(schema);
      fs.rmSync(drill.root, { recursive: true, force: true });
    }
  });
});

/** Drops the drill's schema at once: this is the data loss the drill recovers from. */
async function dropSchemaNow(schema: string): Promise<void> {
  const client = new pg.Client({ connectionString: testPostgresUrl });
  await client.connect();
  try {
    await client.query(`drop schema "${schema}" cascade`);
  } finally {
    await client.end();
  }
}
