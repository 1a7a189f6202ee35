import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { CommanderError, type Command } from 'commander';
import { collect, collectTag } from '../../src/cli/context.js';
import { buildProgram } from '../../src/cli/main.js';
import { runCli } from '../helpers/cli.js';
import { dropSchema, testDialects, testPostgresUrl } from '../helpers/databases.js';

/** Lists the path of every command and subcommand, e.g. ['credentials', 'list'], from the real program. */
function commandPaths(command: Command, prefix: string[] = []): string[][] {
  return command.commands.flatMap((sub) => {
    const own = [...prefix, sub.name()];
    return [own, ...commandPaths(sub, own)];
  });
}

function allCommands(command: Command): Command[] {
  return [command, ...command.commands.flatMap(allCommands)];
}

/**
 * Runs `aegis ARGS` in this process on a fresh program, capturing what commander prints. It is used for
 * help output, which touches no vault, because a child process per command takes seconds to start.
 */
async function parseInProcess(args: string[]): Promise<{ exitCode: number; output: string }> {
  const program = buildProgram();
  let output = '';
  for (const command of allCommands(program)) {
    command.configureOutput({ writeOut: (text) => (output += text), writeErr: (text) => (output += text) });
  }
  try {
    await program.parseAsync(args, { from: 'user' });
    return { exitCode: 0, output };
  } catch (error) {
    if (!(error instanceof CommanderError)) throw error;
    return { exitCode: error.exitCode, output };
  }
}

