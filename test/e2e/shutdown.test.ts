import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import type http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { loadConfig } from '../../src/config/config.js';
import { openDatabase } from '../../src/db/database.js';
import type { Caller } from '../../src/tokens/caller.js';
import { dropSchema, testDialects, testPostgresUrl } from '../helpers/databases.js';
import { sendJson, startHttpStub, type HttpStub } from '../helpers/http-stub.js';
import { callServer, type ServerProcess, startServer, stopServer } from '../helpers/server-process.js';
import { call, destroyTestVault, openTestVault } from '../helpers/test-vault.js';

const credentialName = 'vendor/held-key';
const credentialPath = `/credentials/${encodeURIComponent(credentialName)}`;
const initialValue = 'initial-value-7f3a91';
const issuedValue = 'issued-value-c28e04';

/** A rotation endpoint that holds each request until the test releases it, and a test endpoint that responds at once. */
interface HoldingVendor {
  stub: HttpStub;
  /** Resolves when the vendor has received a rotation request. */
  rotationReceived: Promise<void>;
  /** Sends the held rotation request its response, a new key. */
  release(): void;
  /** Makes later rotation requests get their response at once. */
  answerAtOnce(): void;
}

async function startHoldingVendor(): Promise<HoldingVendor> {
  let held: http.ServerResponse | undefined;
  let received!: () => void;
  const rotationReceived = new Promise<void>((resolve) => (received = resolve));
  let hold = true;
  const stub = await startHttpStub((request, response) => {
    if (request.url === '/rotate') {
      if (!hold) return sendJson(response, 200, { key: `${issuedValue}-${crypto.randomUUID()}` });
      held = response;
      received();
      return;
    }
    sendJson(response, 200, { ok: true });
  });
  return {
    stub,
    rotationReceived,
    release: () => sendJson(held!, 200, { key: issuedValue }),
    answerAtOnce: () => {
      hold = false;
    },
  };
}

/** Builds an `api` credential whose rotation requests a new key from the vendor stub. */
function apiCredential(vendorUrl: string, name = credentialName) {
  return {
    name,
    credential_type: 'apiKey',
    provider: 'api' as const,
    value: initialValue,
    provider_config: {
      test: { method: 'GET', url: `${vendorUrl}/me`, headers: { authorization: 'Bearer {{value}}' }, expected_status: 200 },
      rotate: { method: 'POST', url: `${vendorUrl}/rotate`, headers: { authorization: 'Bearer {{value}}' }, value_pointer: '/key' },
      // Longer than the shutdown waits, so the vendor call never times out by itself in these tests.
      timeout_ms: 60_000,
    },
  };
}

/** Resolves once the server's output contains `text`, checking after each chunk it writes. */
function waitForOutput(server: ServerProcess, text: string, timeoutMs = 15_000): Promise<void> {
  return new Promise((resolve, reject) => {
    const check = () => {
      if (!server.output().includes(text)) return;
      clearTimeout(timer);
      server.child.stdout.off('data', check);
      resolve();
    };
    const timer = setTimeout(() => {
      server.child.stdout.off('data', check);
      reject(new Error(`the server did not log ${text} within ${timeoutMs} ms:\n${server.output()}`));
    }, timeoutMs);
    server.child.stdout.on('data', check);
    check();
  });
}

/**
 * Sends `signal` and waits for the exit, then for the end of the process's output: the exit event can
 * come before the last lines the process wrote have been read.
 */
async function stopAndDrain(server: ServerProcess, signal: NodeJS.Signals, timeoutMs: number) {
  const outputEnded = new Promise<void>((resolve) => {
    if (server.child.stdout.readableEnded) resolve();
    else server.child.stdout.once('end', () => resolve());
  });
  const exit = await stopServer(server, signal, timeoutMs);
  await outputEnded;
  return exit;
}

/** Opens a TCP connection to the port; resolves with the error code, or 'connected'. */
function tryConnect(port: number): Promise<string> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve('connected');
    });
    socket.once('error', (error: NodeJS.ErrnoException) => resolve(error.code ?? error.message));
  });
}

/** Connects until the port refuses, up to 100 attempts one after another; returns the last result. */
async function connectUntilRefused(port: number): Promise<string> {
  let result = '';
  for (let attempt = 0; attempt < 100 && result !== 'ECONNREFUSED'; attempt += 1) {
    result = await tryConnect(port);
  }
  return result;
}

