import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import type { TLSSocket } from 'node:tls';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { certificateValidityProblem, checkListenAddress, isLoopbackHost } from '../../src/http/tls.js';
import { runCli } from '../helpers/cli.js';
import { startServer, stopServer, type ServerProcess } from '../helpers/server-process.js';

const run = promisify(execFile);

/** Tells whether openssl can be run; without it the HTTPS tests are skipped, except under CI=true. */
async function opensslAvailable(): Promise<boolean> {
  try {
    await run('openssl', ['version']);
    return true;
  } catch {
    if (process.env.CI === 'true') throw new Error('openssl is not on PATH, and CI=true requires it for the TLS tests.');
    process.stdout.write('# skipping the HTTPS tests: openssl is not on PATH\n');
    return false;
  }
}

/** Writes a new self-signed P-256 certificate for 127.0.0.1 and its key into `dir`, named after `commonName`. */
async function generateCertificate(dir: string, commonName: string): Promise<{ cert: Buffer; key: Buffer }> {
  const certFile = path.join(dir, `${commonName}.cert.pem`);
  const keyFile = path.join(dir, `${commonName}.key.pem`);
  await run('openssl', [
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '2',
    '-subj', `/CN=${commonName}`, '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', keyFile, '-out', certFile,
  ]);
  return { cert: fs.readFileSync(certFile), key: fs.readFileSync(keyFile) };
}

interface HttpsResult {
  status: number;
  headers: Record<string, unknown>;
  fingerprint256: string;
  /** The client's port of the connection, to tell whether two requests shared one connection. */
  localPort: number;
}

/** Sends a GET over HTTPS that trusts only `ca`, and reports the certificate the server presented. */
function httpsGet(url: string, ca: Buffer, agent?: https.Agent): Promise<HttpsResult> {
  return new Promise((resolve, reject) => {
    const request = https.get(url, { ca, ...(agent ? { agent } : { agent: false }) }, (response) => {
      const socket = response.socket as TLSSocket;
      const fingerprint256 = socket.getPeerCertificate().fingerprint256;
      const localPort = socket.localPort ?? 0;
      response.resume();
      response.on('end', () => resolve({ status: response.statusCode ?? 0, headers: response.headers, fingerprint256, localPort }));
    });
    request.on('error', reject);
  });
}

/** Counts the occurrences of `text` in the server's output. */
function countInOutput(server: ServerProcess, text: string): number {
  return server.output().split(text).length - 1;
}

function fingerprintOf(cert: Buffer): string {
  return new crypto.X509Certificate(cert).fingerprint256;
}

/** Waits until `text` occurs `count` times in the server's output, checking after each chunk it writes. */
function waitUntilCount(server: ServerProcess, text: string, count: number, timeoutMs = 15_000): Promise<void> {
  return new Promise((resolve, reject) => {
    const check = () => {
      if (countInOutput(server, text) < count) return;
      clearTimeout(timer);
      server.child.stdout.off('data', check);
      resolve();
    };
    const timer = setTimeout(() => {
      server.child.stdout.off('data', check);
      reject(new Error(`the server did not log ${text} ${count} times within ${timeoutMs} ms:\n${server.output()}`));
    }, timeoutMs);
    // The helper's listener was added first, so output() already contains the chunk when this one runs.
    server.child.stdout.on('data', check);
    check();
  });
}

