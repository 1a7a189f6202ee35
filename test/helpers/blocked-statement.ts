import assert from 'node:assert/strict';
import type pg from 'pg';

/**
 * Resolves with the process id of a statement that `blocker` blocks, once that statement has been
 * running for `runningForMs`, and rejects when `work` settles first. `observer` reads the server's
 * activity outside any transaction, because a transaction reads one snapshot of pg_stat_activity.
 */
export async function waitForBlockedStatement(blocker: pg.Client, observer: pg.Client, work: Promise<unknown>, runningForMs: number): Promise<number> {
  let settled: unknown;
  work.then(
    () => (settled = 'the work finished while it should still wait'),
    (error: unknown) => (settled = error),
  );
  const blockerPid = (await blocker.query<{ pid: number }>('select pg_backend_pid() as pid')).rows[0]!.pid;
  const deadline = performance.now() + 10_000;
  for (;;) {
    if (settled !== undefined) throw settled;
    const waiting = await observer.query<{ pid: number }>(
      `select pid from pg_stat_activity where $1 = any(pg_blocking_pids(pid)) and clock_timestamp() - query_start > make_interval(secs => $2::float8 / 1000)`,
      [blockerPid, runningForMs],
    );
    if (waiting.rows[0]) return waiting.rows[0].pid;
    if (performance.now() > deadline) assert.fail('no statement waited on the blocking session within 10 s');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
