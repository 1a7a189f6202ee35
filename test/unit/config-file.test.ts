import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { FILE_KEYS } from '../../src/config/config-keys.js';
import { loadConfig, loadConfigAndFile, type Config } from '../../src/config/config.js';
import { StartupError } from '../../src/lib/errors.js';
import { describeKeySource } from '../../src/crypto/key-sources.js';

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'aegis-config-file-'));
after(() => fs.rmSync(root, { recursive: true, force: true }));

let fileCount = 0;

/** Writes a configuration file in a folder of its own under `root` and returns its path. */
function writeConfig(text: string, name = 'aegis.yaml'): string {
  fileCount += 1;
  const folder = path.join(root, `case-${fileCount}`, 'etc');
  fs.mkdirSync(folder, { recursive: true });
  const file = path.join(folder, name);
  fs.writeFileSync(file, text);
  return file;
}

/** Runs `loadConfig` and returns the StartupError it throws. */
function startupError(env: Record<string, string>, cwd = root): StartupError {
  try {
    loadConfig(env, cwd);
  } catch (error) {
    assert.ok(error instanceof StartupError, `expected a StartupError, got ${String(error)}`);
    return error;
  }
  assert.fail('loadConfig accepted the configuration');
}

const webhookSecret = 'whsec-file-0123456789abcdef';
const n8nApiKey = 'n8n-file-api-key-42';

/** Sets every file key except keys.master_key and keys.passphrase (they exclude master_key_file) to a non-default value. */
const fullFile = `
server:
  host: 0.0.0.0
  port: 9443
  tls:
    cert_file: tls/cert.pem
    key_file: /etc/aegis/tls/key.pem
  allow_insecure_listen: true
  trusted_proxies: [10.0.0.2, "2001:db8::/64"]
  body_limit_bytes: 1048576
  shutdown_timeout_seconds: 45
storage:
  data_dir: ../var
  sqlite_path: ../var/vault.db
  database_url: postgres://aegis:pw@db.internal:5432/aegis
  database_schema: vault
  pool_max: 20
  connect_timeout_ms: 2000
  idle_timeout_ms: 20000
  statement_timeout_ms: 90000
  idle_in_transaction_timeout_ms: 120000
keys:
  master_key_file: /etc/aegis/master.key
  data_key_cache_seconds: 60
tokens:
  auth_failure_limit: 5
  auth_failure_window_seconds: 120
sinks:
  hermes_url: https://hermes.internal/
  event_bus_url: https://bus.internal
  webhooks:
    - url: https://hooks.internal/aegis
      secret: ${webhookSecret}
providers:
  timeout_ms: 2000
  env:
    allowed_dirs: [apps, /srv/other]
    reload_commands:
      apps/web/.env: systemctl reload web
  postgres:
    admin_url: postgres://admin:pw@db.internal/postgres
    connections:
      reporting: postgres://admin:pw@reporting.internal/postgres
    allowed_roles: [app_*, reporting]
  n8n:
    url: https://n8n.internal
    api_key: ${n8nApiKey}
  supabase:
    access_token: sbp_file_token
    api_url: https://supabase.internal
rotation:
  lease_seconds: 600
  attempts: 5
  concurrency: 8
  version_retention_days: 30
  history_retention_days: 60
alerts:
  lead_hours: [24, 168, 72]
  delivery_seconds: 10
  retention_days: 30
health:
  concurrency: 20
  check_retention_days: 45
scheduler:
  enabled: false
  lease_seconds: 60
  report_timezone: Europe/Berlin
  cron:
    health_checks: "5 * * * *"
    rotations: "35 * * * *"
    expiry_checks: "*/10 * * * *"
    daily_report: "0 7 * * *"
    retention: "20 3 * * *"
audit:
  retention_days: 400
  anomalies:
    baseline_days: 14
    hours_min_entries: 10
    failure_burst_count: 3
    failure_burst_minutes: 5
    read_rate_factor: 4
    read_rate_min_reads: 25
logging:
  level: debug
`;

