import net from 'node:net';
import type { Clock } from '../lib/clock.js';

/**
 * Counts failed authentications per client address in a fixed window. Past the limit the address gets
 * 429 until its window ends. Counts live in this process's memory. IPv6 addresses count per /64
 * network, because a host is usually assigned a whole /64 and could otherwise try from a new address
 * each time. An IPv4-mapped IPv6 address (`::ffff:203.0.113.7`) counts as its IPv4 address.
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
    const window = this.#current(limitedNetwork(address));
    if (!window || window.failures < this.#limit) return 0;
    return Math.ceil((window.startedAt + this.#windowMs - this.#clock.now().getTime()) / 1000);
  }

  recordFailure(address: string): void {
    const now = this.#clock.now().getTime();
    const network = limitedNetwork(address);
    const window = this.#current(network);
    if (window) window.failures += 1;
    else this.#windows.set(network, { startedAt: now, failures: 1 });
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

/** Returns the key an address is counted under: an IPv4 address itself, or the /64 network of an IPv6 address. */
export function limitedNetwork(address: string): string {
  const text = address.split('%')[0]!.toLowerCase();
  if (!net.isIPv6(text)) return address;
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (mapped) return mapped[1]!;
  return `${ipv6Groups(text).slice(0, 4).join(':')}::/64`;
}

/** Expands an IPv6 address to its eight groups in hex without leading zeros. A dotted IPv4 tail becomes two groups. */
function ipv6Groups(text: string): string[] {
  const dotted = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(text);
  let hex = text;
  if (dotted) {
    const [a, b, c, d] = dotted.slice(1).map(Number) as [number, number, number, number];
    hex = `${text.slice(0, dotted.index)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head, tail] = hex.split('::');
  const headGroups = head === '' ? [] : head!.split(':');
  const tailGroups = tail === undefined || tail === '' ? [] : tail.split(':');
  const zeros = tail === undefined ? [] : Array<string>(8 - headGroups.length - tailGroups.length).fill('0');
  return [...headGroups, ...zeros, ...tailGroups].map((group) => parseInt(group, 16).toString(16));
}
