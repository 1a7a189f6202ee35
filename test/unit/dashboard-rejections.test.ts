import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { RejectedRequests } from '../../web/src/rejections.js';

describe('dashboard rejected requests', () => {
  it('skips a 403 or 400 on reload', () => {
    const rejected = new RejectedRequests();
    rejected.record('/scheduler', 403);
    rejected.record('/credentials?tag=bad+tag%21', 400);
    assert.equal(rejected.skips('/scheduler', true), true);
    assert.equal(rejected.skips('/credentials?tag=bad+tag%21', true), true);
    assert.equal(rejected.skips('/credentials?tag=web', true), false);
  });

  it('sends it again on a user action', () => {
    const rejected = new RejectedRequests();
    rejected.record('/scheduler', 403);
    assert.equal(rejected.skips('/scheduler', false), false);
  });

  it('retries other failures', () => {
    const rejected = new RejectedRequests();
    for (const status of [404, 429, 500, 503, null]) {
      rejected.record(`/alerts?status=${status}`, status);
      assert.equal(rejected.skips(`/alerts?status=${status}`, true), false, `status ${status}`);
    }
  });

  it('forgets a rejection after a success', () => {
    const rejected = new RejectedRequests();
    rejected.record('/alerts', 403);
    rejected.record('/alerts', null);
    assert.equal(rejected.skips('/alerts', true), false);
  });
});
