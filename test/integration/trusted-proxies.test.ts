import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { loadConfig } from '../../src/config/config.js';
import { StartupError } from '../../src/lib/errors.js';
import { runCli } from '../helpers/cli.js';
import { testDialects } from '../helpers/databases.js';
import { call, destroyTestVault, openTestVault, tokenWith, type TestVault } from '../helpers/test-vault.js';

const proxy = '10.0.0.2';
const ipv6Proxy = '2001:db8::7';
const trustedProxies = `${proxy}, 2001:db8::/64`;

/** Returns the audit entries recorded with `address` as the client address. */
async function auditRows(t: TestVault, address: string) {
  return t.vault.db.kysely.selectFrom('aegis_audit_log').selectAll().where('ip_address', '=', address).execute();
}

/** Sends GET /credentials from `peer` (the socket's address) with the given X-Forwarded-For and optional token. */
function getCredentials(t: TestVault, peer: string, forwardedFor: string | undefined, token?: string) {
  return call(t.app, 'GET', '/credentials', {
    remoteAddress: peer,
    ...(token !== undefined ? { token } : {}),
    ...(forwardedFor !== undefined ? { headers: { 'x-forwarded-for': forwardedFor } } : {}),
  });
}

for (const dialect of await testDialects()) {
  describe(`trusted proxy on ${dialect}`, () => {
    let t: TestVault;
    let reader: string;

    before(async () => {
      t = await openTestVault(dialect, { env: { AEGIS_TRUSTED_PROXIES: trustedProxies, AEGIS_AUTH_FAILURE_LIMIT: '2' } });
      reader = await tokenWith(t, 'proxy-reader', ['credentials:read']);
    });
    after(async () => destroyTestVault(t));

    it('limits forwarded clients separately', async () => {
      const blockedClient = '203.0.113.10';
      const otherClient = '203.0.113.20';
      assert.equal((await getCredentials(t, proxy, blockedClient)).status, 401);
      assert.equal((await getCredentials(t, proxy, blockedClient, 'garbage')).status, 401);

      const blocked = await getCredentials(t, proxy, blockedClient, reader);
      assert.equal(blocked.status, 429, blocked.body);
      assert.match(blocked.json.detail, new RegExp(`from ${blockedClient.replaceAll('.', '\\.')};`));

      const other = await getCredentials(t, proxy, otherClient, reader);
      assert.equal(other.status, 200, other.body);
      assert.equal((await getCredentials(t, proxy, otherClient)).status, 401);
      const otherAfterOneFailure = await getCredentials(t, proxy, otherClient, reader);
      assert.equal(otherAfterOneFailure.status, 200, otherAfterOneFailure.body);

      const proxyItself = await getCredentials(t, proxy, undefined, reader);
      assert.equal(proxyItself.status, 200, proxyItself.body);
    });

    it('audits the forwarded address', async () => {
      const client = '203.0.113.11';
      const proxyRowsBefore = (await auditRows(t, proxy)).length;
      assert.equal((await getCredentials(t, proxy, client)).status, 401);

      const rows = await auditRows(t, client);
      assert.equal(rows.length, 1);
      assert.equal(rows[0]!.error_message, 'unauthorized: missing token');
      assert.equal((await auditRows(t, proxy)).length, proxyRowsBefore, 'an audit entry records the proxy instead of the client');
    });

    it('logs the forwarded address', async () => {
      const client = '203.0.113.12';
      assert.equal((await getCredentials(t, proxy, client, reader)).status, 200);
      const requestLines = t.logs.lines.map((line) => JSON.parse(line)).filter((entry) => entry.msg === 'request');
      assert.ok(
        requestLines.some((entry) => entry.ip === client),
        'no request log line has the forwarded address',
      );
    });

    it('takes the address the proxy appended', async () => {
      const forged = '198.51.100.66';
      const client = '203.0.113.30';
      assert.equal((await getCredentials(t, proxy, `${forged}, ${client}`)).status, 401);
      assert.equal((await auditRows(t, client)).length, 1);
      assert.equal((await auditRows(t, forged)).length, 0, 'the address the client wrote into the header was used');
    });

    it('trusts an IPv6 range', async () => {
      const client = '203.0.113.31';
      assert.equal((await getCredentials(t, ipv6Proxy, client)).status, 401);
      assert.equal((await auditRows(t, client)).length, 1);
      assert.equal((await auditRows(t, ipv6Proxy)).length, 0);
    });

    it('trusts an IPv4-mapped peer address', async () => {
      const client = '2001:db8:1::31';
      assert.equal((await getCredentials(t, `::ffff:${proxy}`, client)).status, 401);
      assert.equal((await auditRows(t, client)).length, 1);
      assert.equal((await auditRows(t, `::ffff:${proxy}`)).length, 0);
    });

    it('ignores the header from untrusted peers', async () => {
      const peer = '203.0.113.40';
      const forged = ['198.51.100.1', '198.51.100.2', '198.51.100.3'];
      assert.equal((await getCredentials(t, peer, forged[0])).status, 401);
      assert.equal((await getCredentials(t, peer, forged[1])).status, 401);

      const blocked = await getCredentials(t, peer, forged[2], reader);
      assert.equal(blocked.status, 429, blocked.body);
      assert.equal((await auditRows(t, peer)).length, 3);
      for (const address of forged) assert.equal((await auditRows(t, address)).length, 0, `the forged address ${address} was recorded`);
    });
  });

  describe(`no trusted proxy on ${dialect}`, () => {
    let t: TestVault;
    let reader: string;

    before(async () => {
      t = await openTestVault(dialect, { env: { AEGIS_AUTH_FAILURE_LIMIT: '2' } });
      reader = await tokenWith(t, 'direct-reader', ['credentials:read']);
    });
    after(async () => destroyTestVault(t));

    it('ignores X-Forwarded-For', async () => {
      const forged = ['198.51.100.11', '198.51.100.12', '198.51.100.13'];
      assert.equal((await getCredentials(t, proxy, forged[0])).status, 401);
      assert.equal((await getCredentials(t, proxy, forged[1])).status, 401);

      const blocked = await getCredentials(t, proxy, forged[2], reader);
      assert.equal(blocked.status, 429, blocked.body);
      assert.equal((await auditRows(t, proxy)).length, 3);
      for (const address of forged) assert.equal((await auditRows(t, address)).length, 0, `the forged address ${address} was recorded`);
    });
  });
}

