import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { after, describe, it } from 'node:test';
import { findLease } from '../../src/leases/leases.repository.js';
import { ManualClock } from '../../src/lib/clock.js';
import { claimJobRun, insertJobRecord, listJobRecords } from '../../src/scheduler/jobs.repository.js';
import { Scheduler, SCHEDULER_LEASE, type SchedulerJobs } from '../../src/scheduler/scheduler.js';
import { testDialects } from '../helpers/databases.js';
import { destroyTestVault, openTestVault, type TestVault } from '../helpers/test-vault.js';

const defaultSchedules = {
  healthChecks: '0 * * * *',
  rotations: '30 * * * *',
  expiryChecks: '*/5 * * * *',
  dailyReport: '0 8 * * *',
  retention: '15 3 * * *',
};

/** Job functions that record the clock's time of each run, by job. */
function recordingJobs(clock: ManualClock, keys: Array<keyof SchedulerJobs>, runs: Record<string, string[]>): SchedulerJobs {
  const jobs: SchedulerJobs = {};
  for (const key of keys) {
    runs[key] = [];
    jobs[key] = async () => {
      runs[key]!.push(clock.now().toISOString());
    };
  }
  return jobs;
}

function schedulerFor(test: TestVault, jobs: SchedulerJobs, settings: { reportTimezone?: string; schedules?: Partial<typeof defaultSchedules>; tickMs?: number } = {}): Scheduler {
  return new Scheduler({
    db: test.vault.db,
    clock: test.clock,
    log: test.vault.log,
    jobs,
    settings: {
      schedules: { ...defaultSchedules, ...settings.schedules },
      reportTimezone: settings.reportTimezone ?? 'UTC',
      alertDeliverySeconds: 5,
      leaseTtlMs: 30_000,
      owner: `test-${crypto.randomBytes(4).toString('hex')}`,
      ...(settings.tickMs !== undefined ? { tickMs: settings.tickMs } : {}),
    },
  });
}

/** Ticks every `stepMs` from the clock's time up to and including `until`. */
async function tickUntil(clock: ManualClock, schedulers: Scheduler[], until: string, stepMs: number): Promise<void> {
  while (clock.now().getTime() <= new Date(until).getTime()) {
    for (const scheduler of schedulers) await scheduler.tick(clock.now());
    clock.advanceMs(stepMs);
  }
}

const opened: TestVault[] = [];

async function openVault(dialect: 'sqlite' | 'postgres', clock: ManualClock, reuse?: TestVault): Promise<TestVault> {
  const test = await openTestVault(dialect, {
    clock,
    ...(reuse ? { reuse: { dir: reuse.dir, ...(reuse.env.AEGIS_DATABASE_SCHEMA ? { schema: reuse.env.AEGIS_DATABASE_SCHEMA } : {}) } } : {}),
  });
  opened.push(test);
  return test;
}

after(async () => {
  // Later vaults share the folder and schema of earlier ones, so they close first and the first one cleans up.
  for (const test of opened.reverse()) await test.close().catch(() => {});
  for (const test of opened) await destroyTestVault(test);
});