/** Reads the rotation leases and the credential's versions straight from the database the server used. */
async function readState(env: Record<string, string>, cwd: string) {
  const db = await openDatabase(loadConfig(env, cwd));
  try {
    const leases = await db.kysely.selectFrom('aegis_leases').select(['name', 'owner']).execute();
    const credential = await db.kysely.selectFrom('aegis_credentials').select(['id', 'status']).where('name', '=', credentialName).executeTakeFirstOrThrow();
    const versions = await db.kysely
      .selectFrom('aegis_credential_versions')
      .select(['version', 'is_current', 'state'])
      .where('credential_id', '=', credential.id)
      .orderBy('version')
      .execute();
    return {
      rotationLeases: leases.filter((lease) => lease.name.startsWith('rotation:')),
      allLeases: leases,
      status: credential.status,
      currentVersions: versions.filter((version) => Boolean(version.is_current)).map((version) => Number(version.version)),
      pendingVersions: versions.filter((version) => version.state === 'pending').map((version) => Number(version.version)),
    };
  } finally {
    await db.close();
  }
}

function assertNoSecrets(output: string): void {
  assert.equal(output.includes(initialValue), false, 'the initial value is not in the output');
  assert.equal(output.includes(issuedValue), false, 'the issued value is not in the output');
}

