#!/usr/bin/env node
// Installs (or reuses) n8n 2.8.4 outside the project's dependencies, starts it on 127.0.0.1 with a
// fresh user folder, creates the owner and a public-API key, and prints {"N8N_URL", "N8N_API_KEY"} as
// JSON on stdout. n8n runs until this script gets SIGINT or SIGTERM, then it is stopped.
// test/e2e/n8n-real.test.ts imports prepareN8n, startN8n and N8nInstance.stop from here.
//
// Environment: N8N_E2E_DIR sets the install folder (default .cache/n8n-2.8.4 under the project).
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const n8nVersion = '2.8.4';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const defaultInstallDir = path.join(root, '.cache', `n8n-${n8nVersion}`);

// Estimates: a fresh install took about 3.5 minutes and 2.3 GB on one development machine.
const installTimeoutMs = 15 * 60_000;
// Each start migrates a fresh SQLite database, which took 6 to 8 s in all on that machine.
const startTimeoutMs = 120_000;
const requestTimeoutMs = 10_000;
const stopTimeoutMs = 15_000;

const apiKeyScopes = [
  'credential:create',
  'credential:delete',
  'credential:list',
  'credential:update',
  'workflow:create',
  'workflow:read',
  'workflow:update',
  'workflow:list',
  'workflow:delete',
];

/** Returns the n8n version installed in `dir`, or null when there is none. */
function installedVersion(dir) {
  try {
    return JSON.parse(fs.readFileSync(path.join(dir, 'node_modules/n8n/package.json'), 'utf8')).version;
  } catch {
    return null;
  }
}