describe('aegis help', () => {
  it('prints top-level usage', async () => {
    const result = await runCli(['--help'], {});
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /^Usage: aegis \[options\] \[command\]/);
    for (const name of ['serve', 'init', 'credentials', 'tokens', 'audit', 'keys', 'import']) {
      assert.match(result.stdout, new RegExp(`^  ${name}\\b`, 'm'), `lists ${name}`);
    }
  });

  it('prints usage for every command', async () => {
    const paths = commandPaths(buildProgram());
    assert.ok(paths.length >= 15, `found only ${paths.length} commands`);
    for (const commandPath of paths) {
      const result = await parseInProcess([...commandPath, '--help']);
      const label = commandPath.join(' ');
      assert.equal(result.exitCode, 0, `${label}: ${result.output}`);
      assert.ok(result.output.startsWith(`Usage: aegis ${label}`), `${label}: ${result.output.split('\n')[0]}`);
      assert.match(result.output, /-h, --help/, label);
    }
  });

  it('prints subcommand usage from the binary', async () => {
    const result = await runCli(['import', 'dotenv', '--help'], {});
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /^Usage: aegis import dotenv \[options\] <file>/);
  });

  it('rejects an unknown option', async () => {
    const result = await runCli(['credentials', 'list', '--colour'], {});
    assert.equal(result.code, 2);
    assert.equal(result.stderr, "aegis: unknown option '--colour'. See `aegis credentials list --help`.\n");
    assert.equal(result.stdout, '');
  });

  it('rejects an unknown command', async () => {
    const result = await runCli(['credential'], {});
    assert.equal(result.code, 2);
    assert.equal(result.stderr, "aegis: unknown command 'credential' (did you mean credentials?). See `aegis --help`.\n");
  });

  it('reports usage errors in one line', async () => {
    const cases: Array<[string[], string]> = [
      [['credentials', 'get'], "missing required argument 'name'. See `aegis credentials get --help`."],
      [['credentials', 'get', 'a', 'b'], "too many arguments for 'get'. Expected 1 argument but got 2. See `aegis credentials get --help`."],
      [['tokens', 'create', '--scope', 'admin'], "required option '--actor <name>' not specified. See `aegis tokens create --help`."],
      [['tokens', 'create', '--actor'], "option '--actor <name>' argument missing. See `aegis tokens create --help`."],
      [['credentials', 'list', '--stauts', 'active'], "unknown option '--stauts' (did you mean --status?). See `aegis credentials list --help`."],
      [['--colour', 'doctor'], "unknown option '--colour'. See `aegis --help`."],
      [['credentials', 'list', '--\u001b[2J'], "unknown option '--\\u001b[2J'. See `aegis credentials list --help`."],
    ];
    for (const [args, message] of cases) {
      const result = await parseInProcess(args);
      assert.equal(result.exitCode, 2, args.join(' '));
      assert.equal(result.output, `aegis: ${message}\n`);
    }
  });

  it('prints help for a bare command group', async () => {
    // A group such as `aegis credentials` without its command is a usage error too, and its help lists the commands.
    for (const args of [[], ['credentials']]) {
      const result = await parseInProcess(args);
      assert.equal(result.exitCode, 2, args.join(' '));
      assert.match(result.output, new RegExp(`^Usage: ${['aegis', ...args].join(' ')} \\[options\\] \\[command\\]`));
    }
  });

  it('names a damaged database without a stack trace', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'aegis-damaged-'));
    try {
      fs.writeFileSync(path.join(dir, 'aegis.db'), crypto.randomBytes(8192));
      const result = await runCli(['credentials', 'list'], { AEGIS_DATA_DIR: dir, AEGIS_MASTER_KEY: crypto.randomBytes(32).toString('base64') });
      assert.equal(result.code, 1);
      assert.equal(result.stderr, 'aegis: the SQLite database file is damaged or is not a database. Run `aegis doctor` for details, and restore the vault from its last backup (docs/deployment.md).\n');
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('names a port in use without a stack trace', async () => {
    const server = net.createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as net.AddressInfo).port;
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'aegis-port-'));
    try {
      const result = await runCli(['serve'], { AEGIS_DATA_DIR: dir, AEGIS_PORT: String(port), AEGIS_SCHEDULER: 'off' });
      assert.equal(result.code, 1);
      assert.match(result.stderr, new RegExp(`^aegis: cannot listen \\(listen EADDRINUSE: address already in use 127\\.0\\.0\\.1:${port}\\)\\. Stop the process`, 'm'));
      assert.doesNotMatch(result.stderr, /\n\s+at /);
    } finally {
      await new Promise<void>((resolve) => server.close(() => resolve()));
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('names an unreachable database without a stack trace', async () => {
    // A port nothing listens on: the server below is closed before the command runs.
    const server = net.createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as net.AddressInfo).port;
    await new Promise<void>((resolve) => server.close(() => resolve()));
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'aegis-unreachable-'));
    try {
      const result = await runCli(['credentials', 'list'], { AEGIS_DATA_DIR: dir, DATABASE_URL: `postgres://postgres@127.0.0.1:${port}/test`, AEGIS_MASTER_KEY: crypto.randomBytes(32).toString('base64') });
      assert.equal(result.code, 1);
      assert.match(result.stderr, new RegExp(`^aegis: cannot reach the database \\(connect ECONNREFUSED 127\\.0\\.0\\.1:${port}\\)\\. Check DATABASE_URL`));
      assert.doesNotMatch(result.stderr, /\n\s+at /);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('names a rejected database without a stack trace', async (t) => {
    if (!(await testDialects()).includes('postgres')) {
      t.skip('PostgreSQL is not reachable');
      return;
    }
    const url = new URL(testPostgresUrl);
    url.pathname = `/aegis_missing_${crypto.randomBytes(4).toString('hex')}`;
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'aegis-rejected-'));
    try {
      const result = await runCli(['migrate'], { AEGIS_DATA_DIR: dir, DATABASE_URL: url.href, AEGIS_MASTER_KEY: crypto.randomBytes(32).toString('base64') });
      assert.equal(result.code, 1);
      assert.match(result.stderr, new RegExp(`^aegis: PostgreSQL rejected the connection \\(database "${url.pathname.slice(1)}" does not exist\\)\\. Correct the database name`));
      assert.doesNotMatch(result.stderr, /\n\s+at /);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('creates no vault outside init and migrate', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'aegis-typo-'));
    try {
      for (const args of [['credentials', 'list'], ['tokens', 'list']]) {
        const result = await runCli(args, { AEGIS_DATA_DIR: dir });
        assert.equal(result.code, 1, args.join(' '));
        assert.equal(result.stderr, `aegis: No vault at ${path.join(dir, 'aegis.db')}: the file does not exist. Check AEGIS_DATA_DIR (or AEGIS_SQLITE_PATH), or create the vault with \`aegis init\` or \`aegis serve\`.\n`);
      }
      assert.deepEqual(fs.readdirSync(dir), []);

      // init with a key file that does not exist fails before the vault exists, and leaves no database behind.
      const failed = await runCli(['init'], { AEGIS_DATA_DIR: dir, AEGIS_MASTER_KEY_FILE: path.join(dir, 'missing.key') });
      assert.equal(failed.code, 1, failed.stderr);
      assert.match(failed.stderr, /missing\.key/);
      assert.deepEqual(fs.readdirSync(dir).filter((file) => file.startsWith('aegis.db')), []);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('rejects a non-integer option', async () => {
    const result = await runCli(['credentials', 'list', '--limit', 'ten'], {});
    assert.equal(result.code, 2);
    assert.equal(result.stderr, "aegis: option '--limit <count>' argument 'ten' is invalid. Expected an integer. See `aegis credentials list --help`.\n");
  });

  it('rejects an integer past 2^53', async () => {
    // Such a --limit or --offset reached SQLite, which failed with a stack trace.
    const cases = [
      ['credentials', 'list', '--limit', '99999999999999999999'],
      ['credentials', 'list', '--offset', '99999999999999999999'],
      ['rotation', 'history', '--limit', '9007199254740992'],
    ];
    for (const args of cases) {
      const result = await parseInProcess(args);
      assert.equal(result.exitCode, 2, args.join(' '));
      assert.match(result.output, /^aegis: option '--(limit|offset) <count>' argument '\d+' is invalid\. Expected an integer between -9007199254740991 and 9007199254740991\./);
    }
  });

  it('rejects a port past 65535', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'aegis-port-'));
    try {
      const result = await runCli(['serve', '--port', '70000'], { AEGIS_DATA_DIR: dir });

      assert.equal(result.code, 2);
      assert.match(result.stderr, /^aegis: option '--port <number>' argument '70000' is invalid\. Expected an integer from 0 to 65535\./);
      assert.deepEqual(fs.readdirSync(dir), [], 'no vault is created for a rejected start');
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('rejects a settle time past 2^31 ms', async () => {
    // A longer timer fires after 1 ms, so the rotation would skip its wait without a word.
    const result = await parseInProcess(['keys', 'rotate', '--settle-ms', '2147483648']);

    assert.equal(result.exitCode, 2);
    assert.match(result.output, /^aegis: option '--settle-ms <ms>' argument '2147483648' is invalid\. Expected an integer from 0 to 2147483647\./);
  });

  it('rejects rollback to version 0', async () => {
    // Versions start at 1, so 0 and -1 are mistakes, not versions removed by retention.
    for (const version of ['0', '-1']) {
      const result = await parseInProcess(['rollback', 'stripe/live', '--version', version]);
      assert.equal(result.exitCode, 2, version);
      assert.match(result.output, new RegExp(`^aegis: option '--version <number>' argument '${version}' is invalid\\. Expected an integer of at least 1\\.`));
    }
  });
});

