import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import type http from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { localCaller } from '../../src/tokens/caller.js';
import { tsxLoader } from '../helpers/cli.js';
import { sendJson, startHttpStub, type HttpStub } from '../helpers/http-stub.js';
import { destroyTestVault, openTestVault, type TestVault } from '../helpers/test-vault.js';

const cliEntry = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../src/cli/bin.ts');

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
    // The stand-in answers the new value's test request only when told, so the signal arrives mid-rotation.
    let held: http.ServerResponse | undefined;
    const requested = new Promise<void>((resolve) => {
      stub.handle((_request, response) => {
        held = response;
        resolve();
      });
    });
    const child = spawn(process.execPath, ['--import', tsxLoader, cliEntry, 'rotate', 'api/slow', '--value-stdin'], {
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...t.env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString('utf8')));
    const noticed = new Promise<void>((resolve) => {
      child.stderr.on('data', (chunk: Buffer) => {
        stderr += chunk.toString('utf8');
        if (stderr.includes('SIGINT received')) resolve();
      });
    });
    const exited = once(child, 'exit');
    child.stdin.end('sk-interrupt-new-value-2\n');

    await requested;
    child.kill('SIGINT');
    await Promise.race([noticed, exited]);
    sendJson(held!, 200, {});
    const [code] = (await exited) as [number | null];

    assert.equal(code, 0, stderr);
    assert.match(stderr, /^aegis: SIGINT received; finishing the rotation of api\/slow first\./m);
    assert.equal(stdout.split(' in ')[0], 'rotated api/slow: version 1 -> 2');
    const detail = await t.vault.registry.get(caller, 'api/slow');
    assert.equal(detail.credential.status, 'active');
    assert.equal(detail.currentVersion, 2);
  });
});
