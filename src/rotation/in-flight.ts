import { UnavailableError } from '../lib/errors.js';

/**
 * The rotations this process is running. A stopping server calls `stopAccepting` so that no new rotation
 * starts (a scheduled run ends after the ones it has started), then waits for `settled`.
 */
export class InFlightRotations {
  readonly #running = new Map<Promise<unknown>, string>();
  #accepting = true;

  /** Whether new rotations may start; false once `stopAccepting` was called. */
  get accepting(): boolean {
    return this.#accepting;
  }

  /** Names of the credentials whose rotation is running, in start order. */
  names(): string[] {
    return [...this.#running.values()];
  }

  /** Rejects the rotation of `name` with 503 when the process is stopping. */
  assertAccepting(name: string): void {
    if (!this.#accepting) {
      throw new UnavailableError(`AEGIS is shutting down, so the rotation of "${name}" was not started. Nothing was changed; retry once the server is back.`);
    }
  }

  /** Counts `rotation` as running until it settles, and returns it. */
  track<T>(name: string, rotation: Promise<T>): Promise<T> {
    const settled = rotation.then(
      () => undefined,
      () => undefined,
    );
    this.#running.set(settled, name);
    void settled.then(() => this.#running.delete(settled));
    return rotation;
  }

  stopAccepting(): void {
    this.#accepting = false;
  }

  /** Resolves once no rotation is running, including rotations that start while it waits. */
  async settled(): Promise<void> {
    while (this.#running.size > 0) {
      await Promise.all([...this.#running.keys()]);
    }
  }
}
