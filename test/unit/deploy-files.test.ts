import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import net, { type AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import YAML from 'yaml';
import { loadConfig } from '../../src/config/config.js';
import { runCli } from '../helpers/cli.js';
import { call, destroyTestVault, openTestVault, type TestVault } from '../helpers/test-vault.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const deploy = path.join(root, 'deploy');
const read = (file: string) => fs.readFileSync(path.join(deploy, file), 'utf8');

/** Reads every file under src/config, where loadConfig reads its variables, into one text. */
function configSource(): string {
  const folder = path.join(root, 'src/config');
  return fs
    .readdirSync(folder)
    .filter((name) => name.endsWith('.ts'))
    .map((name) => fs.readFileSync(path.join(folder, name), 'utf8'))
    .join('\n');
}

/** `KEY=VALUE` pairs of the unit's `Environment=` lines. */
function unitEnvironment(unit: string): Record<string, string> {
  const pairs = [...unit.matchAll(/^Environment=(\w+)=(.*)$/gm)].map((match) => [match[1]!, match[2]!.trim()]);
  return Object.fromEntries(pairs);
}

function unitSetting(unit: string, name: string): string {
  const match = new RegExp(`^${name}=(.*)$`, 'm').exec(unit);
  assert.ok(match, `aegis.service has no ${name}=`);
  return match[1]!.trim();
}

/** Variables of the Containerfile's ENV instructions, joined across backslash-continued lines. */
function containerEnvironment(text: string): Record<string, string> {
  const joined = text.replace(/\\\n\s*/g, ' ');
  const env: Record<string, string> = {};
  for (const line of joined.split('\n')) {
    if (!line.startsWith('ENV ')) continue;
    for (const match of line.slice(4).matchAll(/(\w+)=(\S+)/g)) env[match[1]!] = match[2]!;
  }
  return env;
}

function jsonArrayInstruction(text: string, instruction: string): string[] {
  const match = new RegExp(`^${instruction} (\\[.*\\])$`, 'm').exec(text);
  assert.ok(match, `Containerfile has no ${instruction} in JSON form`);
  return JSON.parse(match[1]!) as string[];
}

/** Returns the arguments after `bin/aegis.js` without the program option `--config FILE`. */
function aegisArguments(command: string[]): string[] {
  const entry = command.findIndex((word) => word.endsWith('bin/aegis.js'));
  const args = entry === -1 ? command : command.slice(entry + 1);
  const config = args.indexOf('--config');
  return config === -1 ? args : [...args.slice(0, config), ...args.slice(config + 2)];
}

interface ComposeService {
  environment?: Record<string, string>;
  command?: string[];
  stop_grace_period?: string;
  secrets?: Array<string | { source: string; target?: string }>;
  networks?: Record<string, { ipv4_address?: string } | null>;
}

function composeFile(): {
  services: Record<string, ComposeService>;
  networks?: Record<string, { ipam?: { config?: Array<{ subnet?: string; ip_range?: string }> } }>;
} {
  return YAML.parse(read('compose.yaml'), { merge: true });
}

/** Replaces Compose's `${NAME}` and `${NAME:?message}` references with `example`, as Compose would with a value set. */
function interpolated(environment: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(environment).map(([name, value]) => [name, value.replace(/\$\{\w+(?::?[-?][^}]*)?\}/g, 'example')]));
}

/** Tells whether the IPv4 `address` lies in the CIDR `range`. */
function inRange(address: string, range: string): boolean {
  const [network, prefix] = range.split('/');
  const list = new net.BlockList();
  list.addSubnet(network!, Number(prefix), 'ipv4');
  return list.check(address, 'ipv4');
}