describe('aegis invalid option values', () => {
  // Each is rejected before the vault opens, so a folder without a vault is enough: a check that ran
  // later would fail with "No vault at ..." and exit code 1 instead.
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'aegis-invalid-'));
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('rejects dates in the wrong order', async () => {
    const cases = [
      ['audit', 'report', '--start-date', '2025-02-01', '--end-date', '2025-01-01'],
      ['audit', 'export', '--format', 'jsonl', '--start-date', '2025-02-01', '--end-date', '2025-01-01'],
    ];
    for (const args of cases) {
      const result = await runCli(args, { AEGIS_DATA_DIR: dir });
      assert.equal(result.code, 2, args.join(' '));
      assert.equal(result.stderr, 'aegis: --start-date (2025-02-01T00:00:00.000Z) must not be after --end-date (2025-01-01T00:00:00.000Z).\n');
    }
  });

  it('rejects a rotation reason the API rejects', async () => {
    const cases: Array<[string, string]> = [
      ['line\u001b[2Jbreak', 'aegis: invalid --reason: must not contain control characters\n'],
      ['x'.repeat(501), 'aegis: invalid --reason: must NOT have more than 500 characters\n'],
    ];
    for (const [reason, message] of cases) {
      const result = await runCli(['rotate', 'stripe/live', '--reason', reason], { AEGIS_DATA_DIR: dir });
      assert.equal(result.code, 2, result.stderr);
      assert.equal(result.stderr, message);
    }
    assert.deepEqual(fs.readdirSync(dir), []);
  });
});

