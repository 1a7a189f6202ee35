import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { listRotations } from '../../src/rotation/history.repository.js';
import { localCaller } from '../../src/tokens/caller.js';
import { runCli, type CliResult } from '../helpers/cli.js';
import { testDialects, testPostgresUrl } from '../helpers/databases.js';
import { snapshotDatabase } from '../helpers/db-snapshot.js';
import { deriveLegacyKeyBytes, fernetEncrypt, fernetKeyText, tamperFernet } from '../helpers/fernet.js';
import { buildLegacyDatabase, type LegacyCredentialFixture, type LegacyDatabase } from '../helpers/legacy-database.js';
import { destroyTestVault, openTestVault, type TestVault } from '../helpers/test-vault.js';

const passphrase = 'legacy-master-Kq7#pX2v-🔑-old';
const legacyKey = deriveLegacyKeyBytes(passphrase);
const urlPassword = 'pw-legacy-Zx81-never-print';
const sourceUrl = (() => {
  const url = new URL(testPostgresUrl);
  url.password = urlPassword;
  return url.toString();
})();

/** The values each importable credential must reveal after the import, by version. */
const expectedValues: Record<string, Record<number, string>> = {
  'openai/prod': { 1: 'sk-legacy-v1-Qm3rT8wZ', 2: 'sk-legacy-v2-Hb5nL1xC', 3: 'sk-legacy-v3-Pz9dF4kJ' },
  'billing/env-unicode': { 1: 'Ünïcødé-pässwörd-🔐-日本語-1', 2: 'Ünïcødé-pässwörd-🔐-日本語-2' },
  'big-64k': { 1: 'é'.repeat(32 * 1024) },
  // Names of Object's properties, which the --provider-config file lacks.
  toString: { 1: 'to-string-value-Pw3k' },
  // A computed key, because `__proto__: ...` in a literal would set the prototype.
  ['__proto__']: { 1: 'proto-name-value-Jq8v' },
  'notes-with-value': { 1: 'sk-notes-Vt5q8Jw' },
};
const tooBigValue = `${'z'.repeat(64 * 1024)}!`;
const tamperedValue = 'tampered-secret-Wd2LpQ';

/** Legacy rows the import must reject, with a pattern of the reason the report gives. */
const expectedRejections: Record<string, RegExp> = {
  'too-big': /value over 64 KiB/,
  tampered: /version 1 failed to decrypt: bad HMAC/,
  'vault-hashicorp': /unknown provider "vault"/,
  'bad..name': /invalid name/,
  'no-current': /missing current version/,
  'supabase-unconfigured': /need provider settings/,
  'escape\u001b[2Jname': /invalid name/,
  'never-expires': /^expires_at is infinity; set it to a time or NULL in the legacy database first$/,
  'path-type': /^invalid credential_type: AEGIS takes a type name such as slackApi/,
  'empty-value': /^the credential row has an empty value \(or only white space\), which AEGIS does not store; give it a value in the legacy database first$/,
  'whitespace-value': /^version 1 has an empty value \(or only white space\)/,
  'old-version-empty': /^version 1 has an empty value \(or only white space\)/,
  'n8n-empty-id': /^the credential row has an empty provider_credential_id; set it to the provider's id or NULL in the legacy database first$/,
  'n8n-version-empty-id': /^version 1 has an empty provider_credential_id/,
  'provider-constructor': /^unknown provider "constructor"/,
};

