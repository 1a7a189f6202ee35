import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Command } from 'commander';
import { buildProgram } from '../../src/cli/main.js';
import { localCaller } from '../../src/tokens/caller.js';
import { runCli } from '../helpers/cli.js';
import { testDialects } from '../helpers/databases.js';
import { destroyTestVault, openTestVault, type TestVault } from '../helpers/test-vault.js';

// Every `--json` output uses the snake_case keys of the HTTP API. Each command runs in a child
// process, so this file is kept apart from cli.test.ts.

const snakeCase = /^[a-z][a-z0-9]*(_[a-z0-9]+)*$/;

/** Fields whose keys come from the user (metadata) or name provider settings, so they keep any spelling. */
const userKeyed = new Set(['metadata', 'provider_config']);

/** Lists the key paths of every object inside `value`, such as `history[0].credential_name`. */
function keyPaths(value: unknown, at = ''): string[] {
  if (Array.isArray(value)) return value.flatMap((item, index) => keyPaths(item, `${at}[${index}]`));
  if (value === null || typeof value !== 'object') return [];
  return Object.entries(value).flatMap(([key, inner]) => {
    const keyPath = at === '' ? key : `${at}.${key}`;
    return [keyPath, ...(userKeyed.has(key) ? [] : keyPaths(inner, keyPath))];
  });
}

function lastKey(keyPath: string): string {
  return keyPath.split('.').at(-1)!.replace(/\[\d+\]$/, '');
}

function allCommands(command: Command): Command[] {
  return [command, ...command.commands.flatMap(allCommands)];
}

function commandPath(command: Command): string {
  const names: string[] = [];
  for (let current: Command | null = command; current?.parent; current = current.parent) names.unshift(current.name());
  return names.join(' ');
}

/** Commands with --json that this file does not run, and why. */
const notRun: Record<string, string> = {
  'import legacy': 'needs a database of the earlier service; legacy-import.test.ts reads its --json report',
};