describe('listen address rule', () => {
  it('treats loopback addresses as local', () => {
    for (const host of ['127.0.0.1', '127.10.0.3', '::1', 'localhost', 'LOCALHOST', '::ffff:127.0.0.1']) {
      assert.equal(isLoopbackHost(host), true, host);
    }
    for (const host of ['0.0.0.0', '::', '10.0.0.5', '128.0.0.1', '192.168.1.2', 'aegis.example', '::ffff:10.0.0.1']) {
      assert.equal(isLoopbackHost(host), false, host);
    }
  });

  it('allows other addresses only with TLS or the override', () => {
    assert.throws(() => checkListenAddress('0.0.0.0', { tls: undefined, allowInsecureListen: false }), /AEGIS_ALLOW_INSECURE_LISTEN/);
    assert.doesNotThrow(() => checkListenAddress('0.0.0.0', { tls: { certFile: 'c.pem', keyFile: 'k.pem' }, allowInsecureListen: false }));
    assert.doesNotThrow(() => checkListenAddress('0.0.0.0', { tls: undefined, allowInsecureListen: true }));
    assert.doesNotThrow(() => checkListenAddress('127.0.0.1', { tls: undefined, allowInsecureListen: false }));
  });

  for (const [label, args, env] of [
    ['--host', ['serve', '--host', '0.0.0.0'], {}],
    ['AEGIS_HOST', ['serve'], { AEGIS_HOST: '0.0.0.0' }],
  ] as const) {
    it(`rejects plain HTTP on 0.0.0.0 via ${label}`, async () => {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'aegis-listen-'));
      try {
        const dataDir = path.join(dir, 'data');
        const result = await runCli([...args], { AEGIS_DATA_DIR: dataDir, AEGIS_PORT: '0', ...env }, { cwd: dir });
        assert.notEqual(result.code, 0, result.stdout);
        assert.match(result.stderr, /plain HTTP on 0\.0\.0\.0, because it is not a loopback address/);
        assert.match(result.stderr, /AEGIS_HOST or --host/);
        assert.match(result.stderr, /AEGIS_TLS_CERT_FILE and AEGIS_TLS_KEY_FILE/);
        assert.match(result.stderr, /AEGIS_ALLOW_INSECURE_LISTEN=on/);
        assert.equal(fs.existsSync(dataDir), false, 'no data folder, database or key file is created');
        assert.doesNotMatch(result.stdout, /AEGIS is serving/);
      } finally {
        fs.rmSync(dir, { recursive: true, force: true });
      }
    });
  }
});

const haveOpenssl = await opensslAvailable();