const fixtures: LegacyCredentialFixture[] = [
  {
    name: 'openai/prod',
    provider: 'api',
    description: 'OpenAI key for production',
    lastRotatedAt: '2025-03-01T00:00:00Z',
    expiresAt: '2027-01-01T00:00:00Z',
    rotationEnabled: true,
    rotationStrategy: 'scheduled',
    rotationIntervalHours: 24,
    tags: ['team:ai', 'prod'],
    metadata: { owner: 'ml-team' },
    versions: [
      { version: 1, value: expectedValues['openai/prod']![1]!, reason: 'initial', isCurrent: false, createdAt: '2025-01-01T00:00:00Z' },
      { version: 2, value: expectedValues['openai/prod']![2]!, reason: 'rotation', isCurrent: false, createdAt: '2025-02-01T00:00:00Z' },
      { version: 3, value: expectedValues['openai/prod']![3]!, reason: 'rotation', isCurrent: true, createdAt: '2025-03-01T00:00:00Z' },
    ],
    rotations: [
      { rotatedAt: '2025-02-01T00:00:00Z', previousVersion: 1, newVersion: 2, trigger: 'scheduled' },
      { rotatedAt: '2025-02-15T00:00:00Z', previousVersion: 2, newVersion: 3, trigger: 'manual', success: false, errorMessage: `provider rejected ${expectedValues['openai/prod']![2]!}` },
      { rotatedAt: '2025-03-01T00:00:00Z', previousVersion: 2, newVersion: 3, trigger: 'manual' },
    ],
    healthChecks: [
      { checkedAt: '2025-03-01T01:00:00Z', status: 'healthy', details: { http_status: 200 } },
      { checkedAt: '2025-03-02T01:00:00Z', status: 'unhealthy', errorMessage: 'HTTP 401' },
    ],
  },
  {
    name: 'billing/env-unicode',
    provider: 'env',
    credentialType: 'env_var',
    versions: [
      { version: 1, value: expectedValues['billing/env-unicode']![1]!, reason: 'initial', isCurrent: false },
      { version: 2, value: expectedValues['billing/env-unicode']![2]!, reason: 'manual_update', isCurrent: true },
    ],
  },
  // AEGIS stores no empty value and no empty provider id, so these rows are reported, in any version.
  { name: 'empty-value', provider: 'api', value: '' },
  { name: 'whitespace-value', provider: 'api', versions: [{ version: 1, value: ' \t\n ', reason: 'initial', isCurrent: true }] },
  {
    name: 'old-version-empty',
    provider: 'api',
    versions: [
      { version: 1, value: '', reason: 'initial', isCurrent: false },
      { version: 2, value: 'old-version-empty-v2-Ds6t', reason: 'rotation', isCurrent: true },
    ],
  },
  { name: 'toString', provider: 'api', value: 'to-string-value-Pw3k' },
  { name: '__proto__', provider: 'api', value: 'proto-name-value-Jq8v' },
  { name: 'provider-constructor', provider: 'constructor', value: 'provider-constructor-value-Zt5r' },
  { name: 'n8n-empty-id', provider: 'n8n', credentialType: 'slackApi', providerCredentialId: '' },
  {
    name: 'n8n-version-empty-id',
    provider: 'n8n',
    credentialType: 'slackApi',
    providerCredentialId: 'Cd34Ef56Gh78',
    versions: [
      { version: 1, value: null, providerCredentialId: '', reason: 'initial', isCurrent: false },
      { version: 2, value: null, providerCredentialId: 'Cd34Ef56Gh78', reason: 'rotation', isCurrent: true },
    ],
  },
  { name: 'big-64k', provider: 'api', versions: [{ version: 1, value: expectedValues['big-64k']![1]!, reason: 'initial', isCurrent: true }] },
  {
    // Read tokens see description and metadata, so the legacy service's copies of the value must not come along.
    name: 'notes-with-value',
    provider: 'api',
    description: `copy of ${expectedValues['notes-with-value']![1]!}`,
    metadata: { backup: expectedValues['notes-with-value']![1]!, nested: [{ [expectedValues['notes-with-value']![1]!]: 'as a key' }] },
    versions: [{ version: 1, value: expectedValues['notes-with-value']![1]!, reason: 'initial', isCurrent: true }],
  },
  {
    name: 'n8n-slack',
    provider: 'n8n',
    credentialType: 'slackApi',
    providerCredentialId: 'Ab12Cd34Ef56',
    versions: [
      { version: 1, value: null, providerCredentialId: 'Old111', reason: 'initial', isCurrent: false },
      { version: 2, value: null, providerCredentialId: 'Ab12Cd34Ef56', reason: 'rotation', isCurrent: true },
    ],
  },
  { name: 'too-big', provider: 'api', versions: [{ version: 1, value: tooBigValue, isCurrent: true }] },
  { name: 'tampered', provider: 'api', versions: [{ version: 1, token: tamperFernet(fernetEncrypt(legacyKey, tamperedValue), -5), isCurrent: true }] },
  { name: 'vault-hashicorp', provider: 'vault', versions: [{ version: 1, value: 'hvs-legacy-token-Jr6u', isCurrent: true }] },
  { name: 'bad..name', provider: 'api', versions: [{ version: 1, value: 'bad-name-value-Tn4e', isCurrent: true }] },
  {
    name: 'no-current',
    provider: 'api',
    value: 'no-current-row-Vb8m',
    versions: [
      { version: 1, value: 'no-current-v1-Xs3a', isCurrent: false },
      { version: 2, value: 'no-current-v2-Yk5b', isCurrent: false },
    ],
  },
  { name: 'supabase-unconfigured', provider: 'supabase', versions: [{ version: 1, value: 'sb-secret-legacy-Gh7q', isCurrent: true }] },
  { name: 'escape\u001b[2Jname', provider: 'api', value: 'escape-name-value-Qa9w' },
  // PostgreSQL stores 'infinity', which no JavaScript date can hold.
  { name: 'never-expires', provider: 'api', value: 'never-expires-value-Lm2c', expiresAt: 'infinity' },
  { name: 'path-type', provider: 'api', credentialType: '../etc/passwd', value: 'path-type-value-Rk4n' },
];

