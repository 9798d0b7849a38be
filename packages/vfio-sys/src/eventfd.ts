/**
 * An owned eventfd: how interrupts travel in VFIO. The kernel (SET_IRQS), an
 * in-process model and a vfio-user peer all signal one, and its owner reads
 * it. One object owns one fd and releases it once (`close()`, `using`); a
 * backend that must keep its own reference to a caller's eventfd takes a
 * `dup()`, so each side closes only what it owns.
 *
 * The fd is non-blocking, so `consume()` never stalls the event loop; waits
 * go through a libuv poll handle (`koffi.node.poll`), never a blocking read.
 * libuv allows one poll handle per fd (a second one aborts the process inside
 * koffi), so an EventFd keeps at most one and fans each wake-up out to its
 * listeners.
 */
import koffi from 'koffi';
import { SysError, VfioArgumentError, VfioClosedError, VfioTimeoutError } from './errors.js';
import {
  EFD_CLOEXEC,
  EFD_NONBLOCK,
  eventfdConsume,
  eventfdSignal,
  sysClose,
  sysDup,
  sysEventfd,
} from './libc.js';

/** What `koffi.node.poll` returns (its d.ts is wrong about the callback, see notes/koffi.md). */
interface PollHandle {
  close(): void;
  ref(): void;
  unref(): void;
}
type PollCallback = (status: number, events: { readable?: boolean }) => void;
const nodePoll = (
  koffi as unknown as { node: { poll(fd: number, ev: object, cb: PollCallback): PollHandle } }
).node.poll;

/** A watch on an eventfd from the event loop (see `EventFd.watch`). */
export interface EventFdWatch extends Disposable {
  /** Lets the process exit while this watch is the only thing left on the loop. */
  unref(): void;
  /** Stops watching. Idempotent. */
  close(): void;
}

export class EventFd implements Disposable {
  #fd: number;
  /** The one libuv poll handle on this fd, open while someone listens. */
  #poll: PollHandle | null = null;
  /** Who is told of each wake-up: watches, and pending `wait()`s. */
  readonly #listeners = new Set<Listener>();

  private constructor(fd: number) {
    this.#fd = fd;
  }

  /** A new non-blocking, close-on-exec eventfd with counter `initialValue`. */
  static create(initialValue = 0): EventFd {
    return new EventFd(sysEventfd(initialValue, EFD_CLOEXEC | EFD_NONBLOCK));
  }

  /**
   * Takes ownership of an eventfd that arrived from elsewhere (for example
   * over SCM_RIGHTS): the returned object closes it. The fd must be an
   * eventfd opened non-blocking by whoever created it for `consume()` not to block.
   */
  static adopt(fd: number): EventFd {
    if (!Number.isInteger(fd) || fd < 0) throw new VfioArgumentError(`${fd} is not a file descriptor`);
    return new EventFd(fd);
  }

  /** The kernel fd number, for SET_IRQS and fd passing. The object still owns it. */
  get fd(): number {
    if (this.#fd < 0) throw new VfioClosedError('eventfd');
    return this.#fd;
  }

  get closed(): boolean {
    return this.#fd < 0;
  }

  /** A second owner of the same eventfd (a new fd for the same counter). */
  dup(): EventFd {
    return new EventFd(sysDup(this.fd));
  }

  /** Adds 1 to the counter: wakes whoever waits, as an interrupt does. */
  signal(): void {
    eventfdSignal(this.fd);
  }

  /** Reads and resets the counter: how many signals arrived since the last read, 0n if none. */
  consume(): bigint {
    return eventfdConsume(this.fd);
  }

  /**
   * Calls `onSignal(count)` from the event loop each time the eventfd is
   * signalled (the counter is consumed first, so several watches share one
   * count). Closed with the eventfd. A poll failure ends every listener and
   * goes to `onError` (thrown from the event loop if absent).
   */
  watch(onSignal: (count: bigint) => void, onError?: (error: SysError) => void): EventFdWatch {
    const listener: Listener = {
      signal: onSignal,
      fail: (error) => {
        if (!onError) throw error;
        onError(error);
      },
      closed: () => {},
      ref: true,
    };
    this.#listen(listener);
    const watch: EventFdWatch = {
      unref: () => {
        listener.ref = false;
        this.#updateRef();
      },
      close: () => this.#unlisten(listener),
      [Symbol.dispose]: () => watch.close(),
    };
    return watch;
  }

  /**
   * Resolves with the count at the next signal (at once if one is pending),
   * or rejects after `timeoutMs` (ERR_VFIO_TIMEOUT) or when the eventfd is
   * closed meanwhile (ERR_VFIO_CLOSED).
   */
  wait(timeoutMs?: number): Promise<bigint> {
    const pending = this.consume();
    if (pending > 0n) return Promise.resolve(pending);
    return new Promise((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      const settle = (finish: () => void) => {
        if (timer) clearTimeout(timer);
        this.#unlisten(listener);
        finish();
      };
      const listener: Listener = {
        signal: (count) => settle(() => resolve(count)),
        fail: (error) => settle(() => reject(error)),
        closed: () => settle(() => reject(new VfioClosedError('eventfd'))),
        ref: true,
      };
      this.#listen(listener);
      if (timeoutMs !== undefined) {
        const fd = this.#fd;
        timer = setTimeout(
          () =>
            settle(() => reject(new VfioTimeoutError(`no signal on eventfd ${fd} within ${timeoutMs} ms`))),
          timeoutMs,
        );
      }
    });
  }

  #listen(listener: Listener): void {
    const fd = this.fd;
    this.#listeners.add(listener);
    this.#poll ??= nodePoll(fd, { readable: true }, (status) => this.#wake(status));
    this.#updateRef();
  }

  #unlisten(listener: Listener): void {
    if (!this.#listeners.delete(listener)) return;
    if (this.#listeners.size === 0) this.#stopPolling();
    else this.#updateRef();
  }

  #wake(status: number): void {
    if (this.#fd < 0) return;
    if (status < 0) {
      const error = new SysError('poll', -status, { detail: `eventfd ${this.#fd}` });
      const listeners = [...this.#listeners];
      this.#listeners.clear();
      this.#stopPolling();
      for (const l of listeners) l.fail(error);
      return;
    }
    const count = eventfdConsume(this.#fd);
    if (count === 0n) return;
    for (const l of [...this.#listeners]) l.signal(count);
  }

  /** The loop stays alive for this fd while any listener wants it to. */
  #updateRef(): void {
    if (this.#poll === null) return;
    if ([...this.#listeners].some((l) => l.ref)) this.#poll.ref();
    else this.#poll.unref();
  }

  #stopPolling(): void {
    this.#poll?.close();
    this.#poll = null;
  }

  /** Ends every watch, rejects pending waits, then closes the fd. Idempotent. */
  close(): void {
    if (this.#fd < 0) return;
    const listeners = [...this.#listeners];
    this.#listeners.clear();
    this.#stopPolling();
    const fd = this.#fd;
    this.#fd = -1;
    sysClose(fd);
    for (const l of listeners) l.closed();
  }

  [Symbol.dispose](): void {
    this.close();
  }
}

interface Listener {
  signal(count: bigint): void;
  fail(error: SysError): void;
  closed(): void;
  ref: boolean;
}