describe('configuration file', () => {
  it('maps every section to its setting', () => {
    const file = writeConfig(fullFile);
    const folder = path.dirname(file);
    const config = loadConfig({ AEGIS_CONFIG: file }, root);
    const expected: Config = {
      host: '0.0.0.0',
      port: 9443,
      tls: { certFile: path.join(folder, 'tls/cert.pem'), keyFile: '/etc/aegis/tls/key.pem' },
      allowInsecureListen: true,
      trustedProxies: ['10.0.0.2', '2001:db8::/64'],
      shutdownTimeoutSeconds: 45,
      dataDir: path.resolve(folder, '../var'),
      configFile: file,
      databaseUrl: 'postgres://aegis:pw@db.internal:5432/aegis',
      databaseSchema: 'vault',
      databasePoolMax: 20,
      databaseTimeouts: { connectMs: 2000, idleMs: 20000, statementMs: 90000, idleInTransactionMs: 120000 },
      sqlitePath: path.resolve(folder, '../var/vault.db'),
      keySource: { kind: 'file', path: '/etc/aegis/master.key', generated: false },
      dataKeyCacheSeconds: 60,
      logLevel: 'debug',
      logLevelSet: true,
      authFailureLimit: 5,
      authFailureWindowSeconds: 120,
      envAllowedDirs: [path.join(folder, 'apps'), '/srv/other'],
      bodyLimitBytes: 1_048_576,
      envReloadCommands: { [path.join(folder, 'apps/web/.env')]: 'systemctl reload web' },
      postgresAdminConnections: {
        default: 'postgres://admin:pw@db.internal/postgres',
        reporting: 'postgres://admin:pw@reporting.internal/postgres',
      },
      postgresAllowedRoles: ['app_*', 'reporting'],
      providerTimeoutMs: 2000,
      supabaseAccessToken: 'sbp_file_token',
      supabaseApiUrl: 'https://supabase.internal',
      rotationLeaseSeconds: 600,
      rotationAttempts: 5,
      rotationConcurrency: 8,
      versionRetentionDays: 30,
      historyRetentionDays: 60,
      hermesUrl: 'https://hermes.internal',
      eventBusUrl: 'https://bus.internal',
      webhooks: [{ url: 'https://hooks.internal/aegis', secret: webhookSecret }],
      alertLeadHours: [168, 72, 24],
      alertRetentionDays: 30,
      healthConcurrency: 20,
      healthCheckRetentionDays: 45,
      schedulerEnabled: false,
      schedulerLeaseSeconds: 60,
      schedules: { healthChecks: '5 * * * *', rotations: '35 * * * *', expiryChecks: '*/10 * * * *', dailyReport: '0 7 * * *', retention: '20 3 * * *' },
      alertDeliverySeconds: 10,
      reportTimezone: 'Europe/Berlin',
      audit: {
        retentionDays: 400,
        anomalies: { baselineDays: 14, hoursMinBaselineEntries: 10, failureBurstCount: 3, failureBurstMinutes: 5, readRateFactor: 4, readRateMinReads: 25 },
      },
      n8nUrl: 'https://n8n.internal',
      n8nApiKey,
    };
    assert.deepEqual(config, expected);
  });

  it('reaches every setting from the file', () => {
    const defaults = loadConfig({}, root);
    const fromFile = loadConfig({ AEGIS_CONFIG: writeConfig(fullFile) }, root);
    for (const field of Object.keys(defaults) as Array<keyof Config>) {
      assert.notDeepEqual(fromFile[field], defaults[field], `Config.${field} keeps its default although the file sets every key`);
    }
  });

  it('full file sets every key', () => {
    const { file } = loadConfigAndFile({ AEGIS_CONFIG: writeConfig(fullFile) }, root);
    const alternatives = ['keys.master_key', 'keys.passphrase'];
    const missing = FILE_KEYS.filter((entry) => !alternatives.includes(entry.key) && !Object.values(file!.keys).includes(entry.key));
    assert.deepEqual(missing.map((entry) => entry.key), []);
  });

  it('reads master_key and passphrase', () => {
    const key = Buffer.alloc(32, 7).toString('base64');
    const keyFile = writeConfig(`keys:\n  master_key: [${key}, ${key}]\n`);
    const keyConfig = loadConfig({ AEGIS_CONFIG: keyFile }, root);
    assert.deepEqual(keyConfig.keySource, { kind: 'env', variable: 'AEGIS_MASTER_KEY', value: `${key},${key}`, fileKey: `keys.master_key in ${keyFile}` });
    assert.equal(describeKeySource(keyConfig.keySource), `master key keys.master_key in ${keyFile}`);

    const passphraseFile = writeConfig('keys:\n  passphrase: "correct horse battery staple"\n');
    const passphraseConfig = loadConfig({ AEGIS_CONFIG: passphraseFile }, root);
    assert.deepEqual(passphraseConfig.keySource, {
      kind: 'passphrase',
      variable: 'AEGIS_MASTER_PASSPHRASE',
      value: 'correct horse battery staple',
      fileKey: `keys.passphrase in ${passphraseFile}`,
    });
    assert.equal(describeKeySource(passphraseConfig.keySource), `passphrase keys.passphrase in ${passphraseFile}`);

    const fromEnvironment = loadConfig({ AEGIS_CONFIG: keyFile, AEGIS_MASTER_KEY: key }, root);
    assert.equal(describeKeySource(fromEnvironment.keySource), 'environment variable AEGIS_MASTER_KEY');
  });

  it('lists the secret keys it read', () => {
    const { file } = loadConfigAndFile({ AEGIS_CONFIG: writeConfig(fullFile) }, root);
    assert.deepEqual(file!.secretKeys.sort(), [
      'providers.n8n.api_key',
      'providers.postgres.admin_url',
      'providers.postgres.connections',
      'providers.supabase.access_token',
      'sinks.webhooks',
      'storage.database_url',
    ]);
    const plain = loadConfigAndFile({ AEGIS_CONFIG: writeConfig('server:\n  port: 8013\n') }, root);
    assert.deepEqual(plain.file!.secretKeys, []);
  });

  it('example production file loads', () => {
    const example = path.resolve(import.meta.dirname, '../../examples/aegis.yaml');
    const config = loadConfig({ AEGIS_CONFIG: example }, root);
    assert.equal(config.databaseSchema, 'aegis');
    assert.deepEqual(config.keySource, { kind: 'file', path: '/etc/aegis/master.key', generated: false });
    assert.deepEqual(config.tls, { certFile: path.join(path.dirname(example), 'tls/fullchain.pem'), keyFile: path.join(path.dirname(example), 'tls/privkey.pem') });
    assert.equal(config.webhooks.length, 1);
  });

  it('empty file gives the defaults', () => {
    for (const text of ['', '# only a comment\n']) {
      const file = writeConfig(text);
      assert.deepEqual(loadConfig({ AEGIS_CONFIG: file }, root), { ...loadConfig({}, root), configFile: file });
    }
  });
});