for (const dialect of await testDialects()) {
  describe(`scheduler on ${dialect}`, () => {
    it('runs each job once per period', async () => {
      const clock = new ManualClock('2026-06-01T10:59:00.000Z');
      const test = await openVault(dialect, clock);
      const runs: Record<string, string[]> = {};
      const scheduler = schedulerFor(test, recordingJobs(clock, ['healthChecks', 'rotations', 'expiryChecks', 'alertDelivery', 'retention'], runs));

      // Each minute is ticked twice, so a second tick at the same time must start nothing.
      while (clock.now().toISOString() <= '2026-06-01T13:00:00.000Z') {
        await scheduler.tick(clock.now());
        await scheduler.tick(clock.now());
        clock.advanceMs(60_000);
      }

      assert.deepEqual(runs.healthChecks, ['2026-06-01T11:00:00.000Z', '2026-06-01T12:00:00.000Z', '2026-06-01T13:00:00.000Z']);
      assert.deepEqual(runs.rotations, ['2026-06-01T11:30:00.000Z', '2026-06-01T12:30:00.000Z']);
      assert.equal(runs.expiryChecks!.length, 25);
      assert.equal(runs.expiryChecks![0], '2026-06-01T11:00:00.000Z');
      assert.ok(runs.expiryChecks!.every((at) => new Date(at).getUTCMinutes() % 5 === 0), runs.expiryChecks!.join(' '));
      // Ticks a minute apart: alert delivery (every 5 s) runs at each tick after the first.
      assert.equal(runs.alertDelivery!.length, 121);
      assert.deepEqual(runs.retention, []);

      const records = await listJobRecords(test.vault.db.kysely);
      assert.equal(records.get('health_checks')?.lastStatus, 'succeeded');
      assert.equal(records.get('health_checks')?.lastRunAt, '2026-06-01T13:00:00.000Z');
      assert.equal(records.get('retention')?.lastRunAt, null);
      assert.equal(records.get('daily_report'), undefined);
    });

    it('makes up a missed run once', async () => {
      const clock = new ManualClock('2026-06-01T10:59:00.000Z');
      const test = await openVault(dialect, clock);
      const runs: Record<string, string[]> = {};
      const scheduler = schedulerFor(test, recordingJobs(clock, ['healthChecks', 'expiryChecks'], runs));
      await scheduler.tick(clock.now());

      // No tick from 10:59 to 13:07: the 11:00, 12:00 and 13:00 runs were missed; only one is made up.
      clock.set('2026-06-01T13:07:00.000Z');
      await scheduler.tick(clock.now());
      await scheduler.tick(clock.now());

      assert.deepEqual(runs.healthChecks, ['2026-06-01T13:07:00.000Z']);
      assert.deepEqual(runs.expiryChecks, ['2026-06-01T13:07:00.000Z']);
      const records = await listJobRecords(test.vault.db.kysely);
      assert.equal(records.get('health_checks')?.lastScheduledAt, '2026-06-01T13:00:00.000Z');
      assert.equal(records.get('expiry_checks')?.lastScheduledAt, '2026-06-01T13:05:00.000Z');
    });

    it('failing job does not stop others', async () => {
      const clock = new ManualClock('2026-06-01T10:59:30.000Z');
      const test = await openVault(dialect, clock);
      const runs: Record<string, string[]> = {};
      const jobs = recordingJobs(clock, ['expiryChecks', 'alertDelivery'], runs);
      let healthAttempts = 0;
      jobs.healthChecks = async () => {
        healthAttempts += 1;
        throw new Error('provider unreachable');
      };
      const scheduler = schedulerFor(test, jobs);

      await scheduler.tick(clock.now());
      clock.set('2026-06-01T11:00:00.000Z');
      await scheduler.tick(clock.now());

      assert.equal(healthAttempts, 1);
      assert.deepEqual(runs.expiryChecks, ['2026-06-01T11:00:00.000Z']);
      assert.deepEqual(runs.alertDelivery, ['2026-06-01T11:00:00.000Z']);
      const records = await listJobRecords(test.vault.db.kysely);
      assert.equal(records.get('health_checks')?.lastStatus, 'failed');
      assert.equal(records.get('health_checks')?.lastError, 'Error: provider unreachable');
      assert.equal(records.get('expiry_checks')?.lastStatus, 'succeeded');
      assert.match(test.logs.text(), /"job":"health_checks".*"scheduler job failed"/);

      // The failed run is not retried within its hour, and the next hour runs again.
      clock.set('2026-06-01T11:00:10.000Z');
      await scheduler.tick(clock.now());
      assert.equal(healthAttempts, 1);
      clock.set('2026-06-01T12:00:00.000Z');
      await scheduler.tick(clock.now());
      assert.equal(healthAttempts, 2);
    });

    it('daily report follows daylight saving', async () => {
      const clock = new ManualClock('2026-03-27T00:00:00.000Z');
      const test = await openVault(dialect, clock);
      const runs: Record<string, string[]> = {};
      const scheduler = schedulerFor(test, recordingJobs(clock, ['dailyReport'], runs), { reportTimezone: 'Europe/Berlin' });

      // Berlin moves from UTC+1 to UTC+2 on 2026-03-29 and back on 2026-10-25.
      await tickUntil(clock, [scheduler], '2026-03-31T00:00:00.000Z', 15 * 60_000);
      assert.deepEqual(runs.dailyReport, ['2026-03-27T07:00:00.000Z', '2026-03-28T07:00:00.000Z', '2026-03-29T06:00:00.000Z', '2026-03-30T06:00:00.000Z']);

      // The first tick in October makes up the missed run of 2026-10-23 once.
      runs.dailyReport!.length = 0;
      clock.set('2026-10-24T00:00:00.000Z');
      await scheduler.tick(clock.now());
      assert.deepEqual(runs.dailyReport, ['2026-10-24T00:00:00.000Z']);
      runs.dailyReport!.length = 0;
      await tickUntil(clock, [scheduler], '2026-10-27T00:00:00.000Z', 15 * 60_000);
      assert.deepEqual(runs.dailyReport, ['2026-10-24T06:00:00.000Z', '2026-10-25T07:00:00.000Z', '2026-10-26T07:00:00.000Z']);
    });

    it('runs a repeated local time once', async () => {
      const clock = new ManualClock('2026-10-24T12:00:00.000Z');
      const test = await openVault(dialect, clock);
      const runs: Record<string, string[]> = {};
      const scheduler = schedulerFor(test, recordingJobs(clock, ['dailyReport'], runs), {
        reportTimezone: 'Europe/Berlin',
        schedules: { dailyReport: '30 2 * * *' },
      });

      // 02:30 occurs twice in Berlin on 2026-10-25 (00:30 and 01:30 UTC); it runs once.
      await tickUntil(clock, [scheduler], '2026-10-26T12:00:00.000Z', 10 * 60_000);
      assert.deepEqual(runs.dailyReport, ['2026-10-25T01:30:00.000Z', '2026-10-26T01:30:00.000Z']);
    });

    it('restart does not run again', async () => {
      const clock = new ManualClock('2026-06-01T10:59:30.000Z');
      const first = await openVault(dialect, clock);
      const runs: Record<string, string[]> = {};
      const before = schedulerFor(first, recordingJobs(clock, ['healthChecks'], runs));
      await before.tick(clock.now());
      clock.set('2026-06-01T11:00:00.000Z');
      await before.tick(clock.now());
      assert.deepEqual(runs.healthChecks, ['2026-06-01T11:00:00.000Z']);
      await before.stop();
      await first.close();

      const reopened = await openVault(dialect, clock, first);
      const afterRuns: Record<string, string[]> = {};
      const restarted = schedulerFor(reopened, recordingJobs(clock, ['healthChecks'], afterRuns));
      clock.set('2026-06-01T11:00:20.000Z');
      await restarted.tick(clock.now());
      assert.equal(restarted.isLeader, true);
      assert.deepEqual(afterRuns.healthChecks, []);

      clock.set('2026-06-01T12:00:00.000Z');
      await restarted.tick(clock.now());
      assert.deepEqual(afterRuns.healthChecks, ['2026-06-01T12:00:00.000Z']);
    });

    it('two schedulers share one database', async () => {
      const clock = new ManualClock('2026-06-01T10:59:30.000Z');
      const firstVault = await openVault(dialect, clock);
      const secondVault = await openVault(dialect, clock, firstVault);
      const runs: Record<string, string[]> = {};
      const keys: Array<keyof SchedulerJobs> = ['healthChecks', 'rotations', 'expiryChecks'];
      const jobsA = recordingJobs(clock, keys, runs);
      const runsB: Record<string, string[]> = {};
      const jobsB = recordingJobs(clock, keys, runsB);
      const a = schedulerFor(firstVault, jobsA);
      const b = schedulerFor(secondVault, jobsB);

      await a.tick(clock.now());
      await b.tick(clock.now());
      assert.equal(a.isLeader, true);
      assert.equal(b.isLeader, false);
      assert.equal((await findLease(firstVault.vault.db.kysely, SCHEDULER_LEASE))?.owner, a.owner);

      // Both tick at the same moments for 45 minutes, every 10 s as a running scheduler renews its lease:
      // only the leader runs jobs. With longer steps the 30 s lease would expire between ticks, and
      // the follower could take it over in the race of the next concurrent tick.
      clock.set('2026-06-01T11:00:00.000Z');
      while (clock.now().toISOString() <= '2026-06-01T11:45:00.000Z') {
        await Promise.all([a.tick(clock.now()), b.tick(clock.now())]);
        clock.advanceMs(10_000);
      }
      assert.deepEqual(runs.healthChecks, ['2026-06-01T11:00:00.000Z']);
      assert.deepEqual(runs.rotations, ['2026-06-01T11:30:00.000Z']);
      assert.equal(runs.expiryChecks!.length, 10);
      assert.deepEqual(runsB, { healthChecks: [], rotations: [], expiryChecks: [] });

      // The leader ticks once more at 11:50 and then stops renewing (its process hangs or died).
      // Within the TTL the other does not take over.
      clock.set('2026-06-01T11:50:00.000Z');
      await a.tick(clock.now());
      assert.equal(runs.expiryChecks!.length, 11);
      clock.set('2026-06-01T11:50:10.000Z');
      await b.tick(clock.now());
      assert.equal(b.isLeader, false);
      clock.set('2026-06-01T11:50:31.000Z');
      await b.tick(clock.now());
      assert.equal(b.isLeader, true);
      // The 11:50 expiry check already ran on the old leader.
      assert.deepEqual(runsB.expiryChecks, []);

      clock.set('2026-06-01T12:00:00.000Z');
      await b.tick(clock.now());
      assert.deepEqual(runsB.healthChecks, ['2026-06-01T12:00:00.000Z']);
      assert.deepEqual(runsB.expiryChecks, ['2026-06-01T12:00:00.000Z']);

      // The old leader comes back: its renewal fails, so it runs nothing.
      clock.set('2026-06-01T12:00:05.000Z');
      await a.tick(clock.now());
      assert.equal(a.isLeader, false);
      assert.deepEqual(runs.healthChecks, ['2026-06-01T11:00:00.000Z']);
      assert.match(firstVault.logs.text(), /lost the scheduler lease/);
    });

    it('claims a scheduled time once', async () => {
      const clock = new ManualClock('2026-06-01T10:59:30.000Z');
      const test = await openVault(dialect, clock);
      const db = test.vault.db.kysely;
      await insertJobRecord(db, 'health_checks', clock.now());
      const slot = new Date('2026-06-01T11:00:00.000Z');
      const claims = await Promise.all([claimJobRun(db, 'health_checks', slot, slot), claimJobRun(db, 'health_checks', slot, slot)]);
      assert.deepEqual(claims.sort(), [false, true]);
      assert.equal(await claimJobRun(db, 'health_checks', new Date('2026-06-01T10:00:00.000Z'), slot), false);
    });

    it('stop ends the job and releases', async () => {
      const clock = new ManualClock('2026-06-01T10:59:30.000Z');
      const test = await openVault(dialect, clock);
      let release!: () => void;
      const gate = new Promise<void>((resolve) => (release = resolve));
      let started!: () => void;
      const jobStarted = new Promise<void>((resolve) => (started = resolve));
      let finished = false;
      const scheduler = schedulerFor(
        test,
        {
          healthChecks: async () => {
            started();
            await gate;
            finished = true;
          },
        },
        { tickMs: 10 },
      );

      // The scheduler's timer does not keep a process alive, so the test keeps the event loop busy.
      const keepAlive = setInterval(() => {}, 1000);
      after(() => clearInterval(keepAlive));
      scheduler.start();
      // The first tick only records the job; the timer's next tick at 11:00 starts it.
      while ((await listJobRecords(test.vault.db.kysely)).size === 0) await new Promise((resolve) => setImmediate(resolve));
      clock.set('2026-06-01T11:00:00.000Z');
      await jobStarted;

      let stopped = false;
      const stopping = scheduler.stop().then(() => (stopped = true));
      await new Promise((resolve) => setImmediate(resolve));
      assert.equal(stopped, false);
      assert.equal((await findLease(test.vault.db.kysely, SCHEDULER_LEASE))?.owner, scheduler.owner);

      release();
      await stopping;
      assert.equal(finished, true);
      assert.equal(await findLease(test.vault.db.kysely, SCHEDULER_LEASE), undefined);
      assert.equal((await listJobRecords(test.vault.db.kysely)).get('health_checks')?.lastStatus, 'succeeded');
    });
  });
}