for (const dialect of await testDialects()) {
  describe(`aegis serve shutdown on ${dialect}`, () => {
    /** Creates a fresh folder and picks a fresh PostgreSQL schema name; `cleanUp` removes both. */
    function setUp() {
      const dir = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'aegis-shutdown-')));
      const schema = `aegis_stop_${crypto.randomBytes(6).toString('hex')}`;
      const env: Record<string, string> = {
        AEGIS_DATA_DIR: path.join(dir, 'data'),
        ...(dialect === 'postgres' ? { DATABASE_URL: testPostgresUrl, AEGIS_DATABASE_SCHEMA: schema } : {}),
      };
      const cleanUp = async () => {
        if (dialect === 'postgres') await dropSchema(schema);
        fs.rmSync(dir, { recursive: true, force: true });
      };
      return { dir, env, cleanUp };
    }

    it('finishes a held rotation, then exits 0', async () => {
      const { dir, env, cleanUp } = setUp();
      const vendor = await startHoldingVendor();
      let server: ServerProcess | undefined;
      try {
        server = await startServer({ env, expectToken: true });
        const token = server.adminToken!;
        const created = await callServer(server, token, 'POST', '/credentials', apiCredential(vendor.stub.url));
        assert.equal(created.status, 201, created.text);

        const rotation = callServer(server, token, 'POST', `${credentialPath}/rotate`, {});
        // Awaited below; this keeps a failure before that point from also counting as an unhandled rejection.
        rotation.catch(() => {});
        await vendor.rotationReceived;
        server.child.kill('SIGTERM');
        await waitForOutput(server, '"stopping: waiting for in-flight requests, rotations and scheduler jobs"');

        // The listener closes a moment after the log line, and before the held rotation has finished.
        assert.equal(await connectUntilRefused(server.port), 'ECONNREFUSED', 'new connections are refused while the rotation is held');
        // Further signals while stopping are logged and change nothing.
        server.child.kill('SIGTERM');
        server.child.kill('SIGINT');
        await waitForOutput(server, '"already stopping; the signal is ignored"');
        assert.equal(server.child.exitCode, null, 'the process is still finishing the rotation');

        vendor.release();
        const rotated = await rotation;
        assert.equal(rotated.status, 200, rotated.text);
        assert.equal(rotated.json.previous_version, 1);
        assert.equal(rotated.json.new_version, 2);

        const exit = await stopAndDrain(server, 'SIGTERM', 30_000);
        assert.deepEqual(exit, { code: 0, signal: null }, server.output());
        assert.match(server.output(), /"msg":"stopped"/);
        assertNoSecrets(server.output());

        const state = await readState(env, dir);
        assert.deepEqual(state.rotationLeases, [], 'no rotation lease is left');
        assert.deepEqual(state.allLeases, [], 'the scheduler lease is released too');
        assert.deepEqual(state.currentVersions, [2]);
        assert.deepEqual(state.pendingVersions, []);
        assert.equal(state.status, 'active');
      } finally {
        if (server) await stopServer(server, 'SIGKILL');
        await vendor.stub.close();
        await cleanUp();
      }
    });

    it('exits 1 after the timeout, then recovers', async () => {
      const { dir, env, cleanUp } = setUp();
      const vendor = await startHoldingVendor();
      const servers: ServerProcess[] = [];
      try {
        const stuck = await startServer({ env: { ...env, AEGIS_SHUTDOWN_TIMEOUT_SECONDS: '1' }, expectToken: true });
        servers.push(stuck);
        const token = stuck.adminToken!;
        const created = await callServer(stuck, token, 'POST', '/credentials', apiCredential(vendor.stub.url));
        assert.equal(created.status, 201, created.text);

        const rotation = callServer(stuck, token, 'POST', `${credentialPath}/rotate`, {});
        // The request fails when the process exits; this keeps that from counting as an unhandled rejection.
        rotation.catch(() => {});
        await vendor.rotationReceived;
        const exit = await stopAndDrain(stuck, 'SIGTERM', 30_000);
        assert.deepEqual(exit, { code: 1, signal: null }, stuck.output());
        await assert.rejects(rotation, 'the held request ends with the process');
        const timedOut = stuck.output().split('\n').find((line) => line.includes('"shutdown timed out'));
        assert.ok(timedOut, stuck.output());
        assert.deepEqual(JSON.parse(timedOut).rotations, [credentialName]);
        assertNoSecrets(stuck.output());

        const interrupted = await readState(env, dir);
        assert.deepEqual(interrupted.pendingVersions, [2], 'the interrupted rotation left its pending version');
        assert.equal(interrupted.rotationLeases.length, 1, 'and its lease');

        vendor.answerAtOnce();
        const restarted = await startServer({ env });
        servers.push(restarted);
        assert.match(restarted.output(), /"recovered interrupted rotations"/);
        const recovered = await readState(env, dir);
        assert.deepEqual(recovered.rotationLeases, []);
        assert.deepEqual(recovered.currentVersions, [1], 'the rotation was undone');
        assert.deepEqual(recovered.pendingVersions, []);
        assert.equal(recovered.status, 'active');

        const rotatedAgain = await callServer(restarted, token, 'POST', `${credentialPath}/rotate`, {});
        assert.equal(rotatedAgain.status, 200, rotatedAgain.text);
        const finalExit = await stopAndDrain(restarted, 'SIGTERM', 30_000);
        assert.deepEqual(finalExit, { code: 0, signal: null }, restarted.output());
        assertNoSecrets(restarted.output());

        const final = await readState(env, dir);
        assert.deepEqual(final.allLeases, []);
        assert.equal(final.currentVersions.length, 1);
        assert.deepEqual(final.pendingVersions, []);
      } finally {
        for (const server of servers) await stopServer(server, 'SIGKILL');
        await vendor.stub.close();
        await cleanUp();
      }
    });
  });

  describe(`rotation drain on ${dialect}`, () => {
    const setupCaller: Caller = { actor: 'test-setup', tokenId: null, scopes: ['admin'], namePatterns: [], tags: [], ipAddress: null };

    it('ends a scheduled run after the rotation in flight', async () => {
      const vendor = await startHoldingVendor();
      const t = await openTestVault(dialect, { env: { AEGIS_ROTATION_CONCURRENCY: '1' } });
      try {
        const names = ['drain/a', 'drain/b', 'drain/c'];
        for (const name of names) {
          await t.vault.registry.create(setupCaller, {
            ...apiCredential(vendor.stub.url, name),
            rotation_enabled: true,
            rotation_strategy: 'scheduled',
            rotation_interval_hours: 24,
          });
        }
        t.clock.advanceHours(25);
        const inFlight = t.vault.rotation.engine.inFlight;

        const run = t.vault.rotation.runScheduled(setupCaller);
        await vendor.rotationReceived;
        assert.deepEqual(inFlight.names(), ['drain/a']);
        inFlight.stopAccepting();
        let settled = false;
        const waiting = inFlight.settled().then(() => (settled = true));
        await new Promise<void>((resolve) => setImmediate(resolve));
        assert.equal(settled, false, 'settled() waits for the held rotation');

        vendor.release();
        const result = await run;
        await waiting;
        assert.equal(result.rotated, 1, JSON.stringify(result));
        assert.deepEqual(result.details.map((detail) => detail.credential), ['drain/a']);
        assert.deepEqual(inFlight.names(), []);
        const rotateRequests = vendor.stub.requests.filter((request) => request.url === '/rotate');
        assert.equal(rotateRequests.length, 1, 'the other due credentials were not started');

        const rejected = await call(t.app, 'POST', `/credentials/${encodeURIComponent('drain/b')}/rotate`, { token: t.adminToken, body: {} });
        assert.equal(rejected.status, 503, rejected.body);
        assert.match(rejected.json.detail, /shutting down/);
        const versions = await t.vault.db.kysely
          .selectFrom('aegis_credential_versions as v')
          .innerJoin('aegis_credentials as c', 'c.id', 'v.credential_id')
          .select(['c.name', 'v.version'])
          .where('c.name', '=', 'drain/b')
          .execute();
        assert.deepEqual(versions.map((row) => Number(row.version)), [1], 'the rejected rotation wrote no version');
        const audited = await t.vault.db.kysely
          .selectFrom('aegis_audit_log')
          .select(['success', 'error_message'])
          .where('credential_name', '=', 'drain/b')
          .where('action', '=', 'rotated')
          .execute();
        assert.equal(audited.length, 1, 'the rejected rotation is audited');
        assert.equal(Boolean(audited[0]!.success), false);
      } finally {
        await vendor.stub.close();
        await destroyTestVault(t);
      }
    });
  });
}