/** Reads the lines of haproxy.cfg, each trimmed, without comments and blank lines. */
function haproxyDirectives(): string[] {
  return read('haproxy.cfg')
    .split('\n')
    .map((line) => line.replace(/#.*/, '').trim())
    .filter((line) => line !== '');
}

const unit = read('aegis.service');
const containerfile = read('Containerfile');

describe('deploy files', () => {
  let cliCommands: string[];

  before(async () => {
    const help = await runCli(['--help'], {});
    assert.equal(help.code, 0, help.stderr);
    const commandsSection = help.stdout.split(/^Commands:$/m)[1] ?? '';
    cliCommands = [...commandsSection.matchAll(/^ {2}(\w[\w-]*)/gm)].map((match) => match[1]!);
    assert.ok(cliCommands.includes('serve'), help.stdout);
  });

  it('sets only variables loadConfig reads', () => {
    const source = configSource();
    const sets = {
      'aegis.service': Object.keys(unitEnvironment(unit)),
      Containerfile: Object.keys(containerEnvironment(containerfile)),
      'compose.yaml': Object.values(composeFile().services).flatMap((service) => Object.keys(service.environment ?? {})),
    };
    for (const [file, names] of Object.entries(sets)) {
      const aegisNames = names.filter((name) => name.startsWith('AEGIS_') || name === 'DATABASE_URL');
      assert.ok(aegisNames.length > 0, `${file} sets no AEGIS variable`);
      for (const name of aegisNames) assert.ok(source.includes(`'${name}'`) || source.includes(`env.${name}`), `${file} sets ${name}, which src/config does not read`);
    }
  });

  it('starts real CLI commands', () => {
    const execStart = unitSetting(unit, 'ExecStart').split(/\s+/);
    const unitArgs = aegisArguments(execStart);
    assert.deepEqual(unitArgs, ['serve']);
    assert.ok(execStart.includes('--config'), 'ExecStart names the YAML configuration with --config');

    const entrypoint = jsonArrayInstruction(containerfile, 'ENTRYPOINT');
    assert.ok(entrypoint.at(-1)!.endsWith('bin/aegis.js'), `ENTRYPOINT ${entrypoint.join(' ')}`);
    const containerCommands = [jsonArrayInstruction(containerfile, 'CMD'), ...Object.values(composeFile().services).flatMap((service) => (service.command ? [service.command] : []))];
    for (const command of [unitArgs, ...containerCommands]) {
      assert.ok(cliCommands.includes(command[0]!), `${command[0]} is not an aegis command (aegis --help lists ${cliCommands.join(', ')})`);
    }
  });

  it('stops later than the shutdown timeout', () => {
    const shutdownSeconds = loadConfig(unitEnvironment(unit), '/').shutdownTimeoutSeconds;
    assert.ok(Number(unitSetting(unit, 'TimeoutStopSec')) > shutdownSeconds, `TimeoutStopSec must exceed ${shutdownSeconds} s`);
    assert.equal(unitSetting(unit, 'KillSignal'), 'SIGTERM');
    assert.match(containerfile, /^STOPSIGNAL SIGTERM$/m);

    for (const [name, service] of Object.entries(composeFile().services)) {
      if (!service.environment?.AEGIS_SHUTDOWN_TIMEOUT_SECONDS) continue;
      const grace = Number(/^(\d+)s$/.exec(service.stop_grace_period ?? '')?.[1]);
      assert.ok(grace > Number(service.environment.AEGIS_SHUTDOWN_TIMEOUT_SECONDS), `${name}: stop_grace_period must exceed AEGIS_SHUTDOWN_TIMEOUT_SECONDS`);
    }
  });

  it('hardens the systemd unit', () => {
    for (const [name, value] of [
      ['NoNewPrivileges', 'yes'],
      ['ProtectSystem', 'strict'],
      ['PrivateTmp', 'yes'],
      ['Restart', 'on-failure'],
      ['User', 'aegis'],
    ]) {
      assert.equal(unitSetting(unit, name!), value, name);
    }
    const dataDir = unitEnvironment(unit).AEGIS_DATA_DIR;
    assert.ok(dataDir, 'the unit sets AEGIS_DATA_DIR');
    assert.ok(unitSetting(unit, 'ReadWritePaths').split(/\s+/).includes(dataDir), 'ReadWritePaths includes the data folder');
    assert.ok(!unitSetting(unit, 'ReadWritePaths').includes('/etc/aegis'), 'the key folder stays read-only');
  });

  it('passes systemd-analyze verify', (t) => {
    const probe = spawnSync('systemd-analyze', ['--version'], { encoding: 'utf8' });
    if (probe.error) {
      t.skip('systemd-analyze is not on PATH');
      return;
    }
    const result = spawnSync('systemd-analyze', ['verify', path.join(deploy, 'aegis.service')], { encoding: 'utf8' });
    assert.equal(result.status, 0, result.stderr);
    assert.equal(result.stderr.trim(), '');
  });

  it('forwards client addresses', () => {
    const directives = haproxyDirectives();
    assert.ok(directives.includes('mode http'), 'HAProxy can add X-Forwarded-For only in mode http');
    assert.ok(!directives.includes('mode tcp'), 'haproxy.cfg still has mode tcp');
    assert.ok(directives.includes('option forwardfor'), 'haproxy.cfg has no option forwardfor');
    assert.ok(directives.includes('http-request del-header X-Forwarded-For'), "haproxy.cfg passes the client's own X-Forwarded-For on");
    const servers = directives.filter((line) => line.startsWith('server '));
    assert.ok(servers.length >= 2, 'haproxy.cfg has fewer than two servers');
    assert.match(directives.find((line) => line.startsWith('default-server ')) ?? '', /\bssl\b/, 'HAProxy sends requests to AEGIS without TLS');
  });

  it('trusts only the balancer', () => {
    const compose = composeFile();
    const balancer = compose.services.haproxy?.networks?.default?.ipv4_address;
    assert.ok(balancer, 'the haproxy service has no fixed ipv4_address on the default network');
    const [pool] = compose.networks?.default?.ipam?.config ?? [];
    assert.ok(pool?.subnet, 'the default network sets no subnet');
    assert.ok(pool.ip_range, 'the default network sets no ip_range');
    assert.ok(inRange(balancer, pool.subnet), `${balancer} is outside the subnet ${pool.subnet}`);
    assert.ok(!inRange(balancer, pool.ip_range), `${balancer} is inside ip_range ${pool.ip_range}, so another container may take it`);

    const servers = Object.entries(compose.services).filter(([, service]) => service.command?.[0] === 'serve');
    assert.ok(servers.length >= 2, 'compose.yaml has fewer than two serve services');
    for (const [name, service] of servers) {
      assert.deepEqual(loadConfig(interpolated(service.environment ?? {}), '/').trustedProxies, [balancer], `${name}: AEGIS_TRUSTED_PROXIES`);
    }
  });

  it('gives HAProxy the TLS files', () => {
    const bind = haproxyDirectives().find((line) => line.startsWith('bind '));
    const certificate = /\bssl crt (\S+)/.exec(bind ?? '')?.[1];
    assert.ok(certificate, `the bind line has no "ssl crt FILE": ${bind}`);
    assert.ok(certificate.startsWith('/run/secrets/'), `the certificate ${certificate} is not a compose secret`);
    const targets = (composeFile().services.haproxy?.secrets ?? []).map((secret) => (typeof secret === 'string' ? secret : (secret.target ?? secret.source)));
    assert.ok(targets.includes(path.basename(certificate)), `the haproxy service mounts no secret at ${certificate}`);
    // HAProxy 2.2 and later load the key from the certificate's path with ".key" appended.
    assert.ok(targets.includes(`${path.basename(certificate)}.key`), `the haproxy service mounts no secret at ${certificate}.key`);
  });

  it('passes haproxy -c', (t) => {
    const probe = spawnSync('haproxy', ['-v'], { encoding: 'utf8' });
    if (probe.error) {
      t.skip('haproxy is not on PATH');
      return;
    }
    const folder = fs.mkdtempSync(path.join(os.tmpdir(), 'aegis-haproxy-'));
    try {
      const certificate = path.join(folder, 'haproxy_tls.pem');
      const generated = spawnSync('openssl', [
        'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1',
        '-subj', '/CN=aegis', '-keyout', `${certificate}.key`, '-out', certificate,
      ], { encoding: 'utf8' });
      if (generated.error) {
        t.skip('openssl is not on PATH');
        return;
      }
      assert.equal(generated.status, 0, generated.stderr);
      // The compose service names do not resolve here, so the copy points the servers at loopback.
      const config = read('haproxy.cfg').replaceAll('/run/secrets/', `${folder}/`).replace(/\baegis-\d+:/g, '127.0.0.1:');
      fs.writeFileSync(path.join(folder, 'haproxy.cfg'), config);
      const result = spawnSync('haproxy', ['-c', '-f', path.join(folder, 'haproxy.cfg')], { encoding: 'utf8' });
      assert.equal(result.status, 0, `${result.stdout}${result.stderr}`);
      assert.doesNotMatch(`${result.stdout}${result.stderr}`, /WARNING|ALERT/);
    } finally {
      fs.rmSync(folder, { recursive: true, force: true });
    }
  });

  it('builds a non-root image', () => {
    assert.match(containerfile, /^FROM node:20-bookworm-slim AS build$/m);
    assert.match(containerfile, /^RUN npm ci\b/m);
    assert.match(containerfile, /npm run build/);
    assert.match(containerfile, /^USER aegis$/m);
    assert.match(containerfile, /^VOLUME \["\/var\/lib\/aegis"\]$/m);
    assert.equal(containerEnvironment(containerfile).AEGIS_DATA_DIR, '/var/lib/aegis');
    const healthcheck = /^HEALTHCHECK .* CMD (\[.*\])$/m.exec(containerfile);
    assert.ok(healthcheck, 'Containerfile has a HEALTHCHECK');
    const script = (JSON.parse(healthcheck[1]!) as string[]).find((word) => word.endsWith('.mjs'))!;
    assert.ok(fs.existsSync(path.join(deploy, path.basename(script))), `${script} is not in deploy/`);
    assert.match(containerfile, new RegExp(`COPY --from=build /build/deploy/${path.basename(script)} `));
  });
});

describe('health check path', () => {
  let vault: TestVault;
  before(async () => {
    vault = await openTestVault('sqlite');
  });
  after(async () => {
    await destroyTestVault(vault);
  });

  it('is a route answering 200', async () => {
    const paths = [/uri (\S+)/.exec(read('haproxy.cfg'))?.[1], /path: '([^']+)'/.exec(read('healthcheck.mjs'))?.[1]];
    for (const route of paths) {
      assert.equal(route, '/health');
      const response = await call(vault.app, 'GET', route!);
      assert.equal(response.status, 200, response.body);
    }
  });
});

describe('healthcheck.mjs', () => {
  let server: http.Server;
  let status = 200;
  let port: number;

  before(async () => {
    server = http.createServer((request, response) => {
      response.statusCode = request.url === '/health' ? status : 404;
      response.end('{}');
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as AddressInfo).port;
  });
  after(() => new Promise<void>((resolve) => server.close(() => resolve())));

  function runHealthcheck(): Promise<number | null> {
    return new Promise((resolve, reject) => {
      const child = spawn(process.execPath, [path.join(deploy, 'healthcheck.mjs')], { env: { PATH: process.env.PATH ?? '', AEGIS_PORT: String(port) }, stdio: 'ignore' });
      child.on('error', reject);
      child.on('exit', (code) => resolve(code));
    });
  }

  it('exits 0 on 200 only', async () => {
    status = 200;
    assert.equal(await runHealthcheck(), 0);
    status = 503;
    assert.equal(await runHealthcheck(), 1);
  });
});