describe('configuration precedence', () => {
  it('environment overrides the file', () => {
    const file = writeConfig('server:\n  port: 9000\n  host: 0.0.0.0\nlogging:\n  level: debug\n');
    const config = loadConfig({ AEGIS_CONFIG: file, AEGIS_PORT: '9100' }, root);
    assert.equal(config.port, 9100);
    assert.equal(config.host, '0.0.0.0');
    assert.equal(config.logLevel, 'debug');
  });

  it('empty variable keeps the file value', () => {
    const file = writeConfig('server:\n  port: 9000\n');
    assert.equal(loadConfig({ AEGIS_CONFIG: file, AEGIS_PORT: '' }, root).port, 9000);
  });

  it('empty variable without a file means the default', () => {
    const config = loadConfig({ AEGIS_HOST: '', AEGIS_DATA_DIR: ' ', AEGIS_SQLITE_PATH: '', AEGIS_ENV_ALLOWED_DIRS: '', AEGIS_LOG_LEVEL: '' }, '/srv/aegis');
    assert.equal(config.host, '127.0.0.1');
    assert.equal(config.dataDir, '/srv/aegis/data');
    assert.equal(config.sqlitePath, '/srv/aegis/data/aegis.db');
    assert.deepEqual(config.envAllowedDirs, ['/srv/aegis']);
    assert.equal(config.logLevel, 'info');
    assert.equal(config.logLevelSet, false);
  });

  it('environment key source replaces the file one', () => {
    const file = writeConfig('keys:\n  master_key_file: /etc/aegis/master.key\n');
    const passphrase = 'an environment passphrase 123';
    const config = loadConfig({ AEGIS_CONFIG: file, AEGIS_MASTER_PASSPHRASE: passphrase }, root);
    assert.deepEqual(config.keySource, { kind: 'passphrase', variable: 'AEGIS_MASTER_PASSPHRASE', value: passphrase });
  });

  it('relative AEGIS_CONFIG resolves against cwd', () => {
    const file = writeConfig('server:\n  port: 9001\n');
    const { file: read, config } = loadConfigAndFile({ AEGIS_CONFIG: path.basename(file) }, path.dirname(file));
    assert.equal(read!.path, file);
    assert.equal(config.port, 9001);
  });

  it('relative paths resolve against the file folder', () => {
    const file = writeConfig('storage:\n  data_dir: data\nkeys:\n  master_key_file: ../keys/master.key\nserver:\n  tls:\n    cert_file: cert.pem\n    key_file: key.pem\n');
    const folder = path.dirname(file);
    const config = loadConfig({ AEGIS_CONFIG: file }, '/somewhere/else');
    assert.equal(config.dataDir, path.join(folder, 'data'));
    assert.equal(config.sqlitePath, path.join(folder, 'data', 'aegis.db'));
    assert.deepEqual(config.keySource, { kind: 'file', path: path.resolve(folder, '../keys/master.key'), generated: false });
    assert.deepEqual(config.tls, { certFile: path.join(folder, 'cert.pem'), keyFile: path.join(folder, 'key.pem') });
  });

  it('relative variable paths still resolve against cwd', () => {
    const file = writeConfig('storage:\n  data_dir: data\n');
    const config = loadConfig({ AEGIS_CONFIG: file, AEGIS_DATA_DIR: 'from-env' }, '/srv/aegis');
    assert.equal(config.dataDir, '/srv/aegis/from-env');
  });
});

