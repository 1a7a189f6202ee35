import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { checkCronSchedule, nextRotationAt } from '../../src/rotation/schedule.js';

type ScheduleFields = Parameters<typeof nextRotationAt>[0];

function scheduled(overrides: Partial<ScheduleFields>): ScheduleFields {
  return {
    rotationEnabled: true,
    rotationStrategy: 'scheduled',
    rotationIntervalHours: 24,
    rotationCron: null,
    rotationTimezone: null,
    expiresAt: null,
    alertThresholdHours: 24,
    lastRotatedAt: null,
    createdAt: '2026-01-01T00:00:00.000Z',
    status: 'active',
    ...overrides,
  };
}

/** Formats the calendar date of an instant in a time zone as YYYY-MM-DD. */
function localDate(instant: string, timeZone: string): string {
  return new Intl.DateTimeFormat('en-CA', { timeZone, year: 'numeric', month: '2-digit', day: '2-digit' }).format(new Date(instant));
}

function localTime(instant: string, timeZone: string): string {
  return new Intl.DateTimeFormat('en-GB', { timeZone, hour: '2-digit', minute: '2-digit', hourCycle: 'h23' }).format(new Date(instant));
}

/** Follows the schedule run after run, as the scheduler does: each run's time becomes the last rotation. */
function runsBetween(timeZone: string, from: string, until: string): string[] {
  const runs: string[] = [];
  let last = from;
  for (;;) {
    const next = nextRotationAt(scheduled({ rotationCron: '30 2 * * *', rotationTimezone: timeZone, lastRotatedAt: last }));
    assert.ok(next, 'a daily cron schedule always has a next run');
    if (next >= until) return runs;
    assert.ok(next > last, `the next run ${next} is not after the last one ${last}`);
    runs.push(next);
    last = next;
  }
}

/** Lists every calendar date from `first` to `last`, inclusive. */
function datesFrom(first: string, last: string): string[] {
  const dates: string[] = [];
  for (let day = new Date(`${first}T00:00:00Z`); day <= new Date(`${last}T00:00:00Z`); day = new Date(day.getTime() + 86_400_000)) {
    dates.push(day.toISOString().slice(0, 10));
  }
  return dates;
}

const daylightSavingChanges = [
  { timeZone: 'Europe/Berlin', change: 'spring forward', from: '2026-03-24T12:00:00Z', until: '2026-04-03T12:00:00Z', days: ['2026-03-25', '2026-04-03'] },
  { timeZone: 'Europe/Berlin', change: 'fall back', from: '2026-10-20T12:00:00Z', until: '2026-10-30T12:00:00Z', days: ['2026-10-21', '2026-10-30'] },
  { timeZone: 'Australia/Sydney', change: 'fall back', from: '2026-04-01T00:00:00Z', until: '2026-04-10T00:00:00Z', days: ['2026-04-02', '2026-04-10'] },
  { timeZone: 'Australia/Sydney', change: 'spring forward', from: '2026-09-30T00:00:00Z', until: '2026-10-09T00:00:00Z', days: ['2026-10-01', '2026-10-09'] },
] as const;

