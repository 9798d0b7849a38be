/** The quirks a device probes, in order: the built-ins, then any a user registers. */
import { builtinQuirkProbes } from './builtin.js';
import type { QuirkProbe } from './types.js';

export class QuirkRegistry {
  readonly #probes: QuirkProbe[];

  constructor(probes: readonly QuirkProbe[] = builtinQuirkProbes) {
    this.#probes = [...probes];
  }

  /** Adds a probe after the existing ones. Names must be unique. */
  register(probe: QuirkProbe): this {
    if (this.#probes.some((p) => p.name === probe.name))
      throw new Error(`a quirk named "${probe.name}" is already registered`);
    this.#probes.push(probe);
    return this;
  }

  get probes(): readonly QuirkProbe[] {
    return this.#probes;
  }
}