/** Runs a command with inherited stderr and rejects when it fails or outlives `timeoutMs`. */
function run(command, args, options, timeoutMs) {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { ...options, stdio: ['ignore', 'ignore', 'inherit'] });
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${command} ${args.join(' ')} timed out after ${timeoutMs / 1000} s`));
    }, timeoutMs);
    child.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      if (code === 0) resolve();
      else reject(new Error(`${command} ${args.join(' ')} failed with ${signal ?? `exit code ${code}`}`));
    });
  });
}

/**
 * Installs n8n 2.8.4 into `dir` unless that folder already contains this version, and returns the path
 * of its `n8n` binary. The xlsx override keeps the install on the npm registry, because
 * n8n-nodes-base 2.8.4 depends on an xlsx tarball from cdn.sheetjs.com.
 */
export async function prepareN8n(dir = process.env.N8N_E2E_DIR || defaultInstallDir) {
  const binary = path.join(dir, 'node_modules/.bin/n8n');
  const found = installedVersion(dir);
  if (found === n8nVersion && fs.existsSync(binary)) return binary;

  log(found ? `replacing n8n ${found} in ${dir} with ${n8nVersion}` : `installing n8n ${n8nVersion} into ${dir} (about 3.5 minutes, 2.3 GB)`);
  fs.mkdirSync(dir, { recursive: true });
  const manifest = { private: true, dependencies: { n8n: n8nVersion }, overrides: { xlsx: '0.18.5' } };
  fs.writeFileSync(path.join(dir, 'package.json'), `${JSON.stringify(manifest, null, 2)}\n`);
  const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
  await run(npm, ['install', '--no-audit', '--no-fund', '--loglevel=error'], { cwd: dir }, installTimeoutMs);
  if (installedVersion(dir) !== n8nVersion) throw new Error(`npm install in ${dir} did not install n8n ${n8nVersion}`);
  return binary;
}

/** Returns a TCP port that was free on 127.0.0.1 a moment ago. */
function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

async function postJson(url, body, headers = {}) {
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json', ...headers },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(requestTimeoutMs),
  });
  const text = await response.text();
  if (!response.ok) throw new Error(`POST ${url} returned HTTP ${response.status}: ${text.slice(0, 300)}`);
  return { response, json: JSON.parse(text) };
}

/** Waits until GET /rest/settings returns JSON with `data`, or the process exits, or the time is up. */
async function waitUntilReady(url, child, output) {
  const deadline = Date.now() + startTimeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`n8n exited with ${child.signalCode ?? `exit code ${child.exitCode}`} before it was ready:\n${output()}`);
    }
    try {
      const response = await fetch(`${url}/rest/settings`, { signal: AbortSignal.timeout(2000) });
      if (response.ok && (await response.json()).data) return;
    } catch {
      // Not listening yet.
    }
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
  throw new Error(`n8n did not return its settings from GET ${url}/rest/settings within ${startTimeoutMs / 1000} s:\n${output()}`);
}

/**
 * Starts n8n from `binary` on 127.0.0.1 with a fresh user folder, creates the owner and an API key,
 * and returns {url, apiKey, stop}. Telemetry, version checks, templates and personalization are off.
 * On any failure it stops n8n and removes the folder before it rethrows.
 */
export async function startN8n(binary) {
  const userFolder = fs.mkdtempSync(path.join(os.tmpdir(), 'aegis-n8n-'));
  const port = await freePort();
  let brokerPort = await freePort();
  while (brokerPort === port) brokerPort = await freePort();
  const url = `http://127.0.0.1:${port}`;

  // Only these variables reach n8n, so no N8N_* setting of the caller's shell changes the run.
  const env = {
    PATH: process.env.PATH ?? '',
    HOME: userFolder,
    N8N_USER_FOLDER: userFolder,
    N8N_PORT: String(port),
    // n8n's task runner broker listens on 5679 by default, which collides between two instances.
    N8N_RUNNERS_BROKER_PORT: String(brokerPort),
    N8N_LISTEN_ADDRESS: '127.0.0.1',
    N8N_HOST: '127.0.0.1',
    N8N_DIAGNOSTICS_ENABLED: 'false',
    N8N_VERSION_NOTIFICATIONS_ENABLED: 'false',
    N8N_TEMPLATES_ENABLED: 'false',
    N8N_PERSONALIZATION_ENABLED: 'false',
    N8N_SECURE_COOKIE: 'false',
  };
  // detached puts n8n and its task runner in their own process group, so stop() ends both.
  const child = spawn(binary, ['start'], { env, cwd: userFolder, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  const keep = (chunk) => {
    output = (output + chunk.toString('utf8')).slice(-20_000);
  };
  child.stdout.on('data', keep);
  child.stderr.on('data', keep);
  const exited = new Promise((resolve) => child.once('exit', resolve));
  const killGroup = (signal) => {
    try {
      process.kill(-child.pid, signal);
    } catch {
      // The group is already gone.
    }
  };
  // Ends n8n even when the caller exits without calling stop().
  const onExit = () => killGroup('SIGKILL');
  process.once('exit', onExit);

  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    process.removeListener('exit', onExit);
    if (child.exitCode === null && child.signalCode === null) {
      killGroup('SIGTERM');
      const timer = setTimeout(() => killGroup('SIGKILL'), stopTimeoutMs);
      await exited;
      clearTimeout(timer);
    }
    // A final SIGKILL to the group ends a task runner that is still running after n8n exited.
    killGroup('SIGKILL');
    fs.rmSync(userFolder, { recursive: true, force: true });
  };

  try {
    await waitUntilReady(url, child, () => output);
    const owner = await postJson(`${url}/rest/owner/setup`, {
      email: 'owner@aegis.test',
      firstName: 'AEGIS',
      lastName: 'Test',
      password: 'AegisTest123',
    });
    const cookie = (owner.response.headers.getSetCookie?.() ?? []).map((line) => line.split(';')[0]).find((pair) => pair.startsWith('n8n-auth='));
    if (!cookie) throw new Error('POST /rest/owner/setup returned no n8n-auth cookie');
    const key = await postJson(`${url}/rest/api-keys`, { label: 'aegis-e2e', scopes: apiKeyScopes, expiresAt: null }, { cookie });
    const apiKey = key.json?.data?.rawApiKey;
    if (typeof apiKey !== 'string' || apiKey === '') throw new Error('POST /rest/api-keys returned no data.rawApiKey');
    return { url, apiKey, pid: child.pid, stop, output: () => output };
  } catch (error) {
    await stop();
    throw error;
  }
}

function log(message) {
  process.stderr.write(`n8n-e2e: ${message}\n`);
}

async function main() {
  const started = Date.now();
  const binary = await prepareN8n();
  const n8n = await startN8n(binary);
  log(`n8n ${n8nVersion} is ready at ${n8n.url} after ${Math.round((Date.now() - started) / 1000)} s; stop it with Ctrl-C`);
  process.stdout.write(`${JSON.stringify({ N8N_URL: n8n.url, N8N_API_KEY: n8n.apiKey })}\n`);
  for (const signal of ['SIGINT', 'SIGTERM']) {
    process.once(signal, () => {
      log('stopping n8n');
      n8n.stop().then(() => process.exit(0));
    });
  }
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main().catch((error) => {
    log(error instanceof Error ? error.message : String(error));
    process.exit(1);
  });
}
