import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CheckBatcher, type FinishedCheck } from '../../src/health/check-recorder.js';

function check(index: number): FinishedCheck {
  return {
    credential: { id: `id-${index}`, name: `unit/${index}` } as FinishedCheck['credential'],
    version: 1,
    outcome: { status: 'healthy', responseTimeMs: 1, details: {}, error: null },
    trigger: 'check_all',
  };
}

describe('check batcher', () => {
  it('writes every check in batches', async () => {
    const batches: string[][] = [];
    const batcher = new CheckBatcher(async (checks) => {
      batches.push(checks.map((entry) => entry.credential.id));
    }, { maxBatch: 4, lingerMs: 0 });
    for (let index = 0; index < 10; index += 1) await batcher.submit(check(index));
    await batcher.flush();
    assert.deepEqual(batches.flat(), Array.from({ length: 10 }, (_, index) => `id-${index}`));
    assert.ok(batches.every((batch) => batch.length <= 4), JSON.stringify(batches));
    assert.ok(batches.some((batch) => batch.length > 1), JSON.stringify(batches));
  });

  it('failed write rejects later calls', async () => {
    const batcher = new CheckBatcher(async () => {
      throw new Error('database is locked');
    }, { maxBatch: 2, lingerMs: 0 });
    await batcher.submit(check(1));
    await assert.rejects(batcher.flush(), /database is locked/);
    await assert.rejects(batcher.submit(check(2)), /database is locked/);
  });
});
