import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { BlockedRequests } from '../../src/tokens/auth-failures.js';
import { recordBlockedRequests } from '../../src/tokens/rate-limit-audit.js';

const blocked: BlockedRequests = {
  network: '2001:db8:9:9::/64',
  address: '2001:db8:9:9::1',
  count: 41,
  firstAt: new Date('2026-06-01T12:00:01.000Z'),
  lastAt: new Date('2026-06-01T12:00:50.000Z'),
  blockedUntil: new Date('2026-06-01T12:01:00.000Z'),
};

describe('recordBlockedRequests', () => {
  it('logs the count when the append fails', async () => {
    const lines: Array<{ fields: Record<string, unknown>; message: string }> = [];
    let appended!: () => void;
    const attempted = new Promise<void>((resolve) => (appended = resolve));
    const audit = {
      record: () => {
        appended();
        return Promise.reject(new Error('the audit log is unavailable'));
      },
    };
    const log = { error: (fields: Record<string, unknown>, message: string) => lines.push({ fields, message }) };

    recordBlockedRequests(audit, log)(blocked);
    await attempted;
    // The rejection handler runs on a later microtask than the call that rejected.
    await new Promise((resolve) => setImmediate(resolve));

    assert.equal(lines.length, 1);
    assert.equal(lines[0]!.message, 'failed to write the audit entry of rate-limited requests');
    assert.deepEqual(lines[0]!.fields, {
      err: { type: 'Error', message: 'the audit log is unavailable' },
      ip: '2001:db8:9:9::1',
      rejected_requests: 41,
      first_rejected_at: '2026-06-01T12:00:01.000Z',
      last_rejected_at: '2026-06-01T12:00:50.000Z',
      blocked_until: '2026-06-01T12:01:00.000Z',
      network: '2001:db8:9:9::/64',
    });
  });
});
