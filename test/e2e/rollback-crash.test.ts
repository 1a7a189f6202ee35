import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { runCli } from '../helpers/cli.js';
import { startServer, stopServer, waitForExit, type ServerProcess } from '../helpers/server-process.js';
import { dropSchema, testDialects, testPostgresUrl } from '../helpers/databases.js';

async function request(server: ServerProcess, token: string, method: string, url: string, body?: unknown) {
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

for (const dialect of await testDialects()) {
  describe(`rollback crash recovery on ${dialect}`, () => {
    it('restores current value after kill', async () => {
      const dir = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'aegis-rollback-crash-')));
      const schema = `aegis_rollback_crash_${crypto.randomBytes(6).toString('hex')}`;
      const file = path.join(dir, 'service.env');
      const env: Record<string, string> = {
        AEGIS_DATA_DIR: path.join(dir, 'data'),
        AEGIS_ENV_ALLOWED_DIRS: dir,
        ...(dialect === 'postgres' ? { DATABASE_URL: testPostgresUrl, AEGIS_DATABASE_SCHEMA: schema } : {}),
      };
      fs.writeFileSync(file, 'API_KEY=initial-value\n');
      const servers: ServerProcess[] = [];
      try {
        const first = await startServer({ env, expectToken: true });
        servers.push(first);
        const token = first.adminToken!;
        const created = await request(first, token, 'POST', '/credentials', {
          name: 'service',
          credential_type: 'apiKey',
          provider: 'env',
          provider_config: { file, variable: 'API_KEY' },
          value: 'initial-value',
        });
        assert.equal(created.status, 201, created.text);
        const rotated = await request(first, token, 'POST', '/credentials/service/rotate', {});
        assert.equal(rotated.status, 200, rotated.text);
        await stopServer(first);
        const rotatedValue = fileValue(file);
        assert.notEqual(rotatedValue, 'initial-value');

        // The reload command runs right after the provider write, so it kills the server between that
        // write and the rollback's commit.
        const crashing = await startServer({ env: { ...env, AEGIS_ENV_RELOAD_COMMANDS: JSON.stringify({ [file]: 'kill -9 $PPID' }) } });
        servers.push(crashing);
        await assert.rejects(request(crashing, token, 'POST', '/credentials/service/rollback', {}));
        assert.equal(await waitForExit(crashing, 30_000), 'SIGKILL');
        assert.equal(fileValue(file), 'initial-value');

        const restarted = await startServer({ env });
        servers.push(restarted);
        const versions = await request(restarted, token, 'GET', '/credentials/service/versions');
        assert.equal(versions.status, 200, versions.text);
        const current = versions.json.versions.filter((version: { is_current: boolean }) => version.is_current);
        assert.equal(current.length, 1, versions.text);
        assert.equal(current[0].version, 2);

        const revealed = await request(restarted, token, 'GET', '/credentials/service/value');
        assert.equal(revealed.status, 200, revealed.text);
        assert.equal(revealed.json.value, rotatedValue);
        assert.equal(fileValue(file), rotatedValue);

        const credential = await request(restarted, token, 'GET', '/credentials/service');
        assert.equal(credential.status, 200, credential.text);
        assert.equal(credential.json.credential_details.status, 'active');

        const rolledBack = await request(restarted, token, 'POST', '/credentials/service/rollback', {});
        assert.equal(rolledBack.status, 200, rolledBack.text);
        assert.equal(fileValue(file), 'initial-value');

        await stopServer(restarted);
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

    it('restores value after failed reload', async () => {
      const dir = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'aegis-rollback-crash-')));
      const schema = `aegis_rollback_crash_${crypto.randomBytes(6).toString('hex')}`;
      const file = path.join(dir, 'service.env');
      const env: Record<string, string> = {
        AEGIS_DATA_DIR: path.join(dir, 'data'),
        AEGIS_ENV_ALLOWED_DIRS: dir,
        ...(dialect === 'postgres' ? { DATABASE_URL: testPostgresUrl, AEGIS_DATABASE_SCHEMA: schema } : {}),
      };
      fs.writeFileSync(file, 'API_KEY=initial-value\n');
      const servers: ServerProcess[] = [];
      try {
        const first = await startServer({ env, expectToken: true });
        servers.push(first);
        const token = first.adminToken!;
        const created = await request(first, token, 'POST', '/credentials', {
          name: 'service',
          credential_type: 'apiKey',
          provider: 'env',
          provider_config: { file, variable: 'API_KEY' },
          value: 'initial-value',
        });
        assert.equal(created.status, 201, created.text);
        const rotated = await request(first, token, 'POST', '/credentials/service/rotate', {});
        assert.equal(rotated.status, 200, rotated.text);
        await stopServer(first);
        const rotatedValue = fileValue(file);

        // The reload command fails while the file contains the rollback's target value, and passes once the
        // current value is back.
        const reloadCommand = `if grep -q '^API_KEY=initial-value$' '${file}'; then exit 3; fi`;
        const failing = await startServer({ env: { ...env, AEGIS_ENV_RELOAD_COMMANDS: JSON.stringify({ [file]: reloadCommand }) } });
        servers.push(failing);
        const rolledBack = await request(failing, token, 'POST', '/credentials/service/rollback', {});
        assert.equal(rolledBack.status, 502, rolledBack.text);
        assert.match(rolledBack.json.detail, /its value was put back at the provider/);
        assert.equal(fileValue(file), rotatedValue);
        const credential = await request(failing, token, 'GET', '/credentials/service');
        assert.equal(credential.status, 200, credential.text);
        assert.equal(credential.json.credential_details.status, 'active');
      } finally {
        for (const server of servers) {
          if (server.child.exitCode === null && server.child.signalCode === null) server.child.kill('SIGKILL');
          await waitForExit(server, 10_000);
        }
        if (dialect === 'postgres') await dropSchema(schema);
        fs.rmSync(dir, { recursive: true, force: true });
      }
    });
  });
}
