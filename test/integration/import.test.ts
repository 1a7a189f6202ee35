import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { readHead } from '../../src/audit/audit.repository.js';
import { MAX_IMPORT_FILE_BYTES } from '../../src/import/import-report.js';
import { localCaller } from '../../src/tokens/caller.js';
import { runCli, type CliResult } from '../helpers/cli.js';
import { testDialects } from '../helpers/databases.js';
import { destroyTestVault, openTestVault, type TestVault } from '../helpers/test-vault.js';

const examples = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../examples');

/** The variables of examples/app.env that the importer registers, with the values it must seal. */
const dotenvValues: Record<string, string> = {
  OPENAI_API_KEY: 'sk-proj-EXAMPLE4fK9q2LmT7vXw3Rb8NcY1dHs6Jp0Ue5Za',
  GITHUB_TOKEN: 'ghp_EXAMPLEa1B2c3D4e5F6g7H8i9J0kLmNoPqRsT',
  SLACK_WEBHOOK_URL: 'https://hooks.slack.example/services/T0EXAMPLE/B0EXAMPLE/xYzEXAMPLEwebhook42',
  DATABASE_URL: 'postgres://invoices:EXAMPLE-db-pass-7Qw@127.0.0.1:5432/invoices',
  STRIPE_SECRET_KEY: 'sk_test_EXAMPLE51HqLr2eZvKYlo2C8Xy',
};

/** The entries of examples/n8n-credentials.json that carry decrypted data, by the name AEGIS gives them. */
const n8nImported: Record<string, { id: string; type: string }> = {
  OpenAI: { id: 'Xq7bN2pLk4RtW9sE', type: 'openAiApi' },
  'GitHub-Release-Bot': { id: 'Fv3Hy8Mz1CdQ6aPu', type: 'githubApi' },
  'Billing-API-header': { id: 'Kp5Wd9Ts2GxB7nLe', type: 'httpHeaderAuth' },
  'Ops-alerts-Telegram': { id: 'Ry2Jc6Nv8QhZ4kMb', type: 'telegramApi' },
};

interface ExportEntry {
  id: string;
  name: string;
  type: string;
  data: Record<string, string> | string;
}

const n8nExport = JSON.parse(fs.readFileSync(path.join(examples, 'n8n-credentials.json'), 'utf8')) as ExportEntry[];

/** Lists the values in the two example files, which must never appear in CLI output. */
function exampleSecrets(): string[] {
  const fromN8n = n8nExport.flatMap((entry) => (typeof entry.data === 'string' ? [entry.data] : Object.values(entry.data)));
  return [...Object.values(dotenvValues), 'EXAMPLE-smtp-Hx93kLq', ...fromN8n.filter((value) => value.includes('EXAMPLE'))];
}

/** Splits the report lines of `aegis import` into `created` and `skipped` entries. */
function reportLines(stdout: string): { created: string[]; skipped: Map<string, string> } {
  const created: string[] = [];
  const skipped = new Map<string, string>();
  for (const line of stdout.split('\n')) {
    const createdMatch = /^ {2}(?:created|would create) {2}(\S+)/.exec(line);
    if (createdMatch) created.push(createdMatch[1]!);
    const skippedMatch = /^ {2}skipped {2}(.+?): (.+)$/.exec(line);
    if (skippedMatch) skipped.set(skippedMatch[1]!, skippedMatch[2]!);
  }
  return { created, skipped };
}