describe('certificate validity', { skip: haveOpenssl ? false : 'openssl is not on PATH' }, () => {
  it('names an expired or future certificate', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'aegis-tls-validity-'));
    try {
      // generateCertificate issues certificates valid from now for two days.
      const { cert } = await generateCertificate(dir, 'validity');
      const day = 86_400_000;
      assert.equal(certificateValidityProblem(cert, new Date()), undefined);
      assert.match(certificateValidityProblem(cert, new Date(Date.now() + 3 * day)) ?? '', /^the certificate expired on \d{4}-/);
      assert.match(certificateValidityProblem(cert, new Date(Date.now() - day)) ?? '', /^the certificate is not valid before \d{4}-/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('aegis serve over HTTPS', { skip: haveOpenssl ? false : 'openssl is not on PATH' }, () => {
  let dir: string;
  let certFile: string;
  let keyFile: string;
  let first: { cert: Buffer; key: Buffer };
  let server: ServerProcess;

  before(async () => {
    dir = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'aegis-tls-')));
    certFile = path.join(dir, 'server.cert.pem');
    keyFile = path.join(dir, 'server.key.pem');
    first = await generateCertificate(dir, 'first');
    fs.writeFileSync(certFile, first.cert);
    fs.writeFileSync(keyFile, first.key, { mode: 0o600 });
    server = await startServer({
      env: { AEGIS_DATA_DIR: path.join(dir, 'data'), AEGIS_TLS_CERT_FILE: certFile, AEGIS_TLS_KEY_FILE: keyFile },
      expectToken: true,
    });
  });

  after(async () => {
    if (server) await stopServer(server);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('logs tls: true and serves HTTPS', async () => {
    assert.match(server.url, /^https:\/\/127\.0\.0\.1:\d+$/);
    const response = await httpsGet(`${server.url}/health`, first.cert);
    assert.equal(response.status, 200);
    assert.equal(response.fingerprint256, fingerprintOf(first.cert));
    assert.equal(response.headers['strict-transport-security'], 'max-age=31536000');
    assert.equal(response.headers['cache-control'], 'no-store');
  });

  it('rejects clients without the CA', async () => {
    await assert.rejects(httpsGet(`${server.url}/health`, Buffer.from('')), /self[- ]signed|unable to verify|certificate/i);
  });

  it('gives plain HTTP no response', async () => {
    await assert.rejects(fetch(`http://127.0.0.1:${server.port}/health`));
  });

  it('reloads the certificate on SIGHUP', async () => {
    const agent = new https.Agent({ keepAlive: true, maxSockets: 1, ca: first.cert });
    try {
      const before = await httpsGet(`${server.url}/health`, first.cert, agent);
      assert.equal(before.fingerprint256, fingerprintOf(first.cert));

      const second = await generateCertificate(dir, 'second');
      fs.writeFileSync(certFile, second.cert);
      fs.writeFileSync(keyFile, second.key);
      const reloads = countInOutput(server, '"reloaded the TLS certificate"');
      server.child.kill('SIGHUP');
      await waitUntilCount(server, '"reloaded the TLS certificate"', reloads + 1);

      // The kept-alive connection survives the swap and keeps the certificate of its handshake.
      const sameConnection = await httpsGet(`${server.url}/health`, first.cert, agent);
      assert.equal(sameConnection.status, 200);
      assert.equal(sameConnection.localPort, before.localPort);

      const fresh = await httpsGet(`${server.url}/health`, second.cert);
      assert.equal(fresh.status, 200);
      assert.equal(fresh.fingerprint256, fingerprintOf(second.cert));
      assert.notEqual(fresh.fingerprint256, fingerprintOf(first.cert));
      first = second;
    } finally {
      agent.destroy();
    }
  });

  it('keeps the certificate when the new pair is broken', async () => {
    const current = first;
    const other = await generateCertificate(dir, 'mismatched');
    const failureLine = '"reloading the TLS certificate failed; the previous certificate stays in use"';

    // A key that does not belong to the certificate.
    fs.writeFileSync(keyFile, other.key);
    const failuresBefore = countInOutput(server, failureLine);
    server.child.kill('SIGHUP');
    await waitUntilCount(server, failureLine, failuresBefore + 1);
    const afterMismatch = await httpsGet(`${server.url}/health`, current.cert);
    assert.equal(afterMismatch.status, 200);
    assert.equal(afterMismatch.fingerprint256, fingerprintOf(current.cert));

    // A certificate file that is not PEM at all.
    fs.writeFileSync(certFile, 'not a certificate\n');
    fs.writeFileSync(keyFile, current.key);
    server.child.kill('SIGHUP');
    await waitUntilCount(server, failureLine, failuresBefore + 2);
    const afterGarbage = await httpsGet(`${server.url}/health`, current.cert);
    assert.equal(afterGarbage.status, 200);
    assert.equal(afterGarbage.fingerprint256, fingerprintOf(current.cert));

    assert.doesNotMatch(server.output(), /BEGIN (EC |)PRIVATE KEY/, 'no key material in the log');
    fs.writeFileSync(certFile, current.cert);
  });

  it('rejects a key that does not match at start-up', async () => {
    const other = await generateCertificate(dir, 'startup-mismatch');
    const startDir = fs.mkdtempSync(path.join(dir, 'start-'));
    const mismatchedKey = path.join(startDir, 'key.pem');
    fs.writeFileSync(mismatchedKey, other.key);
    const dataDir = path.join(startDir, 'data');
    const result = await runCli(['serve'], { AEGIS_DATA_DIR: dataDir, AEGIS_PORT: '0', AEGIS_TLS_CERT_FILE: certFile, AEGIS_TLS_KEY_FILE: mismatchedKey }, { cwd: startDir });
    assert.notEqual(result.code, 0, result.stdout);
    assert.match(result.stderr, /TLS is not usable/);
    assert.ok(result.stderr.includes(mismatchedKey), result.stderr);
    assert.equal(fs.existsSync(dataDir), false, 'no data folder is created');
  });

  it('rejects a key of another type at start-up', async () => {
    const startDir = fs.mkdtempSync(path.join(dir, 'start-'));
    const rsaKey = path.join(startDir, 'rsa.key.pem');
    await run('openssl', ['genpkey', '-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048', '-out', rsaKey]);
    const dataDir = path.join(startDir, 'data');
    const result = await runCli(['serve'], { AEGIS_DATA_DIR: dataDir, AEGIS_PORT: '0', AEGIS_TLS_CERT_FILE: certFile, AEGIS_TLS_KEY_FILE: rsaKey }, { cwd: startDir });
    assert.notEqual(result.code, 0, result.stdout);
    assert.match(result.stderr, /does not belong to the certificate/);
    assert.equal(fs.existsSync(dataDir), false, 'no data folder is created');
  });
});
