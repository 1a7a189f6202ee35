import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { tsxLoader } from './cli.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const adminTokenPattern = /aegis_[0-9a-f]{12}_[A-Za-z0-9_-]{43}/;

/** A running `aegis serve` started from source by a test. */
export interface ServerProcess {
  child: ChildProcessWithoutNullStreams;
  port: number;
  /** `http://127.0.0.1:<port>`, or https when the server was given a certificate. */
  url: string;
  /** The admin token printed on the first start, when the server printed one. */
  adminToken: string | undefined;
  /** Everything the process wrote to stdout and stderr so far. */
  output: () => string;
  /** Resolves with the exit code and signal once the process has ended. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

export interface StartServerOptions {
  /** Environment variables on top of PATH, HOME and AEGIS_PORT=0. */
  env?: Record<string, string>;
  /** Working directory; defaults to the parent of AEGIS_DATA_DIR, else the current directory. */
  cwd?: string;
  /** Arguments after `aegis`; defaults to ['serve']. */
  args?: string[];
  /** Also wait for the admin token, which a first start prints after the "AEGIS is serving" line. */
  expectToken?: boolean;
  /** How long to wait for the server to serve; default 30 s. */
  timeoutMs?: number;
}

/**
 * Starts `aegis serve` from source on a free port (unless AEGIS_PORT sets one) and resolves once
 * it logs "AEGIS is serving". A process that exits or stays silent past the timeout rejects with its output.
 */
export function startServer(options: StartServerOptions = {}): Promise<ServerProcess> {
  const env = options.env ?? {};
  const cwd = options.cwd ?? (env.AEGIS_DATA_DIR ? path.dirname(env.AEGIS_DATA_DIR) : process.cwd());
  const timeoutMs = options.timeoutMs ?? 30_000;
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', tsxLoader, path.join(root, 'src/cli/bin.ts'), ...(options.args ?? ['serve'])], {
      cwd,
      env: { PATH: process.env.PATH ?? '', HOME: os.homedir(), AEGIS_PORT: '0', ...env },
    });
    let output = '';
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolveExit) =>
      child.on('exit', (code, signal) => resolveExit({ code, signal })),
    );
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`server did not start within ${timeoutMs} ms:\n${output}`));
    }, timeoutMs);
    let serving = false;
    const onData = (chunk: Buffer) => {
      output += chunk.toString('utf8');
      // Once serving, the output is only collected: searching a long log on every chunk costs quadratic time.
      if (serving) return;
      const line = output.split('\n').find((text) => text.includes('"AEGIS is serving"'));
      const token = adminTokenPattern.exec(output)?.[0];
      if (line && (!options.expectToken || token)) {
        serving = true;
        clearTimeout(timer);
        const logged = JSON.parse(line) as { port: number; tls?: boolean };
        const scheme = logged.tls ? 'https' : 'http';
        resolve({ child, port: logged.port, url: `${scheme}://127.0.0.1:${logged.port}`, adminToken: token, output: () => output, exited });
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    void exited.then(({ code, signal }) => {
      clearTimeout(timer);
      reject(new Error(`server exited (${signal ?? `code ${code}`}) before serving:\n${output}`));
    });
  });
}

/** Waits for the process to end, killing it after `timeoutMs`; resolves with the ending signal, or null after a normal exit. */
export async function waitForExit(server: ServerProcess, timeoutMs: number): Promise<NodeJS.Signals | null> {
  const timer = setTimeout(() => server.child.kill('SIGKILL'), timeoutMs);
  try {
    return (await server.exited).signal;
  } finally {
    clearTimeout(timer);
  }
}

/** Sends `signal` and waits for the process to end, killing it after `timeoutMs`. */
export async function stopServer(server: ServerProcess, signal: NodeJS.Signals = 'SIGTERM', timeoutMs = 15_000) {
  if (server.child.exitCode === null && server.child.signalCode === null) server.child.kill(signal);
  await waitForExit(server, timeoutMs);
  return server.exited;
}

/** A response of a server process: its status, its body as text, and the body parsed when it is JSON (undefined otherwise). */
export interface ServerResponse {
  status: number;
  text: string;
  // Typed loosely, as JSON.parse returns, so tests read the fields they expect.
  json: any;
}

/** Sends a request with the bearer `token`, and `body` as JSON when given, to a server process. */
export async function callServer(server: ServerProcess, token: string, method: string, url: string, body?: unknown): Promise<ServerResponse> {
  const response = await fetch(`${server.url}${url}`, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await response.text();
  let json: unknown;
  try {
    json = text ? JSON.parse(text) : undefined;
  } catch {
    json = undefined;
  }
  return { status: response.status, text, json };
}