/** Every secret of the legacy database; none may appear in any output, log, report or AEGIS row. */
const secrets = [
  ...Object.values(expectedValues).flatMap((versions) => Object.values(versions)),
  tooBigValue,
  tamperedValue,
  'hvs-legacy-token-Jr6u',
  'bad-name-value-Tn4e',
  'no-current-row-Vb8m',
  'no-current-v1-Xs3a',
  'no-current-v2-Yk5b',
  'sb-secret-legacy-Gh7q',
  'escape-name-value-Qa9w',
  'never-expires-value-Lm2c',
  'path-type-value-Rk4n',
  'old-version-empty-v2-Ds6t',
  'provider-constructor-value-Zt5r',
  passphrase,
  fernetKeyText(legacyKey),
  legacyKey.toString('hex'),
  urlPassword,
].filter((secret) => secret.trim().length >= 4);

/** Finds the first secret in `text`, or undefined. */
function leakedSecret(text: string): string | undefined {
  return secrets.find((secret) => text.includes(secret));
}

interface Report {
  source: string;
  dry_run: boolean;
  created: Array<{ name: string; detail?: string }>;
  skipped: Array<{ name: string; reason: string }>;
  not_carried_over: Array<{ name: string; reason: string }>;
}

function parseReport(result: CliResult): Report {
  assert.equal(result.code, 0, `aegis import legacy failed: ${result.stderr}`);
  return JSON.parse(result.stdout) as Report;
}

function assertRejections(report: Report): void {
  const rejected = new Map(report.not_carried_over.map((entry) => [entry.name, entry.reason]));
  assert.deepEqual([...rejected.keys()].sort(), Object.keys(expectedRejections).sort());
  for (const [name, pattern] of Object.entries(expectedRejections)) assert.match(rejected.get(name)!, pattern, name);
}

const dialects = await testDialects();
const importable = [...Object.keys(expectedValues), 'n8n-slack'].sort();