describe('AEGIS_TRUSTED_PROXIES setting', () => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'aegis-trusted-proxies-'));
  after(() => fs.rmSync(root, { recursive: true, force: true }));

  /** Runs `loadConfig` and returns the StartupError it throws. */
  function startupError(env: Record<string, string>): StartupError {
    try {
      loadConfig(env, root);
    } catch (error) {
      assert.ok(error instanceof StartupError, `expected a StartupError, got ${String(error)}`);
      return error;
    }
    assert.fail(`loadConfig accepted ${JSON.stringify(env)}`);
  }

  it('defaults to no proxy', () => {
    assert.deepEqual(loadConfig({}, root).trustedProxies, []);
    assert.deepEqual(loadConfig({ AEGIS_TRUSTED_PROXIES: ' ' }, root).trustedProxies, []);
  });

  it('reads addresses and ranges', () => {
    const config = loadConfig({ AEGIS_TRUSTED_PROXIES: ' 10.0.0.2 , 2001:db8::/64,,::ffff:10.0.0.3, 192.168.0.0/16' }, root);
    assert.deepEqual(config.trustedProxies, ['10.0.0.2', '2001:db8::/64', '::ffff:10.0.0.3', '192.168.0.0/16']);
  });

  it('reads a list from the file', () => {
    const file = path.join(root, 'list.yaml');
    fs.writeFileSync(file, 'server:\n  trusted_proxies:\n    - 10.0.0.2\n    - ::1\n    - "fd00::/8"\n');
    assert.deepEqual(loadConfig({ AEGIS_CONFIG: file }, root).trustedProxies, ['10.0.0.2', '::1', 'fd00::/8']);
  });

  const notAddresses = ['haproxy', '10.0.0.256', '010.0.0.2', '10.1', '10.0.0.0/8/8', '10.0.0.0/x', '10.0.0.0/', 'fe80::1%eth0', '10.0.0.2 10.0.0.3'];
  for (const entry of notAddresses) {
    it(`rejects "${entry}"`, () => {
      const message = startupError({ AEGIS_TRUSTED_PROXIES: `10.0.0.9, ${entry}` }).message;
      assert.equal(
        message,
        `AEGIS_TRUSTED_PROXIES must list IP addresses or CIDR ranges such as 10.0.0.2 or 2001:db8::/64, got "${entry}". Write the proxy's address, not its host name.`,
      );
    });
  }

  it('rejects a too long prefix', () => {
    assert.equal(
      startupError({ AEGIS_TRUSTED_PROXIES: '10.0.0.0/33' }).message,
      'AEGIS_TRUSTED_PROXIES has the range "10.0.0.0/33", whose prefix length must be from 1 to 32 for IPv4.',
    );
    assert.equal(
      startupError({ AEGIS_TRUSTED_PROXIES: '2001:db8::/129' }).message,
      'AEGIS_TRUSTED_PROXIES has the range "2001:db8::/129", whose prefix length must be from 1 to 128 for IPv6.',
    );
  });

  for (const [entry, family] of [
    ['0.0.0.0/0', 'IPv4'],
    ['10.0.0.0/0', 'IPv4'],
    ['::ffff:0.0.0.0/96', 'IPv4'],
    ['::/0', 'IPv6'],
  ] as const) {
    it(`rejects the catch-all "${entry}"`, () => {
      const message = startupError({ AEGIS_TRUSTED_PROXIES: entry }).message;
      assert.match(message, /^AEGIS_TRUSTED_PROXIES must not contain /);
      assert.ok(message.includes(`"${entry}", which trusts every ${family} address`), message);
    });
  }

  // An IPv6 list that covers every address contains ::ffff:0:0/96 in one of its ranges, which the
  // single-range check rejects already, because it trusts every IPv4 client of a dual-stack listener.
  for (const [list, family] of [
    ['0.0.0.0/1, 128.0.0.0/1', 'IPv4'],
    ['0.0.0.0/2, 64.0.0.0/2, 128.0.0.0/2, 192.0.0.0/2', 'IPv4'],
  ] as const) {
    it(`rejects ranges covering every address together: ${list}`, () => {
      const message = startupError({ AEGIS_TRUSTED_PROXIES: list }).message;
      assert.equal(
        message,
        `AEGIS_TRUSTED_PROXIES lists ranges that together trust every ${family} address and so let any client set the address that AEGIS rate-limits and records. List only the addresses of your proxies.`,
      );
    });
  }

  it('accepts halves that leave addresses out', () => {
    assert.deepEqual(loadConfig({ AEGIS_TRUSTED_PROXIES: '0.0.0.0/1, 128.0.0.0/2' }, root).trustedProxies, ['0.0.0.0/1', '128.0.0.0/2']);
  });

  it('names the file key', () => {
    const file = path.join(root, 'bad.yaml');
    fs.writeFileSync(file, 'server:\n  trusted_proxies: [10.0.0.2, haproxy]\n');
    assert.equal(
      startupError({ AEGIS_CONFIG: file }).message,
      `server.trusted_proxies in ${file} (or AEGIS_TRUSTED_PROXIES) must list IP addresses or CIDR ranges such as 10.0.0.2 or 2001:db8::/64, got "haproxy". Write the proxy's address, not its host name.`,
    );
  });

  it('stops aegis serve', async () => {
    const dataDir = path.join(root, 'serve-data');
    const result = await runCli(['serve'], { AEGIS_DATA_DIR: dataDir, AEGIS_PORT: '0', AEGIS_TRUSTED_PROXIES: '0.0.0.0/0' }, { cwd: root });
    assert.equal(result.code, 1, result.stdout);
    assert.match(result.stderr, /AEGIS_TRUSTED_PROXIES must not contain "0\.0\.0\.0\/0"/);
    assert.doesNotMatch(result.stdout, /AEGIS is serving/);
    assert.equal(fs.existsSync(dataDir), false, 'serve created the data folder before it checked the setting');
  });
});
