import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { runCli } from '../helpers/cli.js';
import { startServer, waitForExit, type ServerProcess } from '../helpers/server-process.js';
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
        const servers: ServerProcess[] = [];
        try {
          const crashing = await startServer({ env: { ...env, AEGIS_TEST_CRASH_AT: crashPoint }, expectToken: true });
          servers.push(crashing);
          const token = crashing.adminToken!;
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

          const restarted = await startServer({ env });
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

    it('removes the copy left before the rename', async () => {
      const dir = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'aegis-crash-')));
      const schema = `aegis_crash_${crypto.randomBytes(6).toString('hex')}`;
      const env: Record<string, string> = {
        AEGIS_DATA_DIR: path.join(dir, 'data'),
        AEGIS_ENV_ALLOWED_DIRS: dir,
        ...(dialect === 'postgres' ? { DATABASE_URL: testPostgresUrl, AEGIS_DATABASE_SCHEMA: schema } : {}),
      };
      const file = path.join(dir, 'service.env');
      fs.writeFileSync(file, 'OTHER=other-secret-value\nAPI_KEY=initial-value\n');
      const copies = () => fs.readdirSync(dir).filter((entry) => entry.startsWith('.service.env.aegis-'));
      const servers: ServerProcess[] = [];
      try {
        const crashing = await startServer({ env: { ...env, AEGIS_TEST_CRASH_AT: 'env_before_rename' }, expectToken: true });
        servers.push(crashing);
        const token = crashing.adminToken!;
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
        // The killed process left its copy of the file, which contains every value of the file.
        assert.equal(copies().length, 1);
        assert.match(fs.readFileSync(path.join(dir, copies()[0]!), 'utf8'), /other-secret-value/);

        // Recovery at start-up puts version 1 back, and that write removes the copy.
        const restarted = await startServer({ env });
        servers.push(restarted);
        assert.deepEqual(copies(), []);
        const revealed = await request(restarted, token, 'GET', '/credentials/service/value');
        assert.equal(revealed.status, 200, revealed.text);
        assert.equal(revealed.json.version, 1);
        assert.equal(fileValue(file), 'initial-value');
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
