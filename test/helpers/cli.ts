import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const cliEntry = path.join(root, 'src/cli/bin.ts');
/** tsx resolved from this project, so children can start in any folder. */
export const tsxLoader = import.meta.resolve('tsx');

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs `aegis ARGS` from the TypeScript source in a child process, with the given environment on top
 * of a clean one (PATH and HOME only), optional standard input, and a time limit.
 */
export async function runCli(args: string[], env: Record<string, string>, options: { input?: string; cwd?: string; timeoutMs?: number } = {}): Promise<CliResult> {
  const running = startCli(args, env, options.input, options.cwd);
  const timer = setTimeout(() => running.child.kill('SIGKILL'), options.timeoutMs ?? 60_000);
  try {
    const code = await running.exited;
    return { code, stdout: running.stdout(), stderr: running.stderr() };
  } finally {
    clearTimeout(timer);
  }
}

/** A running `aegis` child process: its output so far and its exit code once it has ended. */
export interface RunningCli {
  child: ChildProcessWithoutNullStreams;
  stdout: () => string;
  stderr: () => string;
  /** Tells whether the process has exited, so a wait for its progress can stop. */
  ended: () => boolean;
  exited: Promise<number | null>;
}

/** Starts `aegis ARGS` like runCli but returns at once, so a test can signal the process while it works. */
export function startCli(args: string[], env: Record<string, string>, input = '', cwd = root): RunningCli {
  const child = spawn(process.execPath, ['--import', tsxLoader, cliEntry, ...args], {
    cwd,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...env },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString('utf8')));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
  const exited = new Promise<number | null>((resolve, reject) => {
    child.on('error', reject);
    // 'close' comes after the output streams have ended, so stdout() and stderr() are complete by then.
    child.on('close', (code) => resolve(code));
  });
  child.stdin.end(input);
  return { child, stdout: () => stdout, stderr: () => stderr, ended: () => child.exitCode !== null || child.signalCode !== null, exited };
}

/** Resolves once `check` returns true, testing it on every turn of the event loop. */
export async function waitFor(check: () => boolean): Promise<void> {
  while (!check()) await new Promise((resolve) => setImmediate(resolve));
}
