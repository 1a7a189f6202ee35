import assert from 'node:assert/strict';
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { runCli, tsxLoader } from '../helpers/cli.js';
import { dropSchema, testDialects, testPostgresUrl } from '../helpers/databases.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const adminTokenPattern = /aegis_[0-9a-f]{12}_[A-Za-z0-9_-]{43}/;

interface Server {
  child: ChildProcessWithoutNullStreams;
  port: number;
  output: () => string;
  /** Resolves with the signal that ended the process, or null after a normal exit. */
  exited: Promise<NodeJS.Signals | null>;
}

/**
 * Starts `aegis serve` from source on a free port and waits for its "AEGIS is serving" log line, and for
 * the admin token too when `expectToken` is set (the first start prints it after that line).
 */
function startServer(env: Record<string, string>, expectToken: boolean): Promise<Server> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', tsxLoader, path.join(root, 'src/cli/bin.ts'), 'serve'], {
      cwd: path.dirname(env.AEGIS_DATA_DIR!),
      env: { PATH: process.env.PATH ?? '', HOME: os.homedir(), AEGIS_PORT: '0', ...env },
    });
    let output = '';
    const exited = new Promise<NodeJS.Signals | null>((resolveExit) => child.on('exit', (_code, signal) => resolveExit(signal)));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`server did not start within 30 s:\n${output}`));
    }, 30_000);
    const onData = (chunk: Buffer) => {
      output += chunk.toString('utf8');
      const line = output.split('\n').find((text) => text.includes('"AEGIS is serving"'));
      if (line && (!expectToken || adminTokenPattern.test(output))) {
        clearTimeout(timer);
        resolve({ child, port: JSON.parse(line).port, output: () => output, exited });
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    void exited.then((signal) => {
      clearTimeout(timer);
      reject(new Error(`server exited (${signal ?? 'no signal'}) before serving:\n${output}`));
    });
  });
}

/** Waits for a process to end, killing it after `timeoutMs`. */
async function waitForExit(server: Server, timeoutMs: number): Promise<NodeJS.Signals | null> {
  const timer = setTimeout(() => server.child.kill('SIGKILL'), timeoutMs);
  try {
    return await server.exited;
  } finally {
    clearTimeout(timer);
  }
}

async function request(server: Server, token: string, method: string, url: string, body?: unknown) {
  const response = await fetch(`http://127.0.0.1:${server.port}${url}`, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  const text = await response.text();
  return { status: response.status, text, json: text ? JSON.parse(text) : undefined };
}

function fileValue(file: string): string | undefined {
  const line = fs.readFileSync(file, 'utf8').split('\n').find((text) => text.startsWith('API_KEY='));
  return line?.slice('API_KEY='.length);
}

const crashPoints = ['after_pending', 'after_provider_set', 'after_test'] as const;

for (const dialect of await testDialects()) {
  describe(`rotation crash recovery on ${dialect}`, () => {
    for (const crashPoint of crashPoints) {
      it(`recovers a crash ${crashPoint}`, async () => {
        const dir = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'aegis-crash-')));
        const schema = `aegis_crash_${crypto.randomBytes(6).toString('hex')}`;
        const env: Record<string, string> = {
          AEGIS_DATA_DIR: path.join(dir, 'data'),
          AEGIS_ENV_ALLOWED_DIRS: dir,
          ...(dialect === 'postgres' ? { DATABASE_URL: testPostgresUrl, AEGIS_DATABASE_SCHEMA: schema } : {}),
        };
        const file = path.join(dir, 'service.env');
        fs.writeFileSync(file, 'OTHER=1\nAPI_KEY=initial-value\n');
        const servers: Server[] = [];
        try {
          const crashing = await startServer({ ...env, AEGIS_TEST_CRASH_AT: crashPoint }, true);
          servers.push(crashing);
          const token = crashing.output().match(adminTokenPattern)![0];
          const created = await request(crashing, token, 'POST', '/credentials', {
            name: 'service',
            credential_type: 'apiKey',
            provider: 'env',
            provider_config: { file, variable: 'API_KEY' },
            value: 'initial-value',
          });
          assert.equal(created.status, 201, created.text);

          await assert.rejects(request(crashing, token, 'POST', '/credentials/service/rotate', {}));
          assert.equal(await waitForExit(crashing, 30_000), 'SIGKILL');

          const restarted = await startServer(env, false);
          servers.push(restarted);
          const versions = await request(restarted, token, 'GET', '/credentials/service/versions');
          assert.equal(versions.status, 200, versions.text);
          const current = versions.json.versions.filter((version: { is_current: boolean }) => version.is_current);
          assert.equal(current.length, 1, versions.text);
          const states = versions.json.versions.map((version: { state: string }) => version.state);
          assert.ok(!states.includes('pending'), versions.text);

          const revealed = await request(restarted, token, 'GET', '/credentials/service/value');
          assert.equal(revealed.status, 200, revealed.text);
          assert.equal(revealed.json.version, current[0].version);
          assert.equal(fileValue(file), revealed.json.value);
          assert.equal(fs.readFileSync(file, 'utf8').split('\n')[0], 'OTHER=1');
          // Before the provider was set, recovery restores version 1; afterwards it completes version 2.
          assert.equal(revealed.json.version, crashPoint === 'after_pending' ? 1 : 2);

          const credential = await request(restarted, token, 'GET', '/credentials/service');
          assert.equal(credential.status, 200, credential.text);
          assert.notEqual(credential.json.credential_details.status, 'rotating');
          assert.equal(credential.json.credential_details.status, 'active');

          const rotatedAgain = await request(restarted, token, 'POST', '/credentials/service/rotate', {});
          assert.equal(rotatedAgain.status, 200, rotatedAgain.text);

          restarted.child.kill('SIGTERM');
          await waitForExit(restarted, 30_000);
          const verified = await runCli(['audit', 'verify'], env);
          assert.equal(verified.code, 0, `${verified.stdout}\n${verified.stderr}`);
        } finally {
          for (const server of servers) {
            if (server.child.exitCode === null && server.child.signalCode === null) server.child.kill('SIGKILL');
            await waitForExit(server, 10_000);
          }
          if (dialect === 'postgres') await dropSchema(schema);
          fs.rmSync(dir, { recursive: true, force: true });
        }
      });
    }
  });
}
