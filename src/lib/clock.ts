/** The source of the current time. Every component reads time from one clock, so tests can move it. */
export interface Clock {
  now(): Date;
}

export const systemClock: Clock = {
  now: () => new Date(),
};

/** A clock that stands still until a test moves it. */
export class ManualClock implements Clock {
  #millis: number;

  constructor(start: Date | string = '2026-01-01T00:00:00.000Z') {
    this.#millis = new Date(start).getTime();
  }

  now(): Date {
    return new Date(this.#millis);
  }

  set(instant: Date | string): void {
    this.#millis = new Date(instant).getTime();
  }

  advanceMs(ms: number): void {
    this.#millis += ms;
  }

  advanceHours(hours: number): void {
    this.advanceMs(hours * 3_600_000);
  }
}

/** Formats an instant as ISO-8601 UTC with milliseconds and a trailing `Z`, the only form AEGIS stores. */
export function isoUtc(instant: Date): string {
  return instant.toISOString();
}

export function addHours(instant: Date, hours: number): Date {
  return new Date(instant.getTime() + hours * 3_600_000);
}
