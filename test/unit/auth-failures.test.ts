import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ManualClock } from '../../src/lib/clock.js';
import { AuthFailureLimiter } from '../../src/tokens/auth-failures.js';

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
