// Runs apply, sync, rotation and the health check of a real `aegis serve` against a real n8n 2.8.4
// on 127.0.0.1. Only with N8N_E2E=1, because the first run installs n8n (about 3.5 minutes, 2.3 GB)
// through scripts/n8n-e2e.mjs. N8N_E2E_DIR reuses an existing install.
import assert from 'node:assert/strict';
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
// @ts-expect-error scripts/n8n-e2e.mjs is plain JavaScript without type declarations.
import { prepareN8n, startN8n } from '../../scripts/n8n-e2e.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const tsxLoader = import.meta.resolve('tsx');
const enabled = process.env.N8N_E2E === '1';

interface N8nInstance {
  url: string;
  apiKey: string;
  stop: () => Promise<void>;
}

interface WorkflowNode {
  name: string;
  credentials?: Record<string, { id: string; name: string }>;
}

interface Workflow {
  id: string;
  nodes: WorkflowNode[];
  connections: Record<string, unknown>;
  settings: Record<string, unknown>;
}

/** Starts `aegis serve` from source on a free port and returns its port and the admin token it prints once. */
function startAegis(dataDir: string, n8n: N8nInstance): Promise<{ child: ChildProcessWithoutNullStreams; port: number; adminToken: string; output: () => string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', tsxLoader, path.join(root, 'src/cli/bin.ts'), 'serve'], {
      cwd: dataDir,
      env: {
        PATH: process.env.PATH ?? '',
        HOME: os.homedir(),
        AEGIS_PORT: '0',
        AEGIS_DATA_DIR: path.join(dataDir, 'data'),
        N8N_URL: n8n.url,
        N8N_API_KEY: n8n.apiKey,
      },
    });
    let output = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`aegis serve did not start within 30 s:\n${output}`));
    }, 30_000);
    const onData = (chunk: Buffer) => {
      output += chunk.toString('utf8');
      const line = output.split('\n').find((text) => text.includes('"AEGIS is serving"'));
      const token = output.match(/aegis_[0-9a-f]{12}_[A-Za-z0-9_-]{43}/)?.[0];
      if (line && token) {
        clearTimeout(timer);
        resolve({ child, port: JSON.parse(line).port, adminToken: token, output: () => output });
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`aegis serve exited with ${code}:\n${output}`));
    });
  });
}

