import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { KeyedQueue } from '../../src/lib/keyed-queue.js';

/** Returns a promise and the function that resolves it. */
function gate(): { promise: Promise<void>; open: () => void } {
  let open!: () => void;
  const promise = new Promise<void>((resolve) => {
    open = resolve;
  });
  return { promise, open };
}

describe('KeyedQueue', () => {
  it('runs one key in order', async () => {
    const queue = new KeyedQueue();
    const first = gate();
    const events: string[] = [];
    const firstTask = queue.run('k', async () => {
      events.push('a start');
      await first.promise;
      events.push('a end');
    });
    const secondTask = queue.run('k', async () => {
      events.push('b start');
    });
    await Promise.resolve();
    assert.deepEqual(events, ['a start']);
    first.open();
    await Promise.all([firstTask, secondTask]);
    assert.deepEqual(events, ['a start', 'a end', 'b start']);
  });

  it('runs other keys side by side', async () => {
    const queue = new KeyedQueue();
    const first = gate();
    const blocked = queue.run('one', () => first.promise);
    const other = await queue.run('two', async () => 'two ran');
    assert.equal(other, 'two ran');
    first.open();
    await blocked;
  });

  it('continues after a failure', async () => {
    const queue = new KeyedQueue();
    const failed = queue.run('k', async () => {
      throw new Error('task failed');
    });
    const next = queue.run('k', async () => 'next ran');
    await assert.rejects(failed, /task failed/);
    assert.equal(await next, 'next ran');
  });

  it('drops idle keys', async () => {
    const queue = new KeyedQueue();
    const done = queue.run('k', async () => undefined);
    assert.equal(queue.size, 1);
    await done;
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(queue.size, 0);
  });
});