for (const dialect of await testDialects()) {
  describe(`aegis --json keys on ${dialect}`, () => {
    let t: TestVault;
    let safe: string;
    const covered = new Set<string>();
    const passphrase = 'recovery phrase: json-otter-12-birch';
    const caller = localCaller('cli-json-test');

    before(async () => {
      t = await openTestVault(dialect);
      safe = fs.mkdtempSync(path.join(os.tmpdir(), 'aegis-json-safe-'));
      fs.writeFileSync(path.join(t.dir, 'app.env'), 'API_KEY=first-value\n');
      fs.writeFileSync(path.join(t.dir, 'import.env'), 'IMPORTED_KEY=imported-value\n');
      fs.writeFileSync(path.join(t.dir, 'n8n.json'), JSON.stringify([{ id: 'n1', name: 'Slack', type: 'slackApi', data: { accessToken: 'xoxb-json' } }]));
    });
    after(async () => {
      await destroyTestVault(t);
      fs.rmSync(safe, { recursive: true, force: true });
    });

    /** Runs `aegis ARGS --json` and returns the key paths of its output, after checking that it is JSON. */
    async function jsonKeys(command: string, args: string[], options: { env?: Record<string, string>; codes?: number[] } = {}): Promise<string[]> {
      covered.add(command);
      const result = await runCli([...command.split(' '), ...args, '--json'], { ...t.env, AEGIS_LOG_LEVEL: 'warn', ...options.env });
      assert.ok((options.codes ?? [0]).includes(result.code ?? -1), `exit code ${result.code}: ${result.stderr}`);
      const paths = keyPaths(JSON.parse(result.stdout));
      const wrong = paths.filter((keyPath) => !snakeCase.test(lastKey(keyPath)));
      assert.deepEqual(wrong, [], `keys not in snake_case: ${result.stdout}`);
      return paths;
    }

    it('credentials create and read', async () => {
      const providerConfig = JSON.stringify({ file: path.join(t.dir, 'app.env'), variable: 'API_KEY' });
      // The metadata key is the user's, so it may be spelled any way.
      await jsonKeys('credentials create', ['svc/env', '--type', 'apiKey', '--provider', 'env', '--provider-config', providerConfig, '--value-env', 'FIRST', '--metadata', '{"Owner Team":"billing"}'], {
        env: { FIRST: 'first-value' },
      });
      await jsonKeys('credentials list', []);
      const detail = await jsonKeys('credentials get', ['svc/env']);
      assert.ok(detail.includes('health.checked_at'), detail.join(' '));
      await jsonKeys('credentials update', ['svc/env', '--description', 'json test']);
    });

    it('rotation commands', async () => {
      await jsonKeys('rotate', ['svc/env']);
      await jsonKeys('rollback', ['svc/env']);
      const history = await jsonKeys('rotation history', []);
      assert.ok(history.includes('history[0].credential_name'), history.join(' '));
      await jsonKeys('rotation schedule', []);
      await jsonKeys('rotation run', []);
      const pruned = await jsonKeys('rotation prune', []);
      assert.deepEqual(pruned, ['versions_removed', 'history_removed']);
    });

    it('token commands', async () => {
      const created = await jsonKeys('tokens create', ['--actor', 'json-test', '--scope', 'credentials:read']);
      const id = (await t.vault.tokens.list(caller)).tokens.find((token) => token.actor === 'json-test')!.id;
      assert.ok(created.includes('details.name_patterns'), created.join(' '));
      await jsonKeys('tokens list', []);
      const revoked = await jsonKeys('tokens revoke', [id]);
      assert.ok(revoked.includes('revoked_at'), revoked.join(' '));
    });

    it('audit commands', async () => {
      await jsonKeys('audit verify', []);
      const file = path.join(t.dir, 'audit.jsonl');
      const exported = await runCli(['audit', 'export', '--format', 'jsonl', '--output', file], t.env);
      assert.equal(exported.code, 0, exported.stderr);
      await jsonKeys('audit verify', ['--file', file]);
      await jsonKeys('audit report', ['--start-date', '2020-01-01', '--end-date', '2030-01-01']);
      await jsonKeys('audit prune', []);
    });

    it('key commands', async () => {
      const listed = await jsonKeys('keys list', []);
      assert.ok(listed.includes('keys[0].key_id'), listed.join(' '));
      const rotated = await jsonKeys('keys rotate', ['--settle-ms', '0']);
      assert.deepEqual(rotated.filter((keyPath) => !keyPath.includes('[')), ['new_key_id', 'rewrapped', 'retired_key_ids']);
      const backupFile = path.join(safe, 'keys.json');
      await jsonKeys('keys backup', ['--to', backupFile], { env: { AEGIS_RECOVERY_PASSPHRASE: passphrase } });
      await jsonKeys('keys restore', ['--from', backupFile, '--to-key-file', path.join(safe, 'restored.key')], { env: { AEGIS_RECOVERY_PASSPHRASE: passphrase } });
    });

    it('backup, import and setup commands', async (context) => {
      await jsonKeys('import dotenv', [path.join(t.dir, 'import.env'), '--dry-run']);
      await jsonKeys('import n8n', [path.join(t.dir, 'n8n.json'), '--dry-run']);
      await jsonKeys('migrate', []);
      await jsonKeys('doctor', [], { codes: [0, 1] });
      // A missing SQLite file fails the database check, so the checks after it are skipped and name it.
      const skipped = await jsonKeys('doctor', [], { env: { AEGIS_SQLITE_PATH: path.join(t.dir, 'missing', 'aegis.db'), DATABASE_URL: '' }, codes: [1] });
      assert.ok(skipped.some((keyPath) => keyPath.endsWith('.depends_on')), skipped.join(' '));
      await jsonKeys('credentials retire', ['svc/env']);
      if (dialect === 'postgres') {
        covered.add('backup');
        context.diagnostic('aegis backup copies SQLite only');
        return;
      }
      await jsonKeys('backup', ['--to', path.join(safe, 'copy.db')]);
    });

    it('covers every --json command', () => {
      const withJson = allCommands(buildProgram())
        .filter((command) => command.options.some((option) => option.long === '--json'))
        .map(commandPath);
      const missing = withJson.filter((command) => !covered.has(command) && notRun[command] === undefined);
      assert.deepEqual(missing, []);
    });
  });
}