describe('aegis repeated options', () => {
  // Each case ends with --help, which commander handles after reading every option: a rejected
  // repeat fails first, and an accepted one prints the help, so no command runs against a vault.
  it('rejects a single-value option twice', async () => {
    const cases: Array<[string[], string]> = [
      [['tokens', 'create', '--actor', 'ops', '--actor', 'ARIA', '--scope', 'admin'], '--actor'],
      [['credentials', 'list', '--limit', '5', '--limit=6'], '--limit'],
      [['credentials', 'list', '--tag', 'prod', '--tag', 'billing'], '--tag'],
      [['audit', 'export', '--format', 'csv', '--format', 'jsonl'], '--format'],
      [['--config', 'a.yaml', '--config', 'b.yaml', 'doctor'], '--config'],
    ];
    for (const [args, option] of cases) {
      const result = await parseInProcess([...args, '--help']);
      const label = args.join(' ');
      assert.equal(result.exitCode, 2, `${label}: ${result.output}`);
      assert.equal(result.output, `aegis: option ${option} is given more than once, but it takes one value. Give it once. See \`aegis ${args[0] === '--config' ? '' : `${args.slice(0, 2).join(' ')} `}--help\`.\n`, label);
    }
  });

  it('rejects both forms of a negatable option', async () => {
    const result = await parseInProcess(['credentials', 'update', 'stripe/live', '--rotation', '--no-rotation', '--help']);

    assert.equal(result.exitCode, 2, result.output);
    assert.equal(result.output, 'aegis: options --rotation and --no-rotation contradict each other. Give one of them. See `aegis credentials update --help`.\n');
  });

  it('accepts collecting options and repeated flags', async () => {
    const cases = [
      ['tokens', 'create', '--actor', 'ops', '--scope', 'credentials:read', '--scope', 'credentials:apply', '--tag', 'n8n', '--tag', 'prod', '--name-pattern', 'a/*', '--name-pattern', 'b/*'],
      ['credentials', 'create', 'stripe/live', '--type', 'apiKey', '--tag', 'prod', '--tag', 'billing'],
      ['import', 'dotenv', 'app.env', '--tag', 'prod', '--tag', 'billing'],
      ['credentials', 'list', '--json', '--json'],
    ];
    for (const args of cases) {
      const result = await parseInProcess([...args, '--help']);
      assert.equal(result.exitCode, 0, `${args.join(' ')}: ${result.output}`);
    }
  });

  it('help names every repeatable option', () => {
    // The README states that the help of every option that collects values mentions that it repeats.
    for (const command of allCommands(buildProgram())) {
      for (const option of command.options) {
        const collects = option.parseArg === collect || option.parseArg === collectTag;
        assert.equal(/\brepeat(able)?\b/.test(option.description), collects, `${command.name()} ${option.flags}: ${option.description}`);
      }
    }
  });

  it('rejects a repeat from the binary', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'aegis-repeat-'));
    try {
      const result = await runCli(['tokens', 'create', '--actor', 'ops', '--actor', 'ARIA', '--scope', 'admin'], { AEGIS_DATA_DIR: dir });

      assert.equal(result.code, 2);
      assert.equal(result.stderr, 'aegis: option --actor is given more than once, but it takes one value. Give it once. See `aegis tokens create --help`.\n');
      assert.equal(result.stdout, '');
      assert.deepEqual(fs.readdirSync(dir), []);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

for (const dialect of await testDialects()) {
  describe(`aegis init on ${dialect}`, () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'aegis-init-'));
    const schema = `aegis_t_${crypto.randomBytes(6).toString('hex')}`;
    const env: Record<string, string> = {
      AEGIS_DATA_DIR: dir,
      ...(dialect === 'postgres' ? { DATABASE_URL: testPostgresUrl, AEGIS_DATABASE_SCHEMA: schema } : {}),
    };
    after(async () => {
      if (dialect === 'postgres') await dropSchema(schema);
      fs.rmSync(dir, { recursive: true, force: true });
    });

    it('prints an admin token once', async () => {
      const first = await runCli(['init'], env);
      assert.equal(first.code, 0, first.stderr);
      assert.match(first.stdout, new RegExp(`^Vault ready: ${dialect} at `));
      const tokens = first.stdout.match(/aegis_[0-9a-f]{12}_\S+/g) ?? [];
      assert.equal(tokens.length, 1, first.stdout);

      const second = await runCli(['init'], env);
      assert.equal(second.code, 0, second.stderr);
      assert.match(second.stdout, /The vault already has tokens; no admin token was created\./);
      assert.ok(!/aegis_[0-9a-f]{12}_/.test(second.stdout), 'the second init prints no token');

      const list = await runCli(['tokens', 'list', '--json'], env);
      assert.equal(list.code, 0, list.stderr);
      const listed = JSON.parse(list.stdout) as { tokens: Array<{ id: string; scopes: string[] }> };
      assert.equal(listed.tokens.length, 1);
      assert.deepEqual(listed.tokens[0]!.scopes, ['admin']);
      assert.ok(tokens[0]!.startsWith(`aegis_${listed.tokens[0]!.id}_`));
    });

    it('migrates a new database once', async () => {
      const fresh: Record<string, string> = { ...env, AEGIS_DATA_DIR: path.join(dir, 'fresh'), ...(dialect === 'postgres' ? { AEGIS_DATABASE_SCHEMA: `${schema}_m` } : {}) };
      try {
        // Without a configured key, migrating would tie the new vault to a generated development key.
        const keyless = await runCli(['migrate'], fresh);
        assert.equal(keyless.code, 2);
        assert.match(keyless.stderr, /^aegis: No master key is configured, so migrating would generate a development key/);
        assert.ok(!fs.existsSync(path.join(dir, 'fresh', 'master.key')), 'migrate wrote a key file');
        fresh.AEGIS_MASTER_KEY = crypto.randomBytes(32).toString('base64');

        const first = await runCli(['migrate', '--json'], fresh);
        assert.equal(first.code, 0, first.stderr);
        const applied = JSON.parse(first.stdout) as { applied: string[]; latest: string };
        assert.equal(applied.applied[0], '0001_initial');
        assert.equal(applied.applied.at(-1), applied.latest);

        const second = await runCli(['migrate'], fresh);
        assert.equal(second.code, 0, second.stderr);
        assert.equal(second.stdout, `the database schema is up to date (${applied.latest})\n`);
      } finally {
        if (dialect === 'postgres') await dropSchema(`${schema}_m`);
      }
    });
  });
}

