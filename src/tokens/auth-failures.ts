import type { Clock } from '../lib/clock.js';

/**
 * Counts failed authentications per client address in a fixed window. Past the limit the address gets
 * 429 until its window ends. Counts live in this process's memory.
 * NOTE: with several AEGIS processes behind a load balancer each counts on its own, so an address may
 * fail up to limit × processes times per window.
 */
export class AuthFailureLimiter {
  readonly #limit: number;
  readonly #windowMs: number;
  readonly #clock: Clock;
  readonly #windows = new Map<string, { startedAt: number; failures: number }>();

  constructor(options: { limit: number; windowSeconds: number; clock: Clock }) {
    this.#limit = options.limit;
    this.#windowMs = options.windowSeconds * 1000;
    this.#clock = options.clock;
  }

  /** Returns the seconds until the address may try again, or 0 when it is not blocked. */
  blockedFor(address: string): number {
    const window = this.#current(address);
    if (!window || window.failures < this.#limit) return 0;
    return Math.ceil((window.startedAt + this.#windowMs - this.#clock.now().getTime()) / 1000);
  }

  recordFailure(address: string): void {
    const now = this.#clock.now().getTime();
    const window = this.#current(address);
    if (window) window.failures += 1;
    else this.#windows.set(address, { startedAt: now, failures: 1 });
    if (this.#windows.size > 10_000) this.#dropExpired(now);
  }

  #current(address: string): { startedAt: number; failures: number } | undefined {
    const window = this.#windows.get(address);
    if (window && this.#clock.now().getTime() - window.startedAt >= this.#windowMs) {
      this.#windows.delete(address);
      return undefined;
    }
    return window;
  }

  #dropExpired(now: number): void {
    for (const [address, window] of this.#windows) {
      if (now - window.startedAt >= this.#windowMs) this.#windows.delete(address);
    }
  }
}
