import { Cron } from 'croner';

/** When a scheduler job runs: a cron expression in a time zone, or a fixed interval. */
export interface JobSchedule {
  /** The schedule as GET /scheduler shows it, e.g. `0 * * * *` or `every 5 s`. */
  readonly expression: string;
  /** IANA time zone of a cron expression; null for an interval. */
  readonly timezone: string | null;
  /** Returns the latest scheduled time after `after` and at or before `now`, or null when there is none. */
  latestDue(after: Date, now: Date): Date | null;
  /** Returns the first scheduled time after `after`, or null when the expression never matches again. */
  nextAfter(after: Date): Date | null;
}

/**
 * Search windows for `latestDue`, smallest first. A window about twice the schedule's period finds the
 * latest time after a few steps, so a per-second expression never walks through a day of matches.
 */
const SEARCH_WINDOWS_MS = [2_000, 120_000, 7_200_000, 172_800_000, 64 * 86_400_000, 800 * 86_400_000];

/**
 * A cron expression read by croner 9 in an IANA time zone: five fields, or six with seconds first.
 * Croner treats daylight-saving changes as cron does: a time that does not exist runs once in the hour
 * after, and a time that occurs twice runs once.
 */
export class CronSchedule implements JobSchedule {
  readonly expression: string;
  readonly timezone: string;
  readonly #cron: Cron;

  constructor(expression: string, timezone: string) {
    this.expression = expression;
    this.timezone = timezone;
    // legacyMode: a day-of-month and a day-of-week field match when either matches, as in standard cron.
    this.#cron = new Cron(expression, { timezone, paused: true, legacyMode: true });
  }

  latestDue(after: Date, now: Date): Date | null {
    for (const windowMs of SEARCH_WINDOWS_MS) {
      const start = Math.max(after.getTime(), now.getTime() - windowMs);
      let latest = this.#cron.nextRun(new Date(start));
      if (latest !== null && latest.getTime() <= now.getTime()) {
        for (let next = this.#cron.nextRun(latest); next !== null && next.getTime() <= now.getTime(); next = this.#cron.nextRun(next)) {
          latest = next;
        }
        return latest;
      }
      // The window already reaches back to `after`, so a larger one finds nothing either.
      if (start === after.getTime()) return null;
    }
    // NOTE: a time more than 800 days before `now` is not searched for; such a job runs at its next time.
    return null;
  }

  nextAfter(after: Date): Date | null {
    return this.#cron.nextRun(after);
  }
}

/** A run every `seconds`, at multiples of the interval since the Unix epoch, so every process agrees on the times. */
export class IntervalSchedule implements JobSchedule {
  readonly expression: string;
  readonly timezone = null;
  readonly #intervalMs: number;

  constructor(seconds: number) {
    this.expression = `every ${seconds} s`;
    this.#intervalMs = seconds * 1000;
  }

  latestDue(after: Date, now: Date): Date | null {
    const latest = Math.floor(now.getTime() / this.#intervalMs) * this.#intervalMs;
    return latest > after.getTime() ? new Date(latest) : null;
  }

  nextAfter(after: Date): Date | null {
    return new Date((Math.floor(after.getTime() / this.#intervalMs) + 1) * this.#intervalMs);
  }
}

/**
 * Checks a scheduler cron expression (five fields, or six with seconds first) and its time zone.
 * Returns an error message naming `variable`, or null when both are valid.
 */
export function cronScheduleError(variable: string, expression: string, timezone: string): string | null {
  const fields = expression.trim().split(/\s+/).length;
  if (fields !== 5 && fields !== 6) {
    return `${variable} must be a cron expression of five fields (minute hour day-of-month month day-of-week) or six (seconds first), got "${expression}".`;
  }
  try {
    if (new CronSchedule(expression, timezone).nextAfter(new Date('2000-01-01T00:00:00Z')) === null) throw new Error('it never matches');
  } catch (error) {
    return `${variable} is not a valid cron expression ("${expression}"): ${(error as Error).message}.`;
  }
  return null;
}
