import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { runCli } from '../helpers/cli.js';
import { apiKeyIn, createEnvService, envServiceFixture, recoveredService } from '../helpers/env-service.js';
import { callServer, startServer, waitForExit } from '../helpers/server-process.js';
import { testDialects } from '../helpers/databases.js';

const crashPoints = ['after_pending', 'after_provider_set', 'after_test'] as const;

for (const dialect of await testDialects()) {
  describe(`rotation crash recovery on ${dialect}`, () => {
    for (const crashPoint of crashPoints) {
      it(`recovers a crash ${crashPoint}`, async () => {
        const fixture = envServiceFixture(dialect, 'OTHER=1\nAPI_KEY=initial-value\n');
        const { env, file, servers } = fixture;
        try {
          const crashing = await startServer({ env: { ...env, AEGIS_TEST_CRASH_AT: crashPoint }, expectToken: true });
          servers.push(crashing);
          const token = crashing.adminToken!;
          await createEnvService(crashing, token, file);

          await assert.rejects(callServer(crashing, token, 'POST', '/credentials/service/rotate', {}));
          assert.equal(await waitForExit(crashing, 30_000), 'SIGKILL');

          const restarted = await startServer({ env });
          servers.push(restarted);
          const recovered = await recoveredService(restarted, token, file);
          assert.equal(fs.readFileSync(file, 'utf8').split('\n')[0], 'OTHER=1');
          // Before the provider was set, recovery restores version 1; afterwards it completes version 2.
          assert.equal(recovered.version, crashPoint === 'after_pending' ? 1 : 2);

          const rotatedAgain = await callServer(restarted, token, 'POST', '/credentials/service/rotate', {});
          assert.equal(rotatedAgain.status, 200, rotatedAgain.text);

          restarted.child.kill('SIGTERM');
          await waitForExit(restarted, 30_000);
          const verified = await runCli(['audit', 'verify'], env);
          assert.equal(verified.code, 0, `${verified.stdout}\n${verified.stderr}`);
        } finally {
          await fixture.cleanUp();
        }
      });
    }

    it('removes the copy left before the rename', async () => {
      const fixture = envServiceFixture(dialect, 'OTHER=other-secret-value\nAPI_KEY=initial-value\n');
      const { dir, env, file, servers } = fixture;
      const copies = () => fs.readdirSync(dir).filter((entry) => entry.startsWith('.service.env.aegis-'));
      try {
        const crashing = await startServer({ env: { ...env, AEGIS_TEST_CRASH_AT: 'env_before_rename' }, expectToken: true });
        servers.push(crashing);
        const token = crashing.adminToken!;
        await createEnvService(crashing, token, file);

        await assert.rejects(callServer(crashing, token, 'POST', '/credentials/service/rotate', {}));
        assert.equal(await waitForExit(crashing, 30_000), 'SIGKILL');
        // The killed process left its copy of the file, which contains every value of the file.
        assert.equal(copies().length, 1);
        assert.match(fs.readFileSync(path.join(dir, copies()[0]!), 'utf8'), /other-secret-value/);

        // Recovery at start-up puts version 1 back, and that write removes the copy.
        const restarted = await startServer({ env });
        servers.push(restarted);
        assert.deepEqual(copies(), []);
        const revealed = await callServer(restarted, token, 'GET', '/credentials/service/value');
        assert.equal(revealed.status, 200, revealed.text);
        assert.equal(revealed.json.version, 1);
        assert.equal(apiKeyIn(file), 'initial-value');
      } finally {
        await fixture.cleanUp();
      }
    });
  });
}
