import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { localCaller } from '../../src/tokens/caller.js';
import { runCli, type CliResult } from '../helpers/cli.js';
import { testDialects } from '../helpers/databases.js';
import { call, destroyTestVault, openTestVault, type TestVault } from '../helpers/test-vault.js';

// Kept apart from cli.test.ts because each command starts a child process, and the two files together
// take longer than the runner's per-file time limit on a busy machine.

function assertOneLineError(result: CliResult, pattern: RegExp, code = 1): void {
  assert.equal(result.code, code, result.stdout);
  const lines = result.stderr.trim().split('\n');
  assert.equal(lines.length, 1, result.stderr);
  assert.match(lines[0]!, pattern);
  assert.ok(!/\n\s+at /.test(result.stderr), 'no stack trace');
}

for (const dialect of await testDialects()) {
  describe(`aegis credentials and tokens on ${dialect}`, () => {
    let t: TestVault;
    const secret = `sk-cli-${crypto.randomBytes(12).toString('hex')}`;
    const outputs: CliResult[] = [];
    const caller = localCaller('cli-test');
    const apiConfig = JSON.stringify({ test: { method: 'GET', url: 'http://127.0.0.1:9/v1/models', headers: { Authorization: 'Bearer {{value}}' } } });
    let readerToken = '';
    let readerTokenId = '';

    async function aegis(args: string[], input?: string): Promise<CliResult> {
      const result = await runCli(args, t.env, input === undefined ? {} : { input });
      outputs.push(result);
      return result;
    }

    before(async () => {
      t = await openTestVault(dialect);
    });
    after(async () => destroyTestVault(t));

    it('creates with a value from stdin', async () => {
      const result = await aegis(
        ['credentials', 'create', 'openai/prod', '--type', 'openAiApi', '--provider', 'api', '--provider-config', apiConfig, '--tag', 'prod', '--value-stdin'],
        `${secret}\n`,
      );
      assert.equal(result.code, 0, result.stderr);
      assert.match(result.stdout, /^created openai\/prod \([0-9a-f-]{36}\), value sealed as version 1\n$/);

      const revealed = await t.vault.registry.reveal(caller, 'openai/prod');
      assert.equal(revealed.value, secret);
      assert.equal(revealed.version, 1);
    });

    it('rejects an invalid name', async () => {
      const result = await aegis(['credentials', 'create', '../etc', '--type', 'openAiApi', '--provider', 'n8n']);
      assert.equal(result.code, 2);
      assert.equal(result.stderr, 'aegis: invalid NAME: use 1 to 128 letters, digits, . _ - /, without ..\n');
    });

    it('rejects a path-like type', async () => {
      const result = await aegis(['credentials', 'create', 'typed/path', '--type', '../etc', '--provider', 'n8n']);
      assert.equal(result.code, 2);
      assert.equal(
        result.stderr,
        'aegis: invalid --type: use a type name such as slackApi, of up to 128 characters: parts of letters, digits, "_" and "-", each starting with a letter, digit or "_", joined by single ".", ":" or "/"\n',
      );
    });

    it('lists credentials as JSON', async () => {
      const result = await aegis(['credentials', 'list', '--json']);
      assert.equal(result.code, 0, result.stderr);
      const page = JSON.parse(result.stdout) as { credentials: Array<{ name: string; provider: string; has_value: boolean; tags: string[] }>; total: number };
      assert.equal(page.total, 1);
      assert.equal(page.credentials[0]!.name, 'openai/prod');
      assert.equal(page.credentials[0]!.provider, 'api');
      assert.equal(page.credentials[0]!.has_value, true);
      assert.deepEqual(page.credentials[0]!.tags, ['prod']);
    });

    it('gets one credential without value', async () => {
      const result = await aegis(['credentials', 'get', 'openai/prod']);
      assert.equal(result.code, 0, result.stderr);
      assert.match(result.stdout, /^name {2,}openai\/prod$/m);
      assert.match(result.stdout, /^has_value {2,}true$/m);
      assert.match(result.stdout, /^current_version {2,}1$/m);

      const json = await aegis(['credentials', 'get', 'openai/prod', '--json']);
      assert.equal(JSON.parse(json.stdout).credential_type, 'openAiApi');
    });

    it('get escapes control characters', async () => {
      // The API accepts line breaks and C1 characters such as CSI (U+009B) in a description.
      const body = { name: 'escape/desc', credential_type: 'apiKey', provider: 'api', description: 'first\nname  forged\u009b2J' };
      const created = await call(t.app, 'POST', '/credentials', { token: t.adminToken, body });
      assert.equal(created.status, 201, created.body);

      const result = await aegis(['credentials', 'get', 'escape/desc']);

      assert.equal(result.code, 0, result.stderr);
      assert.match(result.stdout, /^description {2,}first\\u000aname {2}forged\\u009b2J$/m);
      assert.doesNotMatch(result.stdout, /^name {2,}forged/m, 'the description adds no field line');
      assert.ok(!result.stdout.includes('\u009b'), 'no raw CSI reaches the terminal');
      await t.vault.registry.retire(caller, 'escape/desc');
    });

    it('updates a description', async () => {
      const result = await aegis(['credentials', 'update', 'openai/prod', '--description', 'x']);
      assert.equal(result.code, 0, result.stderr);
      assert.equal(result.stdout, 'updated openai/prod: description\n');
      const { credential } = await t.vault.registry.get(caller, 'openai/prod');
      assert.equal(credential.description, 'x');
    });

    it('rejects an update without changes', async () => {
      const result = await aegis(['credentials', 'update', 'openai/prod']);
      assert.equal(result.code, 2);
      assert.match(result.stderr, /^aegis: nothing to change: give at least one option/);
    });

    it('creates a token that works', async () => {
      const result = await aegis(['tokens', 'create', '--actor', 'ARIA', '--scope', 'credentials:read']);
      assert.equal(result.code, 0, result.stderr);
      const [summary, token] = result.stdout.trim().split('\n');
      const match = /^token ([0-9a-f]{12}) for ARIA \(credentials:read\); shown once:$/.exec(summary ?? '');
      assert.ok(match, summary);
      readerTokenId = match[1]!;
      readerToken = token ?? '';
      assert.ok(readerToken.startsWith(`aegis_${readerTokenId}_`), 'the token starts with its id');

      const read = await call(t.app, 'GET', '/credentials/openai%2Fprod', { token: readerToken });
      assert.equal(read.status, 200);
      const reveal = await call(t.app, 'GET', '/credentials/openai%2Fprod/value', { token: readerToken });
      assert.equal(reveal.status, 403);
    });

    it('lists tokens without secrets', async () => {
      const row = await t.vault.db.kysely.selectFrom('aegis_tokens').select('secret_hash').where('id', '=', readerTokenId).executeTakeFirstOrThrow();
      const readerSecret = readerToken.slice(`aegis_${readerTokenId}_`.length);

      for (const args of [['tokens', 'list'], ['tokens', 'list', '--json']]) {
        const result = await aegis(args);
        assert.equal(result.code, 0, result.stderr);
        assert.ok(result.stdout.includes(readerTokenId), 'lists the token id');
        assert.ok(result.stdout.includes('ARIA'), 'lists the actor');
        assert.ok(!result.stdout.includes(readerSecret), 'prints no token secret');
        assert.ok(!result.stdout.includes(row.secret_hash), 'prints no token hash');
        assert.ok(!result.stdout.includes(t.adminToken.slice('aegis_'.length + 13)), 'prints no admin secret');
      }
    });

    it('revokes a token', async () => {
      const result = await aegis(['tokens', 'revoke', readerTokenId]);
      assert.equal(result.code, 0, result.stderr);
      assert.equal(result.stdout, `revoked token ${readerTokenId} of ARIA\n`);
      const read = await call(t.app, 'GET', '/credentials/openai%2Fprod', { token: readerToken });
      assert.equal(read.status, 401);

      const list = await aegis(['tokens', 'list']);
      assert.match(list.stdout, new RegExp(`^${readerTokenId} .*revoked$`, 'm'));
    });

    it('token errors name the option', async () => {
      const cases: Array<[string[], string]> = [
        [['--actor', 'ops', '--scope', 'everything'], '--scope'],
        [['--actor', 'two words', '--scope', 'admin'], '--actor'],
        [['--actor', 'ops', '--scope', 'admin', '--expires-at', '2020-01-01T00:00:00Z'], '--expires-at'],
        [['--actor', 'ops', '--scope', 'admin', '--name-pattern', '../x'], '--name-pattern'],
        [['--actor', 'ops', '--scope', 'admin', '--tag', 'two words'], '--tag'],
      ];
      const tokensBefore = await t.vault.db.kysely.selectFrom('aegis_tokens').select('id').execute();

      for (const [args, option] of cases) {
        const result = await aegis(['tokens', 'create', ...args]);
        assert.equal(result.code, 2, result.stderr);
        assert.ok(result.stderr.startsWith(`aegis: invalid ${option}: `), result.stderr);
      }

      const tokensAfter = await t.vault.db.kysely.selectFrom('aegis_tokens').select('id').execute();
      assert.equal(tokensAfter.length, tokensBefore.length);
    });

    it('rejects an unknown token id', async () => {
      assertOneLineError(await aegis(['tokens', 'revoke', '000000000000']), /^aegis: Token 000000000000 not found\. List tokens with `aegis tokens list`\.$/);
    });

    it('revoke of a whole token echoes no secret', async () => {
      const adminSecret = t.adminToken.slice('aegis_'.length + 13);
      const result = await aegis(['tokens', 'revoke', t.adminToken]);
      assertOneLineError(result, /^aegis: invalid ID: must be a token id, not a token or other text\. This is a whole token: pass only its id/, 2);
      assert.ok(!result.stderr.includes(adminSecret), 'the error repeats the token secret');
      const entries = await t.vault.db.kysely.selectFrom('aegis_audit_log').selectAll().execute();
      assert.ok(!JSON.stringify(entries).includes(adminSecret), 'the audit log holds the token secret');
      const admin = await call(t.app, 'GET', '/credentials', { token: t.adminToken });
      assert.equal(admin.status, 200);
    });

    it('retires a credential', async () => {
      const result = await aegis(['credentials', 'retire', 'openai/prod']);
      assert.equal(result.code, 0, result.stderr);
      assert.equal(result.stdout, 'retired openai/prod\n');
      const { credential } = await t.vault.registry.get(caller, 'openai/prod');
      assert.equal(credential.status, 'retired');

      const again = await aegis(['credentials', 'retire', 'openai/prod']);
      assert.equal(again.code, 0, again.stderr);
      assert.equal(again.stdout, 'openai/prod was already retired\n');
    });

    it('names an unknown credential', async () => {
      const expected = /^aegis: Credential "ghost" not found\. List credentials with `aegis credentials list`\.$/;
      const results = await Promise.all([
        aegis(['credentials', 'get', 'ghost']),
        aegis(['credentials', 'get', 'ghost', '--json']),
        aegis(['credentials', 'update', 'ghost', '--description', 'x']),
        aegis(['credentials', 'update', 'ghost', '--value-stdin'], 'new-value\n'),
        aegis(['credentials', 'retire', 'ghost']),
      ]);
      for (const result of results) assertOneLineError(result, expected);
    });

    it('escapes control characters in errors', async () => {
      const result = await aegis(['credentials', 'get', 'ghost\u001b[2J']);

      assertOneLineError(result, /^aegis: Credential "ghost\\u001b\[2J" not found\./);
      assert.ok(!result.stderr.includes('\u001b'), 'no raw escape character reaches the terminal');
    });

    it('rejects an unknown provider filter', async () => {
      const result = await aegis(['credentials', 'list', '--provider', 'vault']);

      assert.equal(result.code, 2);
      assert.equal(result.stderr, 'aegis: --provider must be one of n8n, supabase, api, env, postgres\n');
      assert.equal(result.stdout, '');
    });

    it('rejects two value sources', async () => {
      const result = await runCli(['credentials', 'create', 'two/sources', '--type', 'apiKey', '--provider', 'api', '--value-stdin', '--value-env', 'TWO_SOURCES'], { ...t.env, TWO_SOURCES: 'from-env' }, { input: 'from-stdin\n' });
      assert.equal(result.code, 2);
      assert.equal(result.stderr, 'aegis: give the value with --value-stdin or with --value-env, not both\n');
      const stored = await t.vault.db.kysely.selectFrom('aegis_credentials').select('id').where('name', '=', 'two/sources').execute();
      assert.equal(stored.length, 0);
    });

    it('sets and clears cron schedules and value policies', async () => {
      // An env credential, since AEGIS can generate and set its values on a schedule.
      const envFile = path.join(t.dir, 'cron.env');
      fs.writeFileSync(envFile, 'CRON_KEY=cron-value\n');
      const created = await runCli(
        ['credentials', 'create', 'cron/cli', '--type', 'apiKey', '--provider', 'env', '--provider-config', JSON.stringify({ file: envFile, variable: 'CRON_KEY' }),
          '--value-env', 'CRON_VALUE', '--rotation', '--rotation-strategy', 'scheduled',
          '--rotation-cron', '30 2 * * *', '--rotation-timezone', 'Europe/Berlin', '--value-policy', '{"length":40,"prefix":"sk_"}', '--json'],
        { ...t.env, CRON_VALUE: 'cron-value' },
      );
      assert.equal(created.code, 0, created.stderr);
      const stored = JSON.parse((await aegis(['credentials', 'get', 'cron/cli', '--json'])).stdout);
      const details = stored.credential_details ?? stored;
      assert.equal(details.rotation_cron, '30 2 * * *');
      assert.equal(details.rotation_timezone, 'Europe/Berlin');
      assert.deepEqual(details.value_policy, { length: 40, prefix: 'sk_' });

      const cleared = await aegis(['credentials', 'update', 'cron/cli', '--no-rotation-cron', '--no-rotation-timezone', '--no-value-policy']);
      assert.equal(cleared.code, 0, cleared.stderr);
      const after = JSON.parse((await aegis(['credentials', 'get', 'cron/cli', '--json'])).stdout);
      const afterDetails = after.credential_details ?? after;
      assert.equal(afterDetails.rotation_cron, null);
      assert.equal(afterDetails.rotation_timezone, null);
      assert.equal(afterDetails.value_policy, null);

      const badCron = await aegis(['credentials', 'update', 'cron/cli', '--rotation-cron', 'every day']);
      assert.equal(badCron.code, 2, badCron.stderr);
      assert.match(badCron.stderr, /^aegis: invalid --rotation-cron: "every day" must have five fields/);
    });

    it('rejects an empty value', async () => {
      const message = 'aegis: invalid value: must not be empty or only white space (an unset shell variable gives an empty value)\n';
      const created = await runCli(['credentials', 'create', 'empty/value', '--type', 'apiKey', '--provider', 'api', '--value-env', 'EMPTY_VALUE'], { ...t.env, EMPTY_VALUE: '' });
      assert.equal(created.code, 2, created.stderr);
      assert.equal(created.stderr, message);
      const stored = await t.vault.db.kysely.selectFrom('aegis_credentials').select('id').where('name', '=', 'empty/value').execute();
      assert.equal(stored.length, 0);

      const live = await runCli(['credentials', 'create', 'empty/rotated', '--type', 'apiKey', '--provider', 'api', '--value-env', 'FIRST_VALUE'], { ...t.env, FIRST_VALUE: 'first-value' });
      assert.equal(live.code, 0, live.stderr);
      const rotated = await aegis(['rotate', 'empty/rotated', '--value-stdin'], '\n');
      assert.equal(rotated.code, 2, rotated.stderr);
      assert.equal(rotated.stderr, message);
    });

    it('service errors name the option', async () => {
      // The registry checks these after the schema, so its messages name the API's fields.
      const created = await aegis(['credentials', 'create', 'named/option', '--type', 'apiKey', '--provider', 'api', '--provider-config', apiConfig]);
      assert.equal(created.code, 0, created.stderr);
      const cases: Array<[string[], string]> = [
        [['credentials', 'update', 'named/option', '--rotation-timezone', 'Mars/Base'], 'aegis: invalid --rotation-timezone: "Mars/Base" is not an IANA time zone (e.g. Europe/Berlin)\n'],
        [['credentials', 'create', 'named/env', '--type', 'env_var', '--provider', 'env', '--provider-config', '{}'], 'aegis: invalid --provider-config (file): is required for env credentials: the absolute path of the .env file\n'],
      ];
      const settingsBefore = await t.vault.registry.get(caller, 'named/option');

      for (const [args, expected] of cases) {
        const result = await aegis(args);
        const label = args.join(' ');
        assert.equal(result.code, 2, `${label}: ${result.stderr}`);
        assert.equal(result.stderr, expected, label);
      }

      const settingsAfter = await t.vault.registry.get(caller, 'named/option');
      assert.deepEqual(settingsAfter.credential, settingsBefore.credential);
      const env = await t.vault.db.kysely.selectFrom('aegis_credentials').select('id').where('name', '=', 'named/env').execute();
      assert.equal(env.length, 0);
    });

    it('keeps the value out of output', () => {
      assert.ok(outputs.length >= 15);
      for (const output of outputs) {
        assert.ok(!output.stdout.includes(secret), 'stdout contains the value');
        assert.ok(!output.stderr.includes(secret), 'stderr contains the value');
      }
    });
  });
}
