/**
 * Teardown runs every step even when one fails, as QEMU's exit and finalize
 * paths do (they cannot fail part-way), so one broken release never leaks the
 * rest; the errors met are kept and reported together at the end.
 */
import { VfioPciTeardownError } from './errors.js';

export class TeardownSteps {
  readonly #errors: unknown[] = [];

  /** Runs one release step; a throw is recorded, not propagated. */
  run(step: () => void): void {
    try {
      step();
    } catch (err) {
      this.#errors.push(err);
    }
  }

  get errors(): readonly unknown[] {
    return this.#errors;
  }

  /** After the last step: one VfioPciTeardownError carrying every error met, if any. */
  finish(device: string): void {
    if (this.#errors.length > 0) throw new VfioPciTeardownError(device, this.#errors);
  }
}
