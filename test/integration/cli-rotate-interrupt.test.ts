import assert from 'node:assert/strict';
import type http from 'node:http';
import { after, before, describe, it } from 'node:test';
import { localCaller } from '../../src/tokens/caller.js';
import { startCli, waitFor } from '../helpers/cli.js';
import { sendJson, startHttpStub, type HttpStub } from '../helpers/http-stub.js';
import { destroyTestVault, openTestVault, type TestVault } from '../helpers/test-vault.js';

// The signal handling is in the CLI and does not depend on the database, so SQLite alone is tested.
describe('rotate interrupted by SIGINT', () => {
  let t: TestVault;
  let stub: HttpStub;
  const caller = localCaller('cli-test');

  before(async () => {
    t = await openTestVault('sqlite');
    stub = await startHttpStub((_request, response) => sendJson(response, 200, {}));
    await t.vault.registry.create(caller, {
      name: 'api/slow',
      credential_type: 'apiKey',
      provider: 'api',
      provider_config: { test: { method: 'GET', url: `${stub.url}/v1/models`, headers: { Authorization: 'Bearer {{value}}' } } },
      value: 'sk-interrupt-old-value-1',
      rotation_enabled: false,
    });
  });
  after(async () => {
    await stub.close();
    await destroyTestVault(t);
  });

  it('finishes the rotation first', async () => {
    // The stand-in delays its response to the new value's test request, so the signal arrives mid-rotation.
    let pendingResponse: http.ServerResponse | undefined;
    const requested = new Promise<void>((resolve) => {
      stub.handle((_request, response) => {
        pendingResponse = response;
        resolve();
      });
    });
    const rotation = startCli(['rotate', 'api/slow', '--value-stdin'], t.env, 'sk-interrupt-new-value-2\n');

    await requested;
    rotation.child.kill('SIGINT');
    // The notice on stderr shows the signal was received before the held response is sent.
    await waitFor(() => rotation.stderr().includes('SIGINT received') || rotation.ended());
    sendJson(pendingResponse!, 200, {});
    const code = await rotation.exited;

    assert.equal(code, 0, rotation.stderr());
    assert.match(rotation.stderr(), /^aegis: SIGINT received; finishing the rotation of api\/slow first\./m);
    assert.equal(rotation.stdout().split(' in ')[0], 'rotated api/slow: version 1 -> 2');
    const detail = await t.vault.registry.get(caller, 'api/slow');
    assert.equal(detail.credential.status, 'active');
    assert.equal(detail.currentVersion, 2);
  });
});
