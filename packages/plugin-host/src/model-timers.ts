/**
 * Periodic work a model owns (`ModelContext.every`): a chain of unref'd
 * timeouts, so a device never keeps the process alive, each timer stopped at
 * the latest when the device closes. A model that polls memory a client
 * writes through a mapping (doorbells, as SPDK's vfio-user NVMe target polls
 * them) runs its poll here. Work that throws is stopped and reported, never
 * thrown into the event loop (that would end a server).
 */
import { ModelError, quote } from './errors.js';

/** The longest delay Node's timers take (2^31 - 1 ms); longer ones would fire at once. */
const MAX_DELAY_MS = 0x7fff_ffff;

/** What periodic work returns: the delay before its next run, or nothing to keep the current one. */
export type PeriodicWork = () => number | undefined;

export interface ModelTimer {
  /** The delay before the next run, in ms. */
  readonly intervalMs: number;
  readonly stopped: boolean;
  /** Stops the timer (idempotent). */
  stop(): void;
}

function checkDelay(ms: unknown, what: string): number {
  if (typeof ms !== 'number' || !Number.isFinite(ms) || ms <= 0 || ms > MAX_DELAY_MS) {
    throw new ModelError(
      'ERR_MODEL_TIMER',
      `${what}: ${quote(ms)} is not a delay in ms (a number > 0 and <= ${MAX_DELAY_MS})`,
    );
  }
  return ms;
}

class Periodic implements ModelTimer {
  intervalMs: number;
  #timer: NodeJS.Timeout | null = null;
  #stopped = false;
  readonly #work: PeriodicWork;
  readonly #failed: (err: unknown) => void;
  readonly #done: (t: Periodic) => void;

  constructor(
    intervalMs: number,
    work: PeriodicWork,
    failed: (err: unknown) => void,
    done: (t: Periodic) => void,
  ) {
    this.intervalMs = intervalMs;
    this.#work = work;
    this.#failed = failed;
    this.#done = done;
    this.#schedule();
  }

  get stopped(): boolean {
    return this.#stopped;
  }

  stop(): void {
    if (this.#stopped) return;
    this.#stopped = true;
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = null;
    this.#done(this);
  }

  #schedule(): void {
    this.#timer = setTimeout(() => this.#run(), this.intervalMs);
    this.#timer.unref();
  }

  #run(): void {
    this.#timer = null;
    if (this.#stopped) return;
    try {
      const next = this.#work();
      if (next !== undefined) this.intervalMs = checkDelay(next, 'the delay periodic work returned');
    } catch (err) {
      this.stop();
      this.#failed(err);
      return;
    }
    if (!this.#stopped) this.#schedule();
  }
}

/** The timers of one device. */
export class ModelTimers {
  readonly #live = new Set<Periodic>();
  readonly #failed: (err: unknown) => void;
  #closed = false;

  /** `failed` hears of work that threw (its timer is stopped by then). */
  constructor(failed: (err: unknown) => void) {
    this.#failed = failed;
  }

  get count(): number {
    return this.#live.size;
  }

  every(intervalMs: number, work: PeriodicWork): ModelTimer {
    if (this.#closed) throw new ModelError('ERR_MODEL_TIMER', 'every: the device is closed');
    checkDelay(intervalMs, 'every');
    if (typeof work !== 'function')
      throw new ModelError('ERR_MODEL_TIMER', `every: work must be a function, not ${quote(work)}`);
    const t = new Periodic(intervalMs, work, this.#failed, (done) => this.#live.delete(done));
    this.#live.add(t);
    return t;
  }

  /** Stops every timer; later `every` calls are refused. */
  close(): void {
    this.#closed = true;
    for (const t of [...this.#live]) t.stop();
  }
}