describe('configuration file errors', () => {
  it('bad value names file key and variable', () => {
    const file = writeConfig('storage:\n  pool_max: 0\n');
    assert.equal(
      startupError({ AEGIS_CONFIG: file }).message,
      `storage.pool_max in ${file} (or AEGIS_DATABASE_POOL_MAX) must be between 1 and 1000, got 0.`,
    );
  });

  it('bad audit value names file key', () => {
    const file = writeConfig('audit:\n  retention_days: 30\n');
    assert.match(startupError({ AEGIS_CONFIG: file }).message, new RegExp(`^audit\\.retention_days in ${file} \\(or AEGIS_AUDIT_RETENTION_DAYS\\) must be at least 365`));
  });

  it('alert retention is range-checked', () => {
    assert.equal(loadConfig({}, root).alertRetentionDays, 90);
    assert.equal(startupError({ AEGIS_ALERT_RETENTION_DAYS: '0' }).message, 'AEGIS_ALERT_RETENTION_DAYS must be between 1 and 36500, got 0.');
    assert.equal(startupError({ AEGIS_ALERT_RETENTION_DAYS: '36501' }).message, 'AEGIS_ALERT_RETENTION_DAYS must be between 1 and 36500, got 36501.');
    assert.equal(startupError({ AEGIS_ALERT_RETENTION_DAYS: 'ninety' }).message, 'AEGIS_ALERT_RETENTION_DAYS must be an integer, got "ninety".');
    const file = writeConfig('alerts:\n  retention_days: 0\n');
    assert.equal(
      startupError({ AEGIS_CONFIG: file }).message,
      `alerts.retention_days in ${file} (or AEGIS_ALERT_RETENTION_DAYS) must be between 1 and 36500, got 0.`,
    );
  });

  it('bad webhook URL names the list item', () => {
    const file = writeConfig(`sinks:\n  webhooks:\n    - url: ftp://hooks.internal\n      secret: ${webhookSecret}\n`);
    const error = startupError({ AEGIS_CONFIG: file });
    assert.match(error.message, new RegExp(`^sinks\\.webhooks\\[0\\]\\.url in ${file} \\(or AEGIS_WEBHOOKS\\) must be an http or https URL`));
    assert.ok(!error.message.includes(webhookSecret), 'the message shows the webhook secret');
  });

  it('database URL must be PostgreSQL', () => {
    for (const value of ['postgres://aegis:SECRETPW@127.0.0.1:notaport/aegis', 'SECRETPW', 'mysql://aegis:SECRETPW@127.0.0.1/aegis']) {
      const message = startupError({ DATABASE_URL: value }).message;
      assert.match(message, /^DATABASE_URL must be a PostgreSQL URL/, value);
      assert.ok(!message.includes('SECRETPW'), message);
    }
    for (const value of ['postgres://aegis:p%40ss@db.internal:5432/aegis', 'postgresql://db.internal/aegis', 'socket:/var/run/postgresql?db=aegis', '/var/run/postgresql aegis']) {
      assert.equal(loadConfig({ DATABASE_URL: value }, root).databaseUrl, value);
    }
  });

  it('sink URLs keep tokens out of messages', () => {
    const file = writeConfig(`sinks:\n  webhooks:\n    - url: htps://hooks.internal/hook/SECRETPATHTOKEN\n      secret: ${webhookSecret}\n`);
    const message = startupError({ AEGIS_CONFIG: file }).message;
    assert.match(message, /got one with scheme "htps:"/);
    assert.ok(!message.includes('SECRETPATHTOKEN'), message);
  });

  it('base sink URLs take no query', () => {
    for (const value of ['http://127.0.0.1:9/?token=abc', 'http://127.0.0.1:9/#part']) {
      assert.match(startupError({ HERMES_URL: value }).message, /^HERMES_URL must not have a query/, value);
      assert.match(startupError({ EVENT_BUS_URL: value }).message, /^EVENT_BUS_URL must not have a query/, value);
    }
    assert.equal(loadConfig({ HERMES_URL: 'http://127.0.0.1:9/base//' }, root).hermesUrl, 'http://127.0.0.1:9/base');
  });

  it('sink URLs take no user name', () => {
    assert.match(startupError({ HERMES_URL: 'http://user:pass@127.0.0.1:9/' }).message, /^HERMES_URL must not contain a user name or password/);
    const hooks = JSON.stringify([{ url: 'http://user:pass@127.0.0.1:9/x', secret: webhookSecret }]);
    const message = startupError({ AEGIS_WEBHOOKS: hooks }).message;
    assert.match(message, /^AEGIS_WEBHOOKS\[0\]\.url must not contain a user name or password/);
    assert.ok(!message.includes('user:pass'), message);
  });

  it('webhook URLs stay as written', () => {
    const url = 'http://127.0.0.1:9/hook/slash/?token=abc';
    assert.deepEqual(loadConfig({ AEGIS_WEBHOOKS: JSON.stringify([{ url, secret: webhookSecret }]) }, root).webhooks, [{ url, secret: webhookSecret }]);
  });

  it('webhook entries are checked one by one', () => {
    const cases: Array<[unknown, RegExp]> = [
      [[{ url: 'http://127.0.0.1:9/x', secret: webhookSecret, extra: 1 }], /^AEGIS_WEBHOOKS\[0\] has unknown setting\(s\) "extra"/],
      [[{ url: 'http://127.0.0.1:9/x', secret: ' '.repeat(20) }], /^AEGIS_WEBHOOKS\[0\]\.secret must be 16 or more characters/],
      [[{ url: 'http://127.0.0.1:9/x', secret: webhookSecret }, { url: 'http://127.0.0.1:9/y' }], /^AEGIS_WEBHOOKS\[1\]\.secret must be 16 or more characters/],
      [[{ secret: webhookSecret }], /^AEGIS_WEBHOOKS\[0\]\.url is missing/],
      [['http://127.0.0.1:9/x'], /^AEGIS_WEBHOOKS\[0\] must be an object/],
      [{ url: 'http://127.0.0.1:9/x' }, /^AEGIS_WEBHOOKS must be a list/],
    ];
    for (const [value, expected] of cases) assert.match(startupError({ AEGIS_WEBHOOKS: JSON.stringify(value) }).message, expected, JSON.stringify(value));
  });

  it('bad cron expression names file key', () => {
    const file = writeConfig('scheduler:\n  cron:\n    rotations: "not a cron"\n');
    assert.match(startupError({ AEGIS_CONFIG: file }).message, /scheduler\.cron\.rotations in .* \(or AEGIS_CRON_ROTATIONS\)/);
  });

  it('bad environment value names only the variable', () => {
    const file = writeConfig('storage:\n  pool_max: 5\n');
    assert.equal(startupError({ AEGIS_CONFIG: file, AEGIS_DATABASE_POOL_MAX: '0' }).message, 'AEGIS_DATABASE_POOL_MAX must be between 1 and 1000, got 0.');
  });

  it('wrong YAML type names the key', () => {
    const file = writeConfig('server:\n  port: [1, 2]\n');
    assert.equal(startupError({ AEGIS_CONFIG: file }).message, `server.port in ${file} (or AEGIS_PORT) must be a number, got a list.`);
    const onOff = writeConfig('scheduler:\n  enabled: sometimes\n');
    assert.equal(startupError({ AEGIS_CONFIG: onOff }).message, `scheduler.enabled in ${onOff} (or AEGIS_SCHEDULER) must be true or false, got "sometimes".`);
  });

  it('TLS cert without key names the key', () => {
    const file = writeConfig('server:\n  tls:\n    cert_file: tls/cert.pem\n');
    assert.equal(
      startupError({ AEGIS_CONFIG: file }).message,
      `server.tls.cert_file in ${file} (or AEGIS_TLS_CERT_FILE) is set but the private key file is missing. ` +
        'Set server.tls.key_file (or AEGIS_TLS_KEY_FILE) as well to serve HTTPS, or unset both to serve HTTP.',
    );
  });

  it('TLS key without cert names the cert', () => {
    const file = writeConfig('server:\n  tls:\n    key_file: tls/key.pem\n');
    assert.equal(
      startupError({ AEGIS_CONFIG: file }).message,
      `server.tls.key_file in ${file} (or AEGIS_TLS_KEY_FILE) is set but the certificate file is missing. ` +
        'Set server.tls.cert_file (or AEGIS_TLS_CERT_FILE) as well to serve HTTPS, or unset both to serve HTTP.',
    );
  });

  it('TLS variable alone names both forms', () => {
    assert.equal(
      startupError({ AEGIS_TLS_CERT_FILE: 'cert.pem' }).message,
      'AEGIS_TLS_CERT_FILE is set but the private key file is missing. Set server.tls.key_file (or AEGIS_TLS_KEY_FILE) as well to serve HTTPS, or unset both to serve HTTP.',
    );
    assert.equal(
      startupError({ AEGIS_TLS_KEY_FILE: 'key.pem' }).message,
      'AEGIS_TLS_KEY_FILE is set but the certificate file is missing. Set server.tls.cert_file (or AEGIS_TLS_CERT_FILE) as well to serve HTTPS, or unset both to serve HTTP.',
    );
  });

  it('secret of wrong type is not shown', () => {
    const file = writeConfig('providers:\n  n8n:\n    api_key: 9876543210\n');
    const error = startupError({ AEGIS_CONFIG: file });
    assert.match(error.message, /^providers\.n8n\.api_key in .* \(or N8N_API_KEY\) must be a string/);
    assert.ok(!error.message.includes('9876543210'), 'the message shows the secret');
  });

  it('unknown key suggests the closest one', () => {
    const typo = writeConfig('storage:\n  pool_maxx: 5\n');
    assert.equal(startupError({ AEGIS_CONFIG: typo }).message, `Configuration file ${typo} has an unknown key "storage.pool_maxx". Did you mean "storage.pool_max"?`);
    const wrongSection = writeConfig('server:\n  pool_max: 5\n');
    assert.match(startupError({ AEGIS_CONFIG: wrongSection }).message, /unknown key "server\.pool_max"\. Did you mean "storage\.pool_max"\?/);
    const section = writeConfig('stroage:\n  pool_max: 5\n');
    assert.match(startupError({ AEGIS_CONFIG: section }).message, /unknown key "stroage"\. Did you mean "storage"\?/);
    const unrelated = writeConfig('colour: blue\n');
    assert.match(startupError({ AEGIS_CONFIG: unrelated }).message, /unknown key "colour"\. docs\/configuration\.md lists the keys\./);
  });

  it('section given a value is rejected', () => {
    const file = writeConfig('storage: /var/lib/aegis\n');
    assert.equal(startupError({ AEGIS_CONFIG: file }).message, `storage in ${file} must be a section of keys, got "/var/lib/aegis".`);
  });

  it('bad YAML names file and line', () => {
    const file = writeConfig('server:\n  port: 8012\n  host: [127.0.0.1\nstorage:\n  pool_max: 3\n');
    const message = startupError({ AEGIS_CONFIG: file }).message;
    assert.ok(message.startsWith(`Configuration file ${file} is not valid YAML: line `), message);
    assert.match(message, /line [345], column \d+/);
  });

  it('duplicate key names its line', () => {
    const file = writeConfig('server:\n  port: 8012\n  port: 8013\n');
    assert.match(startupError({ AEGIS_CONFIG: file }).message, /is not valid YAML: line 3, column 3: .*unique/i);
  });

  it('YAML error hides the source text', () => {
    const secret = 'sekrit-passphrase-value-1234';
    const file = writeConfig(`keys:\n  passphrase: "${secret}\n`);
    const message = startupError({ AEGIS_CONFIG: file }).message;
    assert.match(message, /is not valid YAML/);
    assert.ok(!message.includes(secret), message);
  });

  it('missing file names the file', () => {
    const file = path.join(root, 'nowhere', 'aegis.yaml');
    assert.equal(startupError({ AEGIS_CONFIG: file }).message, `Configuration file ${file} does not exist. Check --config or AEGIS_CONFIG.`);
  });

  it('folder as file is rejected', () => {
    assert.match(startupError({ AEGIS_CONFIG: root }).message, new RegExp(`Configuration file ${root} is a folder`));
  });

  it('top-level list is rejected', () => {
    const file = writeConfig('- server\n- storage\n');
    assert.equal(startupError({ AEGIS_CONFIG: file }).message, `Configuration file ${file} must be a mapping of sections such as "server:" and "storage:", got a list.`);
  });
});