describe('nextRotationAt', () => {
  for (const { timeZone, change, from, until, days } of daylightSavingChanges) {
    it(`cron daily in ${timeZone} ${change}`, () => {
      const runs = runsBetween(timeZone, from, until);
      const runDates = runs.map((run) => localDate(run, timeZone));
      assert.deepEqual(runDates, datesFrom(days[0], days[1]));
      for (const run of runs) {
        // 02:30 does not exist on the spring-forward day, so that run moves to the hour after.
        assert.match(localTime(run, timeZone), /^0[23]:30$/, `run at ${run}`);
      }
    });
  }

  it('runs at 02:30 local time', () => {
    const next = nextRotationAt(scheduled({ rotationCron: '30 2 * * *', rotationTimezone: 'Europe/Berlin', lastRotatedAt: '2026-06-01T12:00:00Z' }));
    assert.equal(next, '2026-06-02T00:30:00.000Z');
    const sydney = nextRotationAt(scheduled({ rotationCron: '30 2 * * *', rotationTimezone: 'Australia/Sydney', lastRotatedAt: '2026-06-01T12:00:00Z' }));
    assert.equal(sydney, '2026-06-01T16:30:00.000Z');
  });

  it('cron without zone uses UTC', () => {
    const next = nextRotationAt(scheduled({ rotationCron: '30 2 * * *', lastRotatedAt: '2026-06-01T12:00:00Z' }));
    assert.equal(next, '2026-06-02T02:30:00.000Z');
  });

  it('interval counts UTC hours', () => {
    const next = nextRotationAt(scheduled({ rotationIntervalHours: 24, rotationTimezone: 'Europe/Berlin', lastRotatedAt: '2026-03-28T12:00:00Z' }));
    assert.equal(next, '2026-03-29T12:00:00.000Z');
    const autumn = nextRotationAt(scheduled({ rotationIntervalHours: 24, rotationTimezone: 'Europe/Berlin', lastRotatedAt: '2026-10-24T12:00:00Z' }));
    assert.equal(autumn, '2026-10-25T12:00:00.000Z');
  });

  it('interval starts at creation', () => {
    const next = nextRotationAt(scheduled({ rotationIntervalHours: 720, createdAt: '2026-01-01T00:00:00.000Z' }));
    assert.equal(next, '2026-01-31T00:00:00.000Z');
  });

  it('on_expiry subtracts the alert threshold', () => {
    const next = nextRotationAt(scheduled({ rotationStrategy: 'on_expiry', expiresAt: '2026-07-01T00:00:00.000Z', alertThresholdHours: 48 }));
    assert.equal(next, '2026-06-29T00:00:00.000Z');
    assert.equal(nextRotationAt(scheduled({ rotationStrategy: 'on_expiry', expiresAt: null })), null);
  });

  it('manual, disabled and retired never run', () => {
    assert.equal(nextRotationAt(scheduled({ rotationStrategy: 'manual' })), null);
    assert.equal(nextRotationAt(scheduled({ rotationEnabled: false })), null);
    assert.equal(nextRotationAt(scheduled({ status: 'retired' })), null);
  });
});

describe('checkCronSchedule', () => {
  it('accepts five fields and a zone', () => {
    assert.doesNotThrow(() => checkCronSchedule('30 2 * * *', 'Australia/Sydney'));
  });

  it('rejects bad cron and zone', () => {
    assert.throws(() => checkCronSchedule('30 2 * *', null), /rotation_cron|five fields/);
    assert.throws(() => checkCronSchedule('61 2 * * *', null), /not a valid cron expression/);
    assert.throws(() => checkCronSchedule('30 2 30 2 *', null), /rotation_cron|valid/);
    assert.throws(() => checkCronSchedule('30 2 * * *', 'Mars/Olympus'), /IANA time zone/);
  });

  it('names the rejected day or month', () => {
    assert.throws(() => checkCronSchedule('0 3 32 * *', null), /Invalid value for day of month: 32$/);
    assert.throws(() => checkCronSchedule('0 3 0 * *', null), /Invalid value for day of month: 0$/);
    assert.throws(() => checkCronSchedule('0 3 1 13 *', null), /Invalid value for month: 13$/);
    assert.throws(() => checkCronSchedule('0 3 1 0 *', null), /Invalid value for month: 0$/);
    assert.throws(() => checkCronSchedule('0 24 * * *', null), /Invalid value for hour: 24$/);
  });

  it('rejects the ? placeholder', () => {
    // croner reads ? as the field's value at the moment it parses the expression, so "0 3 ? * 1"
    // would also match on the day of the month the schedule happened to be read.
    for (const expression of ['0 3 ? * 1', '? ? * * *', '0 0 1 * ?']) {
      assert.throws(() => checkCronSchedule(expression, null), /rotation_cron: .*"\?"/, expression);
    }
  });
});