/** Returns the pino level of each JSON log line in `stderr` (20 debug, 30 info, 40 warn). */
function logLevels(stderr: string): number[] {
  return stderr
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => (JSON.parse(line) as { level: number }).level);
}

/** Returns the message of each JSON log line in `stderr` at exactly `level`. */
function logMessages(stderr: string, level: number): string[] {
  return stderr
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as { level: number; msg: string })
    .filter((entry) => entry.level === level)
    .map((entry) => entry.msg);
}

describe('CLI log level', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'aegis-log-level-'));
  const quietConfig = path.join(dir, 'quiet.yaml');
  const debugConfig = path.join(dir, 'debug.yaml');
  fs.writeFileSync(quietConfig, 'storage:\n  data_dir: quiet-data\n', { mode: 0o600 });
  fs.writeFileSync(debugConfig, 'storage:\n  data_dir: debug-data\nlogging:\n  level: debug\n', { mode: 0o600 });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('defaults to warn without a level', async () => {
    // init on a new vault logs its migrations and first key at info level.
    const result = await runCli(['--config', quietConfig, 'init'], {}, { cwd: dir });
    assert.equal(result.code, 0, result.stderr);
    // stdout contains the admin token, so only whether it starts as expected is reported.
    assert.ok(result.stdout.startsWith('Vault ready: sqlite at '), 'init did not report the vault on stdout');
    const belowWarn = logLevels(result.stderr).filter((level) => level < 40);
    assert.deepEqual(belowWarn, [], result.stderr);
    // Warnings still reach stderr: the generated development key is one.
    assert.ok(logMessages(result.stderr, 40).some((message) => message.startsWith('generated a master key file')), result.stderr);
  });

  it('takes debug from the file', async () => {
    const result = await runCli(['--config', debugConfig, 'init'], {}, { cwd: dir });
    assert.equal(result.code, 0, result.stderr);
    assert.deepEqual(logMessages(result.stderr, 20), ['opened the vault']);
    assert.ok(logMessages(result.stderr, 30).includes('applied database migrations'), result.stderr);
    assert.ok(!result.stdout.includes('"level":'), 'a log line reached stdout');

    const list = await runCli(['--config', debugConfig, 'tokens', 'list', '--json'], {}, { cwd: dir });
    assert.equal(list.code, 0, list.stderr);
    assert.deepEqual(logMessages(list.stderr, 20), ['opened the vault']);
    assert.equal(JSON.parse(list.stdout).tokens.length, 1);
  });

  it('variable overrides the file', async () => {
    const quieter = await runCli(['--config', debugConfig, 'tokens', 'list', '--json'], { AEGIS_LOG_LEVEL: 'warn' }, { cwd: dir });
    assert.equal(quieter.code, 0, quieter.stderr);
    assert.deepEqual(logLevels(quieter.stderr).filter((level) => level < 40), [], quieter.stderr);

    const louder = await runCli(['--config', quietConfig, 'tokens', 'list', '--json'], { AEGIS_LOG_LEVEL: 'debug' }, { cwd: dir });
    assert.equal(louder.code, 0, louder.stderr);
    assert.deepEqual(logMessages(louder.stderr, 20), ['opened the vault']);
    assert.equal(JSON.parse(louder.stdout).tokens.length, 1);
  });
});
