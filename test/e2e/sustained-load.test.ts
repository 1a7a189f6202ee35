import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import autocannon from 'autocannon';
import BetterSqlite3 from 'better-sqlite3';
import { N8nStub } from '../helpers/n8n-stub.js';
import { startServer, stopServer, type ServerProcess } from '../helpers/server-process.js';

/**
 * Sustained load (bar R5): a steady rate of mixed reads and applies against a real `aegis serve`
 * on SQLite, with a stand-in n8n. Every request must succeed, and each must leave exactly one audit
 * entry. AEGIS_R5_SECONDS and AEGIS_R5_RATE shorten or slow the run on a slow machine.
 */
const seconds = Number(process.env.AEGIS_R5_SECONDS ?? 60);
const rate = Number(process.env.AEGIS_R5_RATE ?? 1000);
const name = 'r5/slack';
const path_ = `/credentials/${encodeURIComponent(name)}`;

function countAuditEntries(database: string): { total: number; byAction: Record<string, number> } {
  const db = new BetterSqlite3(database, { readonly: true });
  try {
    const rows = db.prepare('select action, count(*) as count from aegis_audit_log group by action').all() as Array<{ action: string; count: number }>;
    return { total: rows.reduce((sum, row) => sum + row.count, 0), byAction: Object.fromEntries(rows.map((row) => [row.action, row.count])) };
  } finally {
    db.close();
  }
}

/** Waits until the audit count stops changing, so requests in flight at the end of the run are counted. */
async function settledAuditCount(database: string): Promise<{ total: number; byAction: Record<string, number> }> {
  let previous = countAuditEntries(database);
  for (let attempt = 0; attempt < 50; attempt += 1) {
    await new Promise((resolve) => setTimeout(resolve, 200));
    const current = countAuditEntries(database);
    if (current.total === previous.total) return current;
    previous = current;
  }
  return previous;
}

describe(`sustained load: ${rate} requests/s for ${seconds} s, reads and applies`, () => {
  let dir: string;
  let n8n: N8nStub;
  let server: ServerProcess;
  let token: string;

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'aegis-r5-'));
    n8n = await N8nStub.start({ apiKey: 'r5-n8n-key', recentApi: true });
    n8n.addCredential({ id: '7', name: 'R5 Slack', type: 'slackApi', data: {} });
    n8n.addWorkflow({ id: 'wf1', name: 'R5', nodes: [{ name: 'Slack', type: 'n8n-nodes-base.slack' }], connections: {}, settings: {} });
    server = await startServer({
      env: { AEGIS_DATA_DIR: path.join(dir, 'data'), AEGIS_SCHEDULER: 'off', N8N_URL: n8n.url, N8N_API_KEY: 'r5-n8n-key' },
      cwd: dir,
      expectToken: true,
    });
    token = server.adminToken!;
    const created = await fetch(`${server.url}/credentials`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ name, credential_type: 'slackApi', provider: 'n8n', provider_credential_id: '7', value: JSON.stringify({ accessToken: 'xoxb-r5-value' }) }),
    });
    assert.equal(created.status, 201, await created.text());
  });

  after(async () => {
    if (server) await stopServer(server);
    await n8n?.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('audits every completed request once', async () => {
    const database = path.join(dir, 'data/aegis.db');
    const before = countAuditEntries(database);
    const headers = { authorization: `Bearer ${token}`, 'content-type': 'application/json' };
    const result = await autocannon({
      url: server.url,
      connections: 50,
      overallRate: rate,
      // A fixed amount rather than a duration: the run ends when every response is in, so no request is cut off.
      amount: rate * seconds,
      timeout: 30,
      requests: [
        { method: 'GET', path: path_, headers },
        { method: 'POST', path: `${path_}/apply`, headers, body: JSON.stringify({ workflow_id: 'wf1', node_name: 'Slack', requested_by: 'r5' }) },
      ],
    });
    const sent = result.requests.total;
    const achieved = sent / result.duration;
    process.stdout.write(`# R5: ${sent} requests in ${result.duration} s (${Math.round(achieved)}/s), p99 ${result.latency.p99} ms, max ${result.latency.max} ms\n`);
    assert.equal(result.errors, 0, 'no connection errors');
    assert.equal(result.timeouts, 0, 'no timeouts');
    assert.equal(result.non2xx, 0, 'no response outside 2xx');
    assert.equal(sent, rate * seconds, 'every request was answered');
    // The generator keeps the rate unless AEGIS falls behind. The generator and the n8n stand-in share
    // the two cores with AEGIS, so only a large shortfall fails. The printed rate is the figure.
    assert.ok(achieved >= rate * 0.5, `AEGIS kept up with only ${Math.round(achieved)} of ${rate} requests/s`);

    const after = await settledAuditCount(database);
    assert.equal(after.total - before.total, sent, `audit entries by action: ${JSON.stringify(after.byAction)}`);
    const reads = (after.byAction.read ?? 0) - (before.byAction.read ?? 0);
    assert.ok(reads > 0, 'reads were sent');
    assert.ok(reads < sent, 'applies were sent');
  });
});