describe('aegis import legacy', () => {
  let legacy: LegacyDatabase;
  let legacyBefore: Record<string, unknown[]>;

  before(async () => {
    legacy = await buildLegacyDatabase(legacyKey, fixtures);
    legacyBefore = await legacy.snapshot();
  });

  after(async () => {
    assert.deepEqual(await legacy.snapshot(), legacyBefore, 'the import changed the legacy database');
    await legacy.drop();
  });

  for (const dialect of dialects) {
    describe(`into ${dialect}`, () => {
      let t: TestVault;
      let envFile: string;
      let configFile: string;
      const outputs: CliResult[] = [];
      const caller = localCaller('legacy-import-test');

      async function importLegacy(extra: string[], env: Record<string, string> = { LEGACY_MASTER_KEY: passphrase }): Promise<CliResult> {
        const args = ['import', 'legacy', '--from', sourceUrl, '--schema', legacy.schema, '--provider-config', configFile, ...extra];
        const result = await runCli(args, { ...t.env, ...env });
        outputs.push(result);
        return result;
      }

      const withPassphrase = ['--legacy-passphrase-env', 'LEGACY_MASTER_KEY'];

      before(async () => {
        t = await openTestVault(dialect);
        envFile = path.join(t.dir, 'billing.env');
        fs.writeFileSync(envFile, `BILLING_SECRET="${expectedValues['billing/env-unicode']![2]!}"\n`);
        configFile = path.join(t.dir, 'provider-config.json');
        fs.writeFileSync(configFile, JSON.stringify({ 'billing/env-unicode': { file: envFile, variable: 'BILLING_SECRET' } }));
      });

      after(async () => {
        await destroyTestVault(t);
      });

      it('dry run writes nothing', async () => {
        const before = await snapshotDatabase(t.vault.db);
        const report = parseReport(await importLegacy([...withPassphrase, '--json']));
        assert.deepEqual(await snapshotDatabase(t.vault.db), before);
        assert.equal(report.dry_run, true);
        assert.deepEqual(report.created.map((entry) => entry.name).sort(), importable);
        assert.deepEqual(report.skipped, []);
        assertRejections(report);
      });

      it('dry run text report names each row', async () => {
        const result = await importLegacy(withPassphrase);
        assert.equal(result.code, 0, result.stderr);
        assert.match(result.stdout, /^dry run of postgres:\/\/127\.0\.0\.1:5432\/test \(schema legacy_t_/);
        assert.match(result.stdout, /^ {2}would create {2}openai\/prod \(api, versions 1, 2, 3 \(current 3\), 3 rotations, 2 health checks\)$/m);
        for (const name of ['too-big', 'tampered', 'vault-hashicorp', 'bad..name', 'no-current', 'supabase-unconfigured']) {
          assert.ok(result.stdout.includes(`\n  not carried over  ${name}: `), name);
        }
        assert.ok(result.stdout.includes('  not carried over  escape\\u001b[2Jname: invalid name'), 'escaped control character');
        assert.ok(!result.stdout.includes('\u001b'), 'raw control character in stdout');
      });

      it('apply imports the valid rows', async () => {
        const report = parseReport(await importLegacy([...withPassphrase, '--apply', '--json']));
        assert.equal(report.dry_run, false);
        assert.deepEqual(report.created.map((entry) => entry.name).sort(), importable);
        assertRejections(report);
        const audit = await t.vault.db.kysely.selectFrom('aegis_audit_log').selectAll().where('action', '=', 'imported').execute();
        assert.equal(audit.length, importable.length + 1, 'one entry per credential and one summary');
        assert.ok(audit.every((entry) => entry.actor.startsWith('cli:')));
      });

      it('every version decrypts to the original', async () => {
        for (const [name, versions] of Object.entries(expectedValues)) {
          for (const [version, value] of Object.entries(versions)) {
            const revealed = await t.vault.registry.reveal(caller, name, Number(version));
            assert.equal(Buffer.compare(Buffer.from(revealed.value, 'utf8'), Buffer.from(value, 'utf8')), 0, `${name} version ${version}`);
          }
        }
        assert.equal((await t.vault.registry.reveal(caller, 'big-64k')).value.length, 32 * 1024);
      });

      it('keeps versions, settings and history', async () => {
        const { credential, versions } = await t.vault.registry.versions(caller, 'openai/prod', { limit: 50, offset: 0 });
        assert.deepEqual(versions.map((version) => [version.version, version.isCurrent]), [[3, true], [2, false], [1, false]]);
        assert.equal(credential.provider, 'api');
        assert.equal(credential.rotationStrategy, 'scheduled');
        assert.equal(credential.rotationIntervalHours, 24);
        assert.equal(credential.rotationEnabled, true);
        assert.equal(credential.expiresAt, '2027-01-01T00:00:00.000Z');
        assert.equal(credential.nextRotationAt, '2025-03-02T00:00:00.000Z');
        assert.deepEqual(credential.tags, ['team:ai', 'prod']);
        assert.equal(credential.metadata.owner, 'ml-team');
        assert.equal(typeof (credential.metadata.legacy_import as { legacy_id?: unknown }).legacy_id, 'string');

        const history = await listRotations(t.vault.db.kysely, t.vault.db.dialect, { credentialName: 'openai/prod', reach: { namePatterns: [], tags: [] }, limit: 10, offset: 0 });
        assert.equal(history.total, 3);
        const failed = history.history.find((entry) => !entry.success)!;
        assert.equal(failed.errorMessage, 'provider rejected [REDACTED]');
        const checks = await t.vault.db.kysely.selectFrom('aegis_health_checks').select('status').where('credential_id', '=', credential.id).execute();
        assert.deepEqual(checks.map((check) => check.status).sort(), ['healthy', 'unhealthy']);

        const n8n = await t.vault.registry.versions(caller, 'n8n-slack', { limit: 50, offset: 0 });
        assert.equal(n8n.credential.providerCredentialId, 'Ab12Cd34Ef56');
        assert.deepEqual(n8n.versions.map((version) => [version.version, version.providerCredentialId, version.hasValue]), [[2, 'Ab12Cd34Ef56', false], [1, 'Old111', false]]);
      });

      it('removes values from description and metadata', async () => {
        const { credential } = await t.vault.registry.versions(caller, 'notes-with-value', { limit: 50, offset: 0 });
        assert.equal(credential.description, 'copy of [REDACTED]');
        assert.equal(credential.metadata.backup, '[REDACTED]');
        assert.deepEqual(credential.metadata.nested, [{ '[REDACTED]': 'as a key' }]);
      });

      it('second apply changes nothing', async () => {
        const before = await snapshotDatabase(t.vault.db);
        const report = parseReport(await importLegacy([...withPassphrase, '--apply', '--json']));
        assert.deepEqual(await snapshotDatabase(t.vault.db), before);
        assert.deepEqual(report.created, []);
        assert.deepEqual(report.skipped.map((entry) => entry.name).sort(), importable);
        assert.ok(report.skipped.every((entry) => entry.reason === 'already imported, unchanged'));
        assertRejections(report);
      });

      it('changed legacy row is reported', async () => {
        await legacy.query(`update "${legacy.schema}".aegis_credentials set description = $1 where name = 'big-64k'`, [`changed before the ${dialect} run`]);
        const before = await snapshotDatabase(t.vault.db);
        const report = parseReport(await importLegacy([...withPassphrase, '--apply', '--json']));
        assert.deepEqual(await snapshotDatabase(t.vault.db), before);
        const changed = report.skipped.find((entry) => entry.name === 'big-64k')!;
        assert.match(changed.reason, /^changed in the legacy database since it was imported; not overwritten/);
        legacyBefore = await legacy.snapshot();
      });

      it('wrong key fails fast', async () => {
        const before = await snapshotDatabase(t.vault.db);
        const result = await importLegacy([...withPassphrase, '--apply'], { LEGACY_MASTER_KEY: 'not-the-old-master-key' });
        assert.equal(result.code, 1);
        assert.match(result.stderr, /^aegis: The legacy key from the environment variable LEGACY_MASTER_KEY does not match .*none of its \d+ stored values verifies/);
        assert.equal(result.stderr.trim().split('\n').length, 1);
        assert.equal(result.stdout, '');
        assert.deepEqual(await snapshotDatabase(t.vault.db), before);
      });

      it('missing key option is rejected', async () => {
        const result = await importLegacy([]);
        assert.equal(result.code, 2);
        assert.match(result.stderr, /exactly one of --legacy-passphrase-env/);
      });

      it('imports with a raw key file', async () => {
        const keyBytes = crypto.randomBytes(32);
        const other = await buildLegacyDatabase(keyBytes, [
          { name: 'keyfile/one', provider: 'api', versions: [{ version: 1, value: 'keyfile-value-Rm2s', isCurrent: true }] },
          { name: 'keyfile/pre-versions', provider: 'api', value: 'keyfile-row-only-Lp0c' },
        ]);
        try {
          const keyFile = path.join(t.dir, 'legacy-fernet.key');
          fs.writeFileSync(keyFile, `${fernetKeyText(keyBytes)}\n`, { mode: 0o600 });
          const result = await runCli(['import', 'legacy', '--from', sourceUrl, '--schema', other.schema, '--legacy-key-file', keyFile, '--apply'], t.env);
          outputs.push(result);
          assert.equal(result.code, 0, result.stderr);
          assert.match(result.stdout, /2 created, 0 skipped, 0 not carried over/);
          assert.equal((await t.vault.registry.reveal(caller, 'keyfile/one')).value, 'keyfile-value-Rm2s');
          assert.equal((await t.vault.registry.reveal(caller, 'keyfile/pre-versions')).value, 'keyfile-row-only-Lp0c');
          assert.ok(!result.stdout.includes(fernetKeyText(keyBytes)), 'key in stdout');
          assert.ok(!result.stderr.includes(fernetKeyText(keyBytes)), 'key in stderr');
        } finally {
          await other.drop();
        }
      });

      it('imported env credential rotates and rolls back', async () => {
        const name = 'billing/env-unicode';
        const rotated = await t.vault.rotation.engine.rotate(caller, name, { trigger: 'manual', reason: 'after import' });
        assert.equal(rotated.previousVersion, 2);
        assert.equal(rotated.newVersion, 3);
        const newValue = (await t.vault.registry.reveal(caller, name)).value;
        assert.notEqual(newValue, expectedValues[name]![2]);
        assert.ok(fs.readFileSync(envFile, 'utf8').includes(newValue));

        const rolledBack = await t.vault.rotation.rollback(caller, name, 2);
        assert.deepEqual(rolledBack, { fromVersion: 3, toVersion: 2 });
        assert.equal((await t.vault.registry.reveal(caller, name)).value, expectedValues[name]![2]);
        assert.ok(fs.readFileSync(envFile, 'utf8').includes(expectedValues[name]![2]!));
      });

      it('outputs and rows hold no secret', async () => {
        assert.ok(outputs.length >= 7);
        for (const [index, output] of outputs.entries()) {
          assert.equal(leakedSecret(output.stdout), undefined, `stdout of run ${index + 1}`);
          assert.equal(leakedSecret(output.stderr), undefined, `stderr of run ${index + 1}`);
        }
        assert.equal(leakedSecret(t.logs.text()), undefined, 'vault logs');
        assert.equal(leakedSecret(JSON.stringify(await snapshotDatabase(t.vault.db))), undefined, 'AEGIS database');
      });
    });
  }
});
