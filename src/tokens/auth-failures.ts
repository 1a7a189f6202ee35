import net from 'node:net';
import type { Clock } from '../lib/clock.js';

/**
 * Addresses tracked by default. With 100,000 IPv6 networks on Node.js 20, each took about 175 bytes of
 * heap, or about 320 once blocked with 429s counted, so at most about 32 MB when full.
 */
const defaultMaxAddresses = 100_000;

/**
 * The 429 responses of one blocked window that have no audit entry of their own. The limiter passes them
 * to `onBlockEnded` once, when the window ends, is dropped early, or the process stops.
 */
export interface BlockedRequests {
  /** The limiter's key: the IPv4 address, or the IPv6 /64 network. */
  network: string;
  /** The client address of the window's first 429. */
  address: string;
  count: number;
  firstAt: Date;
  lastAt: Date;
  /** When the block ended: the window's end, or the earlier time at which the window was dropped. */
  blockedUntil: Date;
}

/** The outcome of `countRejection` for one 429 response. */
export interface Rejection {
  /** True for the window's first 429, which gets an audit entry of its own. */
  first: boolean;
  /** The end of the window, when the address may try again. */
  blockedUntil: Date;
}

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
 *
 * It also counts the 429s of each blocked window (`countRejection`), in the same bounded windows, so
 * that a flood writes one audit entry for the window's first 429 and one for the rest (`onBlockEnded`).
 */
export class AuthFailureLimiter {
  readonly #limit: number;
  readonly #windowMs: number;
  readonly #clock: Clock;
  readonly #maxAddresses: number;
  readonly #onBlockEnded: (blocked: BlockedRequests) => void;
  readonly #windows = new Map<string, FailureWindow>();
  /**
   * The windows in the order they started, from `#head` on, so the oldest can be dropped without
   * scanning. Taking the first key of the Map instead slowed down as entries were deleted from its
   * front (V8 skips the deleted entries on each new iteration). It may still hold windows that
   * `#current` has already removed from `#windows`.
   */
  #started: FailureWindow[] = [];
  #head = 0;

  constructor(options: {
    limit: number;
    windowSeconds: number;
    clock: Clock;
    maxAddresses?: number;
    /** Receives the counted 429s of a window. The limiter calls it synchronously, so it must not throw. */
    onBlockEnded?: (blocked: BlockedRequests) => void;
  }) {
    this.#limit = options.limit;
    this.#windowMs = options.windowSeconds * 1000;
    this.#clock = options.clock;
    this.#maxAddresses = options.maxAddresses ?? defaultMaxAddresses;
    this.#onBlockEnded = options.onBlockEnded ?? (() => {});
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

  /**
   * Counts a 429 response to a blocked address; call it after `blockedFor` returned more than 0. The
   * window's first one returns `first: true`, and its caller writes the audit entry. Later ones are
   * only counted, and passed to `onBlockEnded` when the window ends.
   */
  countRejection(address: string): Rejection {
    const now = this.#clock.now().getTime();
    const window = this.#current(limitedNetwork(address));
    const blockedUntil = new Date((window?.startedAt ?? now) + this.#windowMs);
    if (!window) return { first: true, blockedUntil };
    if (!window.rejections) {
      window.rejections = { address, count: 0, firstAt: now, lastAt: now };
      return { first: true, blockedUntil };
    }
    const rejections = window.rejections;
    if (rejections.count === 0) rejections.firstAt = now;
    rejections.count += 1;
    rejections.lastAt = now;
    return { first: false, blockedUntil };
  }

  /** Passes on the counted 429s of the windows that have ended. */
  flushEndedWindows(): void {
    this.#dropEnded(this.#clock.now().getTime());
  }

  /** Passes on the counted 429s of every window, ended or not, before a graceful stop. */
  flushAllWindows(): void {
    const now = this.#clock.now().getTime();
    for (const window of this.#windows.values()) this.#endBlock(window, now);
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
    while (this.#started.length - this.#head > this.#maxAddresses) this.#dropOldest(now);
  }

  #current(network: string): FailureWindow | undefined {
    const window = this.#windows.get(network);
    const now = this.#clock.now().getTime();
    if (window && now - window.startedAt >= this.#windowMs) {
      this.#windows.delete(network);
      this.#endBlock(window, now);
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
    while (this.#head < this.#started.length && now - this.#started[this.#head]!.startedAt >= this.#windowMs) this.#dropOldest(now);
  }

  #dropOldest(now: number): void {
    const oldest = this.#started[this.#head]!;
    this.#head += 1;
    // A later window of the same network may have replaced this one in the map.
    if (this.#windows.get(oldest.network) === oldest) {
      this.#windows.delete(oldest.network);
      this.#endBlock(oldest, now);
    }
    // Copying the open part once half the array is dropped keeps the cost per window constant.
    if (this.#head >= 1024 && this.#head * 2 >= this.#started.length) {
      this.#started = this.#started.slice(this.#head);
      this.#head = 0;
    }
  }

  /** Passes on a window's counted 429s and resets the count, so a later call passes on only new ones. */
  #endBlock(window: FailureWindow, now: number): void {
    const rejections = window.rejections;
    if (!rejections || rejections.count === 0) return;
    const blocked: BlockedRequests = {
      network: window.network,
      address: rejections.address,
      count: rejections.count,
      firstAt: new Date(rejections.firstAt),
      lastAt: new Date(rejections.lastAt),
      blockedUntil: new Date(Math.min(now, window.startedAt + this.#windowMs)),
    };
    rejections.count = 0;
    this.#onBlockEnded(blocked);
  }
}

interface FailureWindow {
  network: string;
  startedAt: number;
  failures: number;
  /** The window's 429s, or undefined until the address is blocked and gets its first one. */
  rejections?: CountedRejections;
}

interface CountedRejections {
  /** The client address of the window's first 429. */
  address: string;
  /** 429s after the window's first one that no audit entry covers yet. */
  count: number;
  firstAt: number;
  lastAt: number;
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
