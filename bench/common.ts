import os from 'node:os';
import autocannon from 'autocannon';

/** Shared parts of the benchmarks B1 to B3, B6 and B8. */

/** Short mode (AEGIS_BENCH_SHORT=1, set by `npm run bench -- --short`): shorter runs and fewer rows, for checking that a benchmark works. */
export const shortMode = process.env.AEGIS_BENCH_SHORT === '1';

export const machine = { cpus: os.cpus().length, cpu: os.cpus()[0]?.model, memory_gib: Math.round(os.totalmem() / 2 ** 30), node: process.version };

/** Prints one result as a JSON line on stdout, the form scripts/run-bench.mjs reads. */
export function emit(result: { id: string; workload: string; bar: string; figure: string; ratio_to_baseline: number | string; holds: boolean; baseline_note: string } & Record<string, unknown>): void {
  process.stdout.write(`${JSON.stringify({ ...result, machine })}\n`);
}

export function log(message: string): void {
  process.stderr.write(`${message}\n`);
}

/** Returns the value below which `fraction` of `values` lie (nearest rank). */
export function percentile(values: number[], fraction: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil(fraction * sorted.length) - 1)]!;
}

/** Sends a JSON request with a bearer token and returns the status and parsed body. */
export async function callJson(url: string, token: string, method = 'GET', body?: unknown): Promise<{ status: number; json: any; text: string }> {
  const response = await fetch(url, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: response.status, json, text };
}

/** The figures of one autocannon run. */
export interface LoadResult {
  requestsPerSecond: number;
  /** Responses received, of any status. */
  responses: number;
  /** Latency percentiles in milliseconds. */
  p50: number;
  p99: number;
  /** Responses other than 200, socket errors and timeouts; a valid run has none. */
  non200: number;
  errors: number;
  timeouts: number;
}

/** Runs autocannon in this process against `url` with `connections` keep-alive connections for `seconds`. */
export async function loadTest(url: string, headers: Record<string, string>, connections: number, seconds: number): Promise<LoadResult> {
  const result = await autocannon({ url, headers, connections, duration: seconds });
  const ok = result.statusCodeStats?.['200']?.count ?? 0;
  const responses = Object.values(result.statusCodeStats ?? {}).reduce((sum, stat) => sum + (stat.count ?? 0), 0);
  return {
    requestsPerSecond: responses / result.duration,
    responses,
    p50: result.latency.p50,
    p99: result.latency.p99,
    non200: responses - ok,
    errors: result.errors,
    timeouts: result.timeouts,
  };
}
