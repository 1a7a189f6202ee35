import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ManualClock } from '../../src/lib/clock.js';
import { AuthFailureLimiter, type BlockedRequests } from '../../src/tokens/auth-failures.js';

/** Returns the IPv4 address 10.x.y.z for a number below 2^24. */
function address(index: number): string {
  return `10.${(index >> 16) & 255}.${(index >> 8) & 255}.${index & 255}`;
}

describe('AuthFailureLimiter memory', () => {
  it('forgets ended windows', () => {
    const clock = new ManualClock();
    const limiter = new AuthFailureLimiter({ limit: 3, windowSeconds: 60, clock });
    for (let index = 0; index < 50; index += 1) limiter.recordFailure(address(index));
    assert.equal(limiter.trackedAddresses, 50);

    clock.advanceMs(30_000);
    limiter.recordFailure(address(1000));
    assert.equal(limiter.trackedAddresses, 51);

    clock.advanceMs(30_000);
    limiter.recordFailure(address(1001));
    assert.equal(limiter.trackedAddresses, 2);
  });

  it('keeps at most maxAddresses', () => {
    const clock = new ManualClock();
    const limiter = new AuthFailureLimiter({ limit: 1, windowSeconds: 60, clock, maxAddresses: 100 });
    for (let index = 0; index < 250; index += 1) limiter.recordFailure(address(index));
    assert.equal(limiter.trackedAddresses, 100);
    assert.equal(limiter.blockedFor(address(0)), 0);
    assert.equal(limiter.blockedFor(address(149)), 0);
    assert.equal(limiter.blockedFor(address(150)), 60);
    assert.equal(limiter.blockedFor(address(249)), 60);
  });

  it('counts a network again after its window', () => {
    const clock = new ManualClock();
    const limiter = new AuthFailureLimiter({ limit: 2, windowSeconds: 60, clock, maxAddresses: 10 });
    limiter.recordFailure(address(1));
    clock.advanceMs(60_000);
    // The first window ended, so this failure starts a second one, and the first must not remove it.
    limiter.recordFailure(address(1));
    limiter.recordFailure(address(1));
    assert.equal(limiter.trackedAddresses, 1);
    assert.equal(limiter.blockedFor(address(1)), 60);
  });
});

describe('AuthFailureLimiter rejection counts', () => {
  /** Returns a limiter with limit 1 that collects what it passes to `onBlockEnded`. */
  function countingLimiter(clock: ManualClock, maxAddresses?: number) {
    const ended: BlockedRequests[] = [];
    const limiter = new AuthFailureLimiter({ limit: 1, windowSeconds: 60, clock, ...(maxAddresses ? { maxAddresses } : {}), onBlockEnded: (blocked) => ended.push(blocked) });
    return { limiter, ended };
  }

  it('gives the first 429 its own entry', () => {
    const clock = new ManualClock('2026-06-01T12:00:00.000Z');
    const { limiter, ended } = countingLimiter(clock);
    limiter.recordFailure(address(1));
    assert.deepEqual(limiter.countRejection(address(1)), { first: true, blockedUntil: new Date('2026-06-01T12:01:00.000Z') });
    assert.equal(limiter.countRejection(address(1)).first, false);
    assert.equal(limiter.countRejection(address(1)).first, false);
    assert.deepEqual(ended, []);
  });

  it('passes on a count once', () => {
    const clock = new ManualClock('2026-06-01T12:00:00.000Z');
    const { limiter, ended } = countingLimiter(clock);
    limiter.recordFailure(address(1));
    limiter.countRejection(address(1));
    limiter.countRejection(address(1));
    clock.advanceMs(20_000);
    limiter.countRejection(address(1));

    limiter.flushAllWindows();
    limiter.flushAllWindows();
    clock.advanceMs(60_000);
    limiter.flushEndedWindows();
    assert.deepEqual(ended, [
      {
        network: address(1),
        address: address(1),
        count: 2,
        firstAt: new Date('2026-06-01T12:00:00.000Z'),
        lastAt: new Date('2026-06-01T12:00:20.000Z'),
        blockedUntil: new Date('2026-06-01T12:00:20.000Z'),
      },
    ]);
  });

  it('passes on counts when a window ends', () => {
    const clock = new ManualClock('2026-06-01T12:00:00.000Z');
    const { limiter, ended } = countingLimiter(clock);
    for (const index of [1, 2]) {
      limiter.recordFailure(address(index));
      limiter.countRejection(address(index));
      limiter.countRejection(address(index));
      clock.advanceMs(30_000);
    }
    limiter.flushEndedWindows();
    assert.deepEqual(
      ended.map((blocked) => [blocked.network, blocked.blockedUntil.toISOString()]),
      [[address(1), '2026-06-01T12:01:00.000Z']],
    );
    assert.equal(limiter.trackedAddresses, 1);
  });

  it('passes on the count of a dropped window', () => {
    const clock = new ManualClock('2026-06-01T12:00:00.000Z');
    const { limiter, ended } = countingLimiter(clock, 10);
    limiter.recordFailure(address(0));
    limiter.countRejection(address(0));
    limiter.countRejection(address(0));
    clock.advanceMs(5_000);
    for (let index = 1; index <= 10; index += 1) limiter.recordFailure(address(index));

    assert.equal(limiter.trackedAddresses, 10);
    assert.equal(ended.length, 1);
    assert.equal(ended[0]!.count, 1);
    assert.equal(ended[0]!.blockedUntil.toISOString(), '2026-06-01T12:00:05.000Z', 'the block ended when its window was dropped');
  });

  it('counts IPv6 addresses per /64', () => {
    const clock = new ManualClock('2026-06-01T12:00:00.000Z');
    const { limiter, ended } = countingLimiter(clock);
    limiter.recordFailure('2001:db8:5:5::1');
    assert.equal(limiter.countRejection('2001:db8:5:5::2').first, true);
    assert.equal(limiter.countRejection('2001:db8:5:5::3').first, false);
    limiter.flushAllWindows();
    assert.equal(ended[0]!.network, '2001:db8:5:5::/64');
    assert.equal(ended[0]!.address, '2001:db8:5:5::2');
  });
});