for (const dialect of await testDialects()) {
  describe(`aegis import on ${dialect}`, () => {
    let t: TestVault;
    let envFile: string;
    let n8nFile: string;
    const outputs: CliResult[] = [];
    const caller = localCaller('import-test');

    async function aegis(args: string[]): Promise<CliResult> {
      const result = await runCli(args, t.env);
      outputs.push(result);
      return result;
    }

    /** Counts credential rows directly, because a registry list would write an audit entry. */
    async function credentialTotal(): Promise<number> {
      const row = await t.vault.db.kysely.selectFrom('aegis_credentials').select((eb) => eb.fn.countAll().as('count')).executeTakeFirstOrThrow();
      return Number(row.count);
    }

    before(async () => {
      t = await openTestVault(dialect);
      // env credentials must point into AEGIS_ENV_ALLOWED_DIRS, which is the test's folder.
      envFile = path.join(t.dir, 'app.env');
      n8nFile = path.join(t.dir, 'n8n-credentials.json');
      // A value of only white space is skipped like an empty one, in the dry run as in the import.
      fs.writeFileSync(envFile, `${fs.readFileSync(path.join(examples, 'app.env'), 'utf8')}BLANK_VALUE="   "\n`);
      fs.copyFileSync(path.join(examples, 'n8n-credentials.json'), n8nFile);
    });
    after(async () => destroyTestVault(t));

    it('dry run writes nothing', async () => {
      const headBefore = await readHead(t.vault.db.kysely);

      const dotenv = await aegis(['import', 'dotenv', envFile, '--dry-run']);
      assert.equal(dotenv.code, 0, dotenv.stderr);
      assert.match(dotenv.stdout, /^dry run of .*app\.env, nothing written: 5 would be created, 3 skipped$/m);
      assert.deepEqual(reportLines(dotenv.stdout).created.sort(), Object.keys(dotenvValues).sort());

      const n8n = await aegis(['import', 'n8n', n8nFile, '--dry-run']);
      assert.equal(n8n.code, 0, n8n.stderr);
      assert.match(n8n.stdout, /nothing written: 4 would be created, 1 skipped$/m);

      assert.equal(await credentialTotal(), 0);
      assert.deepEqual(await readHead(t.vault.db.kysely), headBefore);
    });

    it('imports a dotenv file', async () => {
      const result = await aegis(['import', 'dotenv', envFile]);
      assert.equal(result.code, 0, result.stderr);
      assert.match(result.stdout, /^imported from .*app\.env: 5 created, 3 skipped$/m);
      const lines = reportLines(result.stdout);
      assert.deepEqual(lines.created.sort(), Object.keys(dotenvValues).sort());
      assert.equal(lines.skipped.get('SENTRY_DSN'), 'empty value');
      assert.equal(lines.skipped.get('BLANK_VALUE'), 'empty value');
      assert.match(lines.skipped.get('smtp.password') ?? '', /provider_config\.variable: must be an environment variable name/);

      const expectedFile = fs.realpathSync(envFile);
      for (const [variable, value] of Object.entries(dotenvValues)) {
        const { credential } = await t.vault.registry.get(caller, variable);
        assert.equal(credential.provider, 'env', variable);
        assert.equal(credential.credentialType, 'env_var', variable);
        assert.deepEqual(credential.providerConfig, { file: expectedFile, variable });
        const revealed = await t.vault.registry.reveal(caller, variable);
        assert.equal(revealed.value, value, variable);
        assert.equal(revealed.version, 1);
      }
      assert.equal(await credentialTotal(), 5);
    });

    it('imports an n8n export', async () => {
      const result = await aegis(['import', 'n8n', n8nFile]);
      assert.equal(result.code, 0, result.stderr);
      assert.match(result.stdout, /^imported from .*n8n-credentials\.json: 4 created, 1 skipped$/m);
      const lines = reportLines(result.stdout);
      assert.deepEqual(lines.created.sort(), Object.keys(n8nImported).sort());
      assert.match(lines.skipped.get('Slack Workspace') ?? '', /data is encrypted; export again with `n8n export:credentials --all --decrypted`/);

      for (const [name, expected] of Object.entries(n8nImported)) {
        const { credential } = await t.vault.registry.get(caller, name);
        assert.equal(credential.provider, 'n8n', name);
        assert.equal(credential.credentialType, expected.type, name);
        assert.equal(credential.providerCredentialId, expected.id, name);
        const source = n8nExport.find((entry) => entry.id === expected.id)!;
        assert.equal(credential.metadata.n8n_name, source.name);
        const revealed = await t.vault.registry.reveal(caller, name);
        assert.deepEqual(JSON.parse(revealed.value), source.data);
      }
      assert.equal(await credentialTotal(), 9);
    });

    it('records each import in audit', async () => {
      const { entries: stored } = await t.vault.audit.query({ action: 'imported', limit: 10, offset: 0 });
      // Details read back as text only for a row changed in the database.
      const entries = stored.map((entry) => ({ ...entry, details: entry.details as Record<string, unknown> }));
      assert.equal(entries.length, 2);
      const formats = entries.map((entry) => entry.details.format).sort();
      assert.deepEqual(formats, ['dotenv', 'n8n']);
      const n8nEntry = entries.find((entry) => entry.details.format === 'n8n')!;
      assert.equal(n8nEntry.target, n8nFile);
      assert.deepEqual((n8nEntry.details.created as string[]).sort(), Object.keys(n8nImported).sort());
    });

    it('second import skips existing names', async () => {
      const dotenv = await aegis(['import', 'dotenv', envFile]);
      assert.equal(dotenv.code, 0, dotenv.stderr);
      assert.match(dotenv.stdout, /: 0 created, 8 skipped$/m);
      const dotenvLines = reportLines(dotenv.stdout);
      for (const variable of Object.keys(dotenvValues)) assert.equal(dotenvLines.skipped.get(variable), 'already exists', variable);

      const n8n = await aegis(['import', 'n8n', n8nFile]);
      assert.equal(n8n.code, 0, n8n.stderr);
      assert.match(n8n.stdout, /: 0 created, 5 skipped$/m);
      const n8nLines = reportLines(n8n.stdout);
      for (const name of Object.keys(n8nImported)) assert.equal(n8nLines.skipped.get(name), 'already exists', name);
      assert.equal(await credentialTotal(), 9);

      const again = await aegis(['import', 'n8n', n8nFile, '--dry-run']);
      assert.match(again.stdout, /0 would be created, 5 skipped$/m);
    });

    it('prints a JSON report', async () => {
      const result = await aegis(['import', 'n8n', n8nFile, '--dry-run', '--json']);
      assert.equal(result.code, 0, result.stderr);
      const report = JSON.parse(result.stdout) as { source: string; dry_run: boolean; created: unknown[]; skipped: Array<{ name: string; reason: string }> };
      assert.equal(report.source, n8nFile);
      assert.equal(report.dry_run, true);
      assert.deepEqual(report.created, []);
      assert.equal(report.skipped.length, 5);
      assert.deepEqual(report.skipped.find((entry) => entry.name === 'OpenAI'), { name: 'OpenAI', reason: 'already exists' });
    });

    it('names a missing file', async () => {
      const missing = path.join(t.dir, 'missing.env');
      const result = await aegis(['import', 'dotenv', missing]);
      assert.equal(result.code, 1);
      assert.equal(result.stderr.trim(), `aegis: file: cannot read ${missing}: no such file`);
    });

    it('rejects a file outside the allowed folders', async () => {
      const outside = fs.mkdtempSync(path.join(os.tmpdir(), 'aegis-import-outside-'));
      try {
        const file = path.join(outside, 'app.env');
        fs.copyFileSync(envFile, file);
        const before = await credentialTotal();
        for (const args of [['import', 'dotenv', file], ['import', 'dotenv', file, '--dry-run']]) {
          const result = await aegis(args);
          assert.equal(result.code, 1);
          assert.equal(result.stderr.split('\n').length, 2, result.stderr);
          assert.ok(result.stderr.includes('is outside the folders allowed for env credentials. Add its folder to providers.env.allowed_dirs or AEGIS_ENV_ALLOWED_DIRS'), result.stderr);
        }
        assert.equal(await credentialTotal(), before);
      } finally {
        fs.rmSync(outside, { recursive: true, force: true });
      }
    });

    it('rejects a file that is not JSON', async () => {
      const result = await aegis(['import', 'n8n', envFile]);
      assert.equal(result.code, 1);
      assert.match(result.stderr.trim(), /^aegis: file: .*app\.env is not valid JSON$/);
      assert.equal(result.stderr.trim().split('\n').length, 1);
      // V8's message would quote the file's first characters, which may be a secret.
      const start = fs.readFileSync(envFile, 'utf8').slice(0, 8);
      assert.ok(!result.stderr.includes(start), `the error quotes the file: ${result.stderr}`);
    });

    it('skips a repeated n8n id', async () => {
      const file = path.join(t.dir, 'n8n-repeated.json');
      const entry = (name: string) => ({ id: 'REPEAT1', name, type: 'slackApi', data: { accessToken: 'xoxb-repeated-value' } });
      fs.writeFileSync(file, JSON.stringify([entry('Repeat First'), entry('Repeat Second')]));
      const result = await aegis(['import', 'n8n', file]);
      assert.equal(result.code, 0, result.stderr);
      assert.match(result.stdout, /: 1 created, 1 skipped$/m);
      assert.equal(reportLines(result.stdout).skipped.get('Repeat Second'), 'n8n id REPEAT1 appears earlier in the file');
      const bound = await t.vault.db.kysely.selectFrom('aegis_credentials').select('name').where('provider_credential_id', '=', 'REPEAT1').execute();
      assert.equal(bound.length, 1);
    });

    it('skips path-like n8n types', async () => {
      const file = path.join(t.dir, 'n8n-types.json');
      const entry = (id: string, type: string) => ({ id, name: `Typed ${id}`, type, data: { token: `typed-value-${id}` } });
      fs.writeFileSync(file, JSON.stringify([entry('T1', '..'), entry('T2', '../etc/passwd'), entry('T3', 'slackApi/'), entry('T4', 'n8n-nodes-base.slackApi')]));
      const result = await aegis(['import', 'n8n', file, '--dry-run']);
      assert.equal(result.code, 0, result.stderr);
      const lines = reportLines(result.stdout);
      assert.deepEqual(lines.created, ['Typed-T4']);
      for (const name of ['Typed T1', 'Typed T2', 'Typed T3']) assert.equal(lines.skipped.get(name), 'missing or invalid type', name);
    });

    it('reports dotenv lines it cannot read', async () => {
      const file = path.join(t.dir, 'odd-names.env');
      const lines = [
        'PLAIN_VALUE=plain-value-5k2',
        '__proto__=proto-value-8d1',
        'constructor=constructor-value-3q7',
        'prototype=prototype-value-6w4',
        'stray-value-1m9 without a name',
        '# comment',
        'export LONELY',
      ];
      fs.writeFileSync(file, `${lines.join('\n')}\n`);
      const result = await aegis(['import', 'dotenv', file, '--prefix', 'odd/', '--json']);
      assert.equal(result.code, 0, result.stderr);
      for (const value of ['proto-value-8d1', 'stray-value-1m9', 'plain-value-5k2', 'constructor-value-3q7']) assert.ok(!result.stdout.includes(value), value);
      const report = JSON.parse(result.stdout) as { created: Array<{ name: string }>; skipped: Array<{ name: string; reason: string; line?: number }> };
      assert.deepEqual(report.created.map((entry) => entry.name).sort(), ['odd/PLAIN_VALUE', 'odd/constructor', 'odd/prototype']);
      assert.deepEqual(report.skipped, [
        { name: 'odd/__proto__', line: 2, reason: 'dotenv does not read a variable named __proto__, so AEGIS could not read it from the file either. Rename it to import it' },
        { name: 'line 5', line: 5, reason: 'not an assignment (NAME=value) that dotenv reads, so nothing was imported from it' },
        { name: 'line 7', line: 7, reason: 'not an assignment (NAME=value) that dotenv reads, so nothing was imported from it' },
      ]);
      assert.equal((await t.vault.registry.reveal(caller, 'odd/constructor')).value, 'constructor-value-3q7');
      assert.equal((await t.vault.registry.reveal(caller, 'odd/prototype')).value, 'prototype-value-6w4');

      const summary = await t.vault.db.kysely.selectFrom('aegis_audit_log').select('details').where('action', '=', 'imported').where('target', '=', file).executeTakeFirstOrThrow();
      const details = (typeof summary.details === 'string' ? JSON.parse(summary.details) : summary.details) as { skipped: unknown[] };
      assert.deepEqual(details.skipped, report.skipped);
    });

    it('checks a constructor variable', async () => {
      const file = path.join(t.dir, 'constructor.env');
      fs.writeFileSync(file, 'OTHER=1\n');
      await t.vault.registry.create(caller, { name: 'odd/missing-constructor', credential_type: 'env_var', provider: 'env', provider_config: { file, variable: 'constructor' }, value: 'constructor-value-7h3' });
      const checked = await t.vault.health.checkOne(caller, 'odd/missing-constructor');
      assert.equal(checked.status, 'unhealthy');
      assert.match(checked.error ?? '', /^constructor is missing from /);
    });

    it('skips dotenv values that are not UTF-8', async () => {
      const file = path.join(t.dir, 'latin1.env');
      // 0xE9 is é in Latin-1 but starts no valid UTF-8 sequence here. The other values are valid UTF-8.
      const text = Buffer.concat([Buffer.from('LATIN1_VALUE=caf'), Buffer.from([0xe9]), Buffer.from('-secret-9c2\nUTF8_VALUE=café-value-41d\nOTHER_VALUE=plain-value-77a\n')]);
      fs.writeFileSync(file, text);
      const result = await aegis(['import', 'dotenv', file]);
      assert.equal(result.code, 0, result.stderr);
      const lines = reportLines(result.stdout);
      assert.equal(lines.skipped.get('LATIN1_VALUE'), 'value is not valid UTF-8, so AEGIS cannot store it as text');
      assert.deepEqual(lines.created.sort(), ['OTHER_VALUE', 'UTF8_VALUE']);
      const stored = await t.vault.db.kysely.selectFrom('aegis_credentials').select('id').where('name', '=', 'LATIN1_VALUE').executeTakeFirst();
      assert.equal(stored, undefined);
      assert.equal((await t.vault.registry.reveal(caller, 'UTF8_VALUE')).value, 'café-value-41d');
    });

    it('rejects an n8n export that is not UTF-8', async () => {
      const file = path.join(t.dir, 'n8n-latin1.json');
      const text = Buffer.concat([Buffer.from('[{"id":"LATIN1","name":"Latin1","type":"slackApi","data":{"accessToken":"xoxb-caf'), Buffer.from([0xe9]), Buffer.from('"}}]')]);
      fs.writeFileSync(file, text);
      const before = await credentialTotal();
      const result = await aegis(['import', 'n8n', file]);
      assert.equal(result.code, 1);
      assert.equal(result.stderr.trim(), `aegis: file: ${file} is not valid UTF-8, as n8n writes its exports; export the credentials again`);
      assert.equal(await credentialTotal(), before);
    });

    it('escapes control characters in skipped names', async () => {
      const file = path.join(t.dir, 'n8n-controls.json');
      // A terminal would run these sequences: set the window title, then clear the screen.
      fs.writeFileSync(file, JSON.stringify([{ id: 'CONTROLS1', name: '\u001b]0;title\u0007\u001b[2J Controls', type: 'not a type', data: { token: 'v' } }]));
      const result = await aegis(['import', 'n8n', file, '--dry-run']);
      assert.equal(result.code, 0, result.stderr);
      assert.doesNotMatch(result.stdout, /[\u0000-\u0008\u000b-\u001f\u007f]/);
      assert.match(result.stdout, /^ {2}skipped {2}\\u001b\]0;title\\u0007\\u001b\[2J Controls: missing or invalid type$/m);
    });

    it('rejects a file too large to read', async () => {
      const file = path.join(t.dir, 'huge.env');
      // A sparse file, so the test writes no data. Node.js cannot hold its text in one string.
      fs.closeSync(fs.openSync(file, 'w'));
      fs.truncateSync(file, MAX_IMPORT_FILE_BYTES + 1);
      try {
        for (const format of ['dotenv', 'n8n']) {
          const result = await aegis(['import', format, file, '--dry-run']);
          assert.equal(result.code, 1, format);
          assert.equal(
            result.stderr.trim(),
            `aegis: file: ${file} is ${MAX_IMPORT_FILE_BYTES + 1} bytes, more than the ${MAX_IMPORT_FILE_BYTES} bytes an import reads; split it into smaller files`,
          );
        }
      } finally {
        fs.rmSync(file, { force: true });
      }
    });

    it('names every colliding n8n entry apart', async () => {
      const file = path.join(t.dir, 'n8n-collisions.json');
      const entry = (id: string, name: string) => ({ id, name, type: 'smtp', data: { password: `collision-${id}` } });
      // The first entry's own name is what the third one would get by adding its id.
      fs.writeFileSync(file, JSON.stringify([entry('c3', 'Mailer-c2'), entry('c1', 'Mailer'), entry('c2', 'Mailer')]));
      const expected = ['Mailer', 'Mailer-c2', 'Mailer-c2-2'];

      const dryRun = await aegis(['import', 'n8n', file, '--dry-run']);
      assert.equal(dryRun.code, 0, dryRun.stderr);
      assert.deepEqual(reportLines(dryRun.stdout).created.sort(), expected);

      const result = await aegis(['import', 'n8n', file]);
      assert.equal(result.code, 0, result.stderr);
      assert.deepEqual(reportLines(result.stdout).created.sort(), expected);
      assert.equal(reportLines(result.stdout).skipped.size, 0);
      const bound = await t.vault.db.kysely.selectFrom('aegis_credentials').select('provider_credential_id').where('name', '=', 'Mailer-c2-2').executeTakeFirst();
      assert.equal(bound?.provider_credential_id, 'c2');
    });

    it('keeps values out of output', () => {
      assert.ok(outputs.length >= 8);
      for (const secret of exampleSecrets()) {
        for (const output of outputs) {
          assert.ok(!output.stdout.includes(secret), `stdout contains a value from the example files`);
          assert.ok(!output.stderr.includes(secret), `stderr contains a value from the example files`);
        }
      }
    });
  });
}
