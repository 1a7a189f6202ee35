import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { dropSchema, testPostgresUrl, type DialectName } from './databases.js';
import { callServer, waitForExit, type ServerProcess } from './server-process.js';

/**
 * A folder with a data folder and a `.env` file, for crash tests that run `aegis serve` processes. It
 * keeps the server environment (a schema of its own on PostgreSQL) and the servers started so far.
 * `cleanUp` kills those still running and removes the folder and the schema.
 */
export interface EnvServiceFixture {
  dir: string;
  file: string;
  env: Record<string, string>;
  servers: ServerProcess[];
  cleanUp(): Promise<void>;
}

/** Creates the fixture, with `service.env` containing `fileText`. */
export function envServiceFixture(dialect: DialectName, fileText: string): EnvServiceFixture {
  const dir = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'aegis-crash-')));
  const schema = `aegis_crash_${crypto.randomBytes(6).toString('hex')}`;
  const file = path.join(dir, 'service.env');
  fs.writeFileSync(file, fileText);
  const servers: ServerProcess[] = [];
  return {
    dir,
    file,
    servers,
    env: {
      AEGIS_DATA_DIR: path.join(dir, 'data'),
      AEGIS_ENV_ALLOWED_DIRS: dir,
      ...(dialect === 'postgres' ? { DATABASE_URL: testPostgresUrl, AEGIS_DATABASE_SCHEMA: schema } : {}),
    },
    async cleanUp() {
      for (const server of servers) {
        if (server.child.exitCode === null && server.child.signalCode === null) server.child.kill('SIGKILL');
        await waitForExit(server, 10_000);
      }
      if (dialect === 'postgres') await dropSchema(schema);
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Registers the env credential `service` for API_KEY in `file` with the value `initial-value`. */
export async function createEnvService(server: ServerProcess, token: string, file: string): Promise<void> {
  const created = await callServer(server, token, 'POST', '/credentials', {
    name: 'service',
    credential_type: 'apiKey',
    provider: 'env',
    provider_config: { file, variable: 'API_KEY' },
    value: 'initial-value',
  });
  assert.equal(created.status, 201, created.text);
}

/** Reads the value of API_KEY in a `.env` file. */
export function apiKeyIn(file: string): string | undefined {
  const line = fs.readFileSync(file, 'utf8').split('\n').find((text) => text.startsWith('API_KEY='));
  return line?.slice('API_KEY='.length);
}

/**
 * Checks `service` after a restart that recovered it: one current version and no pending one, the
 * current value revealed and in the `.env` file, status `active`. Returns the current version and value.
 */
export async function recoveredService(server: ServerProcess, token: string, file: string): Promise<{ version: number; value: string }> {
  const versions = await callServer(server, token, 'GET', '/credentials/service/versions');
  assert.equal(versions.status, 200, versions.text);
  const current = versions.json.versions.filter((version: { is_current: boolean }) => version.is_current);
  assert.equal(current.length, 1, versions.text);
  const states = versions.json.versions.map((version: { state: string }) => version.state);
  assert.ok(!states.includes('pending'), versions.text);

  const revealed = await callServer(server, token, 'GET', '/credentials/service/value');
  assert.equal(revealed.status, 200, revealed.text);
  assert.equal(revealed.json.version, current[0].version);
  assert.equal(apiKeyIn(file), revealed.json.value);

  const credential = await callServer(server, token, 'GET', '/credentials/service');
  assert.equal(credential.status, 200, credential.text);
  assert.equal(credential.json.credential_details.status, 'active');
  return { version: revealed.json.version, value: revealed.json.value };
}
