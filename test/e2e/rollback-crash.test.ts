import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { runCli } from '../helpers/cli.js';
import { apiKeyIn, createEnvService, envServiceFixture, recoveredService, type EnvServiceFixture } from '../helpers/env-service.js';
import { callServer, startServer, stopServer, waitForExit } from '../helpers/server-process.js';
import { testDialects } from '../helpers/databases.js';

/** Starts a server on the fixture, creates `service` and rotates it to version 2, stops the server, and returns its token and the new value. */
async function rotatedService(fixture: EnvServiceFixture): Promise<{ token: string; rotatedValue: string | undefined }> {
  const first = await startServer({ env: fixture.env, expectToken: true });
  fixture.servers.push(first);
  const token = first.adminToken!;
  await createEnvService(first, token, fixture.file);
  const rotated = await callServer(first, token, 'POST', '/credentials/service/rotate', {});
  assert.equal(rotated.status, 200, rotated.text);
  await stopServer(first);
  const rotatedValue = apiKeyIn(fixture.file);
  assert.notEqual(rotatedValue, 'initial-value');
  return { token, rotatedValue };
}

for (const dialect of await testDialects()) {
  describe(`rollback crash recovery on ${dialect}`, () => {
    it('restores current value after kill', async () => {
      const fixture = envServiceFixture(dialect, 'API_KEY=initial-value\n');
      const { env, file, servers } = fixture;
      try {
        const { token, rotatedValue } = await rotatedService(fixture);

        // The reload command runs right after the provider write, so it kills the server between that
        // write and the rollback's commit.
        const crashing = await startServer({ env: { ...env, AEGIS_ENV_RELOAD_COMMANDS: JSON.stringify({ [file]: 'kill -9 $PPID' }) } });
        servers.push(crashing);
        await assert.rejects(callServer(crashing, token, 'POST', '/credentials/service/rollback', {}));
        assert.equal(await waitForExit(crashing, 30_000), 'SIGKILL');
        assert.equal(apiKeyIn(file), 'initial-value');

        const restarted = await startServer({ env });
        servers.push(restarted);
        const recovered = await recoveredService(restarted, token, file);
        assert.equal(recovered.version, 2);
        assert.equal(recovered.value, rotatedValue);
        const history = await callServer(restarted, token, 'GET', '/rotation/history?credential_name=service');
        const recovery = history.json.history.find((entry: { trigger: string }) => entry.trigger === 'recovery');
        assert.equal(recovery?.error_message, 'the process stopped during a rollback; the previous value was restored', history.text);
        assert.equal(recovery?.reason, 'recovery after an interrupted rollback', history.text);

        const rolledBack = await callServer(restarted, token, 'POST', '/credentials/service/rollback', {});
        assert.equal(rolledBack.status, 200, rolledBack.text);
        assert.equal(apiKeyIn(file), 'initial-value');

        await stopServer(restarted);
        const verified = await runCli(['audit', 'verify'], env);
        assert.equal(verified.code, 0, `${verified.stdout}\n${verified.stderr}`);
      } finally {
        await fixture.cleanUp();
      }
    });

    it('restores value after failed reload', async () => {
      const fixture = envServiceFixture(dialect, 'API_KEY=initial-value\n');
      const { env, file, servers } = fixture;
      try {
        const { token, rotatedValue } = await rotatedService(fixture);

        // The reload command fails while the file contains the rollback's target value, and passes once the
        // current value is back.
        const reloadCommand = `if grep -q '^API_KEY=initial-value$' '${file}'; then exit 3; fi`;
        const failing = await startServer({ env: { ...env, AEGIS_ENV_RELOAD_COMMANDS: JSON.stringify({ [file]: reloadCommand }) } });
        servers.push(failing);
        const rolledBack = await callServer(failing, token, 'POST', '/credentials/service/rollback', {});
        assert.equal(rolledBack.status, 502, rolledBack.text);
        assert.match(rolledBack.json.detail, /its value was put back at the provider/);
        assert.equal(apiKeyIn(file), rotatedValue);
        const credential = await callServer(failing, token, 'GET', '/credentials/service');
        assert.equal(credential.status, 200, credential.text);
        assert.equal(credential.json.credential_details.status, 'active');
      } finally {
        await fixture.cleanUp();
      }
    });
  });
}
