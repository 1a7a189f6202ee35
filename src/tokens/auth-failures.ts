import net from 'node:net';
import type { Clock } from '../lib/clock.js';

/** Addresses tracked by default. Each took 162 bytes of heap on Node.js 20 (IPv6 networks), so about 16 MB when full. */
const defaultMaxAddresses = 100_000;

/**
 * Counts failed authentications per client address in a fixed window. Past the limit the address gets
 * 429 until its window ends. Counts live in this process's memory. IPv6 addresses count per /64
 * network, because a host is usually assigned a whole /64 and could otherwise try from a new address
 * each time. An IPv4-mapped IPv6 address (`::ffff:203.0.113.7`) counts as its IPv4 address.
 * NOTE: with several AEGIS processes behind a load balancer each counts on its own, so an address may
 * fail up to limit × processes times per window.
 *
 * At most `maxAddresses` addresses are tracked. Past that, the address whose window started first is
 * forgotten, so a flood from more networks than that within one window resets the oldest counts early.
 */
export class AuthFailureLimiter {
  readonly #limit: number;
  readonly #windowMs: number;
  readonly #clock: Clock;
  readonly #maxAddresses: number;
  readonly #windows = new Map<string, FailureWindow>();
  /**
   * The windows in the order they started, from `#head` on, so the oldest can be dropped without
   * scanning. Taking the first key of the Map instead slowed down as entries were deleted from its
   * front (V8 skips the deleted entries on each new iteration). It may still hold windows that
   * `#current` has already removed from `#windows`.
   */
  #started: FailureWindow[] = [];
  #head = 0;

  constructor(options: { limit: number; windowSeconds: number; clock: Clock; maxAddresses?: number }) {
    this.#limit = options.limit;
    this.#windowMs = options.windowSeconds * 1000;
    this.#clock = options.clock;
    this.#maxAddresses = options.maxAddresses ?? defaultMaxAddresses;
  }

  /** Number of addresses with a window kept in memory. */
  get trackedAddresses(): number {
    return this.#windows.size;
  }

  /** Returns the seconds until the address may try again, or 0 when it is not blocked. */
  blockedFor(address: string): number {
    const window = this.#current(limitedNetwork(address));
    if (!window || window.failures < this.#limit) return 0;
    return Math.ceil((window.startedAt + this.#windowMs - this.#clock.now().getTime()) / 1000);
  }

  recordFailure(address: string): void {
    const now = this.#clock.now().getTime();
    this.#dropEnded(now);
    const network = limitedNetwork(address);
    const window = this.#current(network);
    if (window) {
      window.failures += 1;
      return;
    }
    const started = { network, startedAt: now, failures: 1 };
    this.#windows.set(network, started);
    this.#started.push(started);
    while (this.#started.length - this.#head > this.#maxAddresses) this.#dropOldest();
  }

  #current(network: string): FailureWindow | undefined {
    const window = this.#windows.get(network);
    if (window && this.#clock.now().getTime() - window.startedAt >= this.#windowMs) {
      this.#windows.delete(network);
      return undefined;
    }
    return window;
  }

  /**
   * Drops the windows that have ended, oldest first, and stops at the first one still open, so each
   * call costs only what it removes. Scanning every window on each failure made the cost of a flood
   * from many networks grow with the square of their number.
   */
  #dropEnded(now: number): void {
    while (this.#head < this.#started.length && now - this.#started[this.#head]!.startedAt >= this.#windowMs) this.#dropOldest();
  }

  #dropOldest(): void {
    const oldest = this.#started[this.#head]!;
    this.#head += 1;
    // A later window of the same network may have replaced this one in the map.
    if (this.#windows.get(oldest.network) === oldest) this.#windows.delete(oldest.network);
    // Copying the open part once half the array is dropped keeps the cost per window constant.
    if (this.#head >= 1024 && this.#head * 2 >= this.#started.length) {
      this.#started = this.#started.slice(this.#head);
      this.#head = 0;
    }
  }
}

interface FailureWindow {
  network: string;
  startedAt: number;
  failures: number;
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
