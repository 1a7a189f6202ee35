import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

/**
 * Child processes for the benchmarks that measure a listening server: `aegis serve`, the bare Fastify
 * baseline (bench/bare-server.ts) and B1's floor (bench/floor-server.ts). All run as plain
 * JavaScript, as `npm run build` ships it, because loading the TypeScript sources through tsx added
 * 0.5 to 2 s to every start on a 2-core machine (B8.1).
 */
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/** A server running in a child process. */
export interface ChildServer {
  child: ChildProcess;
  pid: number;
  port: number;
  /** `http://127.0.0.1:<port>`. */
  url: string;
  /** Milliseconds from spawn until the server logged that it listens. */
  readyMs: number;
  /** Everything the process printed so far (its log file, when it writes one). */
  output: () => string;
}

export interface StartOptions {
  /** Environment variables on top of PATH and HOME. */
  env?: Record<string, string>;
  /** Sends stdout and stderr to this file instead of a pipe, as a production service's log does. */
  logFile?: string;
  /** Node options placed before the script, e.g. ['--cpu-prof', '--cpu-prof-dir=/tmp/x']. */
  nodeOptions?: string[];
  timeoutMs?: number;
}

/**
 * Transpiles src/, bench/bare-server.ts and bench/floor-server.ts with esbuild into a temporary folder (no type check) and
 * returns that folder. A node_modules link beside the output lets the packages resolve.
 */
export async function buildServerCode(): Promise<string> {
  const outDir = fs.mkdtempSync(path.join(os.tmpdir(), 'aegis-bench-build-'));
  const sources = (fs.readdirSync(path.join(root, 'src'), { recursive: true }) as string[])
    .filter((file) => file.endsWith('.ts') && !file.endsWith('.d.ts'))
    .map((file) => path.join(root, 'src', file));
  await build({
    entryPoints: [...sources, path.join(root, 'bench/bare-server.ts'), path.join(root, 'bench/floor-server.ts')],
    outbase: root,
    outdir: outDir,
    format: 'esm',
    platform: 'node',
    target: 'node20',
    logLevel: 'warning',
  });
  fs.symlinkSync(path.join(root, 'node_modules'), path.join(outDir, 'node_modules'), 'dir');
  return outDir;
}

/** Starts `aegis serve` from the build and resolves once it logs "AEGIS is serving". */
export function startAegis(buildDir: string, options: StartOptions = {}): Promise<ChildServer> {
  return startChild(path.join(buildDir, 'src/cli/bin.js'), ['serve'], '"AEGIS is serving"', { ...options, env: { AEGIS_PORT: '0', ...options.env } });
}

/** Starts `aegis serve` from the TypeScript sources through tsx, as the end-to-end tests do. */
export function startAegisFromSource(options: StartOptions = {}): Promise<ChildServer> {
  const nodeOptions = [...(options.nodeOptions ?? []), '--import', 'tsx'];
  return startChild(path.join(root, 'src/cli/bin.ts'), ['serve'], '"AEGIS is serving"', { ...options, nodeOptions, env: { AEGIS_PORT: '0', ...options.env } });
}

/** Starts the bare Fastify baseline, which returns the JSON in `bodyFile` for GET `route`. */
export function startBare(buildDir: string, route: string, bodyFile: string, options: StartOptions = {}): Promise<ChildServer> {
  return startChild(path.join(buildDir, 'bench/bare-server.js'), [], '"bare server listening"', { ...options, env: { BARE_ROUTE: route, BARE_BODY_FILE: bodyFile, ...options.env } });
}

/** Starts B1's floor (bench/floor-server.ts); `env` gives its FLOOR_* settings. */
export function startFloor(buildDir: string, options: StartOptions = {}): Promise<ChildServer> {
  return startChild(path.join(buildDir, 'bench/floor-server.js'), [], '"floor server listening"', options);
}

function startChild(script: string, args: string[], readyText: string, options: StartOptions): Promise<ChildServer> {
  const timeoutMs = options.timeoutMs ?? 60_000;
  const logFd = options.logFile === undefined ? undefined : fs.openSync(options.logFile, 'a');
  const started = performance.now();
  const child = spawn(process.execPath, [...(options.nodeOptions ?? []), script, ...args], {
    cwd: root,
    env: { PATH: process.env.PATH ?? '', HOME: os.homedir(), ...options.env },
    stdio: logFd === undefined ? ['ignore', 'pipe', 'pipe'] : ['ignore', logFd, logFd],
  });
  if (logFd !== undefined) fs.closeSync(logFd);

  let piped = '';
  child.stdout?.on('data', (chunk: Buffer) => (piped += chunk.toString('utf8')));
  child.stderr?.on('data', (chunk: Buffer) => (piped += chunk.toString('utf8')));
  const output = () => (options.logFile === undefined ? piped : fs.readFileSync(options.logFile, 'utf8'));

  return new Promise((resolve, reject) => {
    let settled = false;
    const finish = (error: Error | undefined, server?: ChildServer) => {
      if (settled) return;
      settled = true;
      clearInterval(poll);
      clearTimeout(timer);
      child.stdout?.off('data', check);
      if (error) {
        child.kill('SIGKILL');
        reject(error);
      } else resolve(server!);
    };
    const check = () => {
      const line = output().split('\n').find((text) => text.includes(readyText));
      if (!line) return;
      const port = (JSON.parse(line) as { port: number }).port;
      finish(undefined, { child, pid: child.pid!, port, url: `http://127.0.0.1:${port}`, readyMs: performance.now() - started, output });
    };
    // A pipe reports each chunk as it comes; a log file is polled.
    child.stdout?.on('data', check);
    const poll = setInterval(() => options.logFile !== undefined && check(), 10);
    const timer = setTimeout(() => finish(new Error(`${path.basename(script)} did not start within ${timeoutMs} ms:\n${output()}`)), timeoutMs);
    child.once('exit', (code, signal) => finish(new Error(`${path.basename(script)} exited (${signal ?? `code ${code}`}) before it listened:\n${output()}`)));
  });
}

/** Sends SIGTERM and waits for the process to end, killing it after `timeoutMs`. */
export async function stopServer(server: ChildServer, timeoutMs = 15_000): Promise<void> {
  if (server.child.exitCode !== null || server.child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => server.child.once('exit', () => resolve()));
  const timer = setTimeout(() => server.child.kill('SIGKILL'), timeoutMs);
  server.child.kill('SIGTERM');
  await exited;
  clearTimeout(timer);
}

/** Resident set size of a process in bytes, read from /proc (Linux only). */
export function residentBytes(pid: number): number {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const kib = /^VmRSS:\s+(\d+) kB$/m.exec(status)?.[1];
  if (kib === undefined) throw new Error(`no VmRSS line in /proc/${pid}/status`);
  return Number(kib) * 1024;
}

/** Reads the admin token that a first start prints once on stdout. */
export function adminTokenOf(server: ChildServer): string {
  const token = /aegis_[0-9a-f]{12}_[A-Za-z0-9_-]{43}/.exec(server.output())?.[0];
  if (!token) throw new Error(`the server printed no admin token:\n${server.output()}`);
  return token;
}
