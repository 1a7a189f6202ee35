import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startServer, stopServer, type ServerProcess } from '../helpers/server-process.js';

describe('aegis serve', () => {
  let dir: string;
  let server: ServerProcess;

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'aegis-serve-'));
    // No AEGIS_DATA_DIR: the defaults put the database and key under ./data of the working directory.
    server = await startServer({ cwd: dir, expectToken: true });
  });

  after(async () => {
    if (server) await stopServer(server);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('prints the admin token once', async () => {
    const tokens = server.output().match(/aegis_[0-9a-f]{12}_[A-Za-z0-9_-]{43}/g) ?? [];
    assert.equal(tokens.length, 1);
    assert.equal(tokens[0], server.adminToken);
    const response = await fetch(`${server.url}/credentials`, { headers: { authorization: `Bearer ${server.adminToken}` } });
    assert.equal(response.status, 200);
  });

  it('creates the SQLite file and key under ./data', () => {
    assert.ok(fs.existsSync(path.join(dir, 'data/aegis.db')));
    const keyMode = fs.statSync(path.join(dir, 'data/master.key')).mode & 0o777;
    assert.equal(keyMode, 0o600);
  });

  it('keeps the SQLite files private to their owner', () => {
    for (const file of ['aegis.db', 'aegis.db-wal']) {
      assert.equal(fs.statSync(path.join(dir, 'data', file)).mode & 0o777, 0o600, file);
    }
  });

  it('serves plain HTTP on loopback by default', () => {
    assert.match(server.url, /^http:\/\/127\.0\.0\.1:\d+$/);
    const serving = server.output().split('\n').find((line) => line.includes('"AEGIS is serving"'));
    assert.equal(JSON.parse(serving!).tls, false);
  });

  it('answers /health and /openapi.json', async () => {
    const health = await fetch(`${server.url}/health`);
    assert.equal(health.status, 200);
    assert.equal(((await health.json()) as { agent: string }).agent, 'AEGIS');
    const openapi = await fetch(`${server.url}/openapi.json`);
    const document = (await openapi.json()) as { openapi: string; paths: Record<string, unknown> };
    assert.equal(document.openapi, '3.0.3');
    assert.ok(document.paths['/credentials/{name}/value']);
  });

  it('warns that the key lies beside the data', () => {
    assert.match(server.output(), /generated a master key file beside the data/);
  });

  it('ignores SIGHUP without TLS', async () => {
    server.child.kill('SIGHUP');
    while (!server.output().includes('there is no certificate to reload') && server.child.exitCode === null) {
      await Promise.race([new Promise<void>((resolve) => server.child.stdout.once('data', () => resolve())), server.exited]);
    }
    const health = await fetch(`${server.url}/health`);
    assert.equal(health.status, 200);
    assert.equal(server.child.exitCode, null);
  });

  it('exits 0 on SIGTERM', async () => {
    const exit = await stopServer(server, 'SIGTERM');
    assert.deepEqual(exit, { code: 0, signal: null }, server.output());
  });
});