/** Calls n8n's public API and fails the test on a non-2xx status. */
async function n8nApi<T>(n8n: N8nInstance, method: string, apiPath: string, body?: unknown): Promise<T> {
  const response = await fetch(`${n8n.url}/api/v1${apiPath}`, {
    method,
    headers: { 'x-n8n-api-key': n8n.apiKey, 'content-type': 'application/json', accept: 'application/json' },
    signal: AbortSignal.timeout(10_000),
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await response.text();
  assert.ok(response.ok, `n8n ${method} ${apiPath} returned HTTP ${response.status}: ${text}`);
  return JSON.parse(text) as T;
}

async function n8nCredentials(n8n: N8nInstance): Promise<Array<{ id: string; name: string; type: string; updatedAt: string }>> {
  const page = await n8nApi<{ data: Array<{ id: string; name: string; type: string; updatedAt: string }>; nextCursor: string | null }>(n8n, 'GET', '/credentials?limit=100');
  assert.equal(page.nextCursor, null, 'the test expects one page of credentials');
  return page.data;
}

function httpRequestNode(name: string, x: number): Record<string, unknown> {
  return {
    name,
    type: 'n8n-nodes-base.httpRequest',
    typeVersion: 4.2,
    position: [x, 0],
    // Port 9 (discard) on 127.0.0.1: the workflow is never run, but if it were, it would reach no other host.
    parameters: { url: `http://127.0.0.1:9/${name.toLowerCase()}`, authentication: 'genericCredentialType', genericAuthType: 'httpHeaderAuth' },
  };
}

describe('n8n 2.8.4 end to end', { skip: enabled ? false : 'set N8N_E2E=1 to run against a real n8n 2.8.4 (the first run installs it, about 3.5 minutes and 2.3 GB)' }, () => {
  let n8n: N8nInstance;
  let aegis: Awaited<ReturnType<typeof startAegis>>;
  let dataDir: string;
  let target: { id: string; name: string };
  let other: { id: string; name: string };
  let workflowBefore: Workflow;
  let aegisName: string;

  const aegisCall = async (method: string, apiPath: string, token: string, body?: unknown) => {
    const response = await fetch(`http://127.0.0.1:${aegis.port}${apiPath}`, {
      method,
      headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      signal: AbortSignal.timeout(30_000),
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const text = await response.text();
    return { status: response.status, text, json: text ? JSON.parse(text) : null };
  };

  before(
    async () => {
      const binary = await prepareN8n();
      n8n = await startN8n(binary);

      target = await n8nApi(n8n, 'POST', '/credentials', { name: 'E2E header', type: 'httpHeaderAuth', data: { name: 'Authorization', value: 'Bearer e2e-original-value' } });
      other = await n8nApi(n8n, 'POST', '/credentials', { name: 'Other header', type: 'httpHeaderAuth', data: { name: 'Authorization', value: 'Bearer other-value' } });
      const first = { ...httpRequestNode('First', 0), credentials: { httpHeaderAuth: { id: other.id, name: other.name } } };
      workflowBefore = await n8nApi<Workflow>(n8n, 'POST', '/workflows', {
        name: 'AEGIS e2e',
        nodes: [first, httpRequestNode('Second', 220)],
        connections: { First: { main: [[{ node: 'Second', type: 'main', index: 0 }]] } },
        settings: { executionOrder: 'v1', timezone: 'UTC' },
      });

      dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'aegis-n8n-e2e-'));
      aegis = await startAegis(dataDir, n8n);
    },
    { timeout: 20 * 60_000 },
  );

  after(async () => {
    aegis?.child.kill('SIGTERM');
    await n8n?.stop();
    if (dataDir) fs.rmSync(dataDir, { recursive: true, force: true });
  });

  it('sync registers both credentials', async () => {
    const synced = await aegisCall('POST', '/sync/n8n', aegis.adminToken);
    assert.equal(synced.status, 200, synced.text);
    assert.equal(synced.json.synced, 2);
    const registered = (synced.json.new as Array<{ name: string; n8n_id: string; type: string }>).find((entry) => entry.n8n_id === target.id);
    assert.ok(registered, `sync did not register n8n id ${target.id}: ${synced.text}`);
    assert.equal(registered.type, 'httpHeaderAuth');
    aegisName = registered.name;
  });

  it('apply points only the second node', async () => {
    const created = await aegisCall('POST', '/tokens', aegis.adminToken, { actor: 'e2e-agent', scopes: ['credentials:apply'] });
    assert.equal(created.status, 201, created.text);
    const agentToken = created.json.token as string;

    const applied = await aegisCall('POST', `/credentials/${encodeURIComponent(aegisName)}/apply`, agentToken, { workflow_id: workflowBefore.id, node_name: 'Second' });
    assert.equal(applied.status, 200, applied.text);
    assert.deepEqual(applied.json, { status: 'applied', credential: aegisName, workflow_id: workflowBefore.id, node: 'Second' });
    assert.ok(!applied.text.includes('Bearer'), 'the apply response holds no value');

    const revealed = await aegisCall('GET', `/credentials/${encodeURIComponent(aegisName)}/value`, agentToken);
    assert.equal(revealed.status, 403, `an apply-only token must not reveal: ${revealed.text}`);

    const workflow = await n8nApi<Workflow>(n8n, 'GET', `/workflows/${workflowBefore.id}`);
    const second = workflow.nodes.find((node) => node.name === 'Second');
    const first = workflow.nodes.find((node) => node.name === 'First');
    assert.deepEqual(second?.credentials, { httpHeaderAuth: { id: target.id, name: target.name } });
    assert.deepEqual(first?.credentials, { httpHeaderAuth: { id: other.id, name: other.name } });
    assert.deepEqual(workflow.settings, workflowBefore.settings);
    assert.deepEqual(workflow.connections, workflowBefore.connections);
  });

  it('rotation updates the n8n credential', async () => {
    const before = (await n8nCredentials(n8n)).find((entry) => entry.id === target.id);
    assert.ok(before, `n8n lost credential ${target.id} before the rotation`);

    const rotated = await aegisCall('POST', `/credentials/${encodeURIComponent(aegisName)}/rotate`, aegis.adminToken, {
      value: JSON.stringify({ name: 'Authorization', value: 'Bearer e2e-rotated-value' }),
    });
    assert.equal(rotated.status, 200, rotated.text);

    const record = await aegisCall('GET', `/credentials/${encodeURIComponent(aegisName)}`, aegis.adminToken);
    assert.equal(record.status, 200, record.text);
    const currentId = record.json.credential_details.provider_credential_id as string;
    const listed = await n8nCredentials(n8n);
    const current = listed.find((entry) => entry.id === currentId);
    assert.ok(current, `n8n has no credential with the recorded id ${currentId}`);
    // n8n 2.8.4's public API never returns credential data, so a newer updatedAt is the proof that n8n took the update.
    assert.ok(Date.parse(current.updatedAt) > Date.parse(before.updatedAt), `updatedAt did not change: ${before.updatedAt} -> ${current.updatedAt}`);

    const workflow = await n8nApi<Workflow>(n8n, 'GET', `/workflows/${workflowBefore.id}`);
    const referenced = workflow.nodes.find((node) => node.name === 'Second')?.credentials?.httpHeaderAuth?.id;
    assert.equal(referenced, currentId);
    assert.ok(listed.some((entry) => entry.id === referenced), 'the workflow references a credential n8n has');
    assert.ok(!aegis.output().includes('e2e-rotated-value'), 'no value in the server log');
  });

  it('health check reports healthy', async () => {
    const checked = await aegisCall('POST', `/credentials/${encodeURIComponent(aegisName)}/test`, aegis.adminToken);
    assert.equal(checked.status, 200, checked.text);
    assert.equal(checked.json.status ?? checked.json.health, 'healthy', checked.text);
  });
});
