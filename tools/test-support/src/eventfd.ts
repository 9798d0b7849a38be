/**
 * Waiting for an interrupt in a test: the eventfd a device signals is
 * non-blocking, so poll its counter from the event loop (node:fs reads any
 * fd; an eventfd read returns the 8-byte counter and resets it).
 */
import { readSync } from 'node:fs';

export async function sleep(ms: number): Promise<void> {
  await new Promise((r) => setTimeout(r, ms));
}

/** A raw fd, or an owner that exposes its fd. */
export type FdLike = number | { readonly fd: number };

/**
 * Waits up to `timeoutMs` for a non-blocking eventfd to be signalled and
 * returns the count it consumed, 0n if it never was signalled.
 */
export async function eventfdWait(eventfd: FdLike, timeoutMs = 1000): Promise<bigint> {
  const fd = typeof eventfd === 'number' ? eventfd : eventfd.fd;
  const counter = Buffer.alloc(8);
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      readSync(fd, counter, 0, 8, null);
      return counter.readBigUInt64LE(0);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EAGAIN') throw err;
    }
    if (Date.now() >= deadline) return 0n;
    await sleep(20);
  }
}
