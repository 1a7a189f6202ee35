import assert from 'node:assert/strict';
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const tsxLoader = import.meta.resolve('tsx');

/** Starts `aegis serve` from source on a free port and waits for its "AEGIS is serving" log line. */
function startServer(dataDir: string): Promise<{ child: ChildProcessWithoutNullStreams; port: number; output: () => string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', tsxLoader, path.join(root, 'src/cli/bin.ts'), 'serve'], {
      cwd: dataDir,
      env: { PATH: process.env.PATH ?? '', HOME: os.homedir(), AEGIS_PORT: '0' },
    });
    let output = '';
    const timer = setTimeout(() => reject(new Error(`server did not start:\n${output}`)), 30_000);
    const onData = (chunk: Buffer) => {
      output += chunk.toString('utf8');
      const line = output.split('\n').find((text) => text.includes('"AEGIS is serving"'));
      if (line) {
        clearTimeout(timer);
        resolve({ child, port: JSON.parse(line).port, output: () => output });
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.on('exit', (code) => reject(new Error(`server exited with ${code}:\n${output}`)));
  });
}

describe('aegis serve', () => {
  let dir: string;
  let server: Awaited<ReturnType<typeof startServer>>;

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'aegis-serve-'));
    server = await startServer(dir);
  });

  after(() => {
    server?.child.kill('SIGTERM');
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('prints the admin token once', async () => {
    const tokens = server.output().match(/aegis_[0-9a-f]{12}_[A-Za-z0-9_-]{43}/g) ?? [];
    assert.equal(tokens.length, 1);
    const response = await fetch(`http://127.0.0.1:${server.port}/credentials`, { headers: { authorization: `Bearer ${tokens[0]}` } });
    assert.equal(response.status, 200);
  });

  it('creates the SQLite file and key under ./data', () => {
    assert.ok(fs.existsSync(path.join(dir, 'data/aegis.db')));
    const keyMode = fs.statSync(path.join(dir, 'data/master.key')).mode & 0o777;
    assert.equal(keyMode, 0o600);
  });

  it('answers /health and /openapi.json', async () => {
    const health = await fetch(`http://127.0.0.1:${server.port}/health`);
    assert.equal(health.status, 200);
    assert.equal(((await health.json()) as { agent: string }).agent, 'AEGIS');
    const openapi = await fetch(`http://127.0.0.1:${server.port}/openapi.json`);
    const document = (await openapi.json()) as { openapi: string; paths: Record<string, unknown> };
    assert.equal(document.openapi, '3.0.3');
    assert.ok(document.paths['/credentials/{name}/value']);
  });

  it('warns that the key lies beside the data', () => {
    assert.match(server.output(), /generated a master key file beside the data/);
  });
});
