/**
 * A queue per key: tasks with the same key run one after another in the order they were added, tasks
 * with different keys run side by side. A key's entry is removed once its last task has settled.
 */
export class KeyedQueue {
  readonly #tails = new Map<string, Promise<void>>();

  /** The number of keys with a task running or waiting. */
  get size(): number {
    return this.#tails.size;
  }

  /** Runs `task` once every earlier task with `key` has settled, and returns its result. */
  run<T>(key: string, task: () => Promise<T>): Promise<T> {
    const previous = this.#tails.get(key) ?? Promise.resolve();
    const result = previous.then(task);
    // The tail never rejects, so a failed task does not stop the ones queued after it.
    const tail = result.then(
      () => undefined,
      () => undefined,
    );
    this.#tails.set(key, tail);
    void tail.then(() => {
      if (this.#tails.get(key) === tail) this.#tails.delete(key);
    });
    return result;
  }
}
