import { resourceCounts } from '@vfio-ts/test-support';
import { describe, expect, it } from 'vitest';
import { EventFd } from '../src/index.js';
import { sysClose } from '../src/libc.js';
import { recvWithFds, SOCK_SEQPACKET, sendWithFds, socketPair } from '../src/libc-index.js';

const openFds = () => resourceCounts().fds;

describe('EventFd: an owned eventfd', () => {
  it('counts signals until consumed, and reads 0 without blocking when none arrived', () => {
    const before = openFds();
    {
      using efd = EventFd.create();
      expect(efd.consume()).toBe(0n);
      efd.signal();
      efd.signal();
      expect(efd.consume()).toBe(2n);
      expect(efd.consume()).toBe(0n);
    }
    expect(openFds()).toBe(before);
  });

  it('closes once; use after close is a typed error naming the eventfd', () => {
    const efd = EventFd.create();
    efd.close();
    efd.close();
    expect(efd.closed).toBe(true);
    expect(() => efd.signal()).toThrow(expect.objectContaining({ code: 'ERR_VFIO_CLOSED' }));
    expect(() => efd.fd).toThrow(/eventfd is closed/);
  });

  it('dup() is a second owner of the same counter; each closes only its own fd', () => {
    const before = openFds();
    const efd = EventFd.create();
    const copy = efd.dup();
    expect(copy.fd).not.toBe(efd.fd);
    copy.signal();
    copy.close();
    expect(efd.consume()).toBe(1n);
    efd.close();
    expect(openFds()).toBe(before);
  });

  it('adopts an eventfd received over SCM_RIGHTS and signals the sender’s counter', () => {
    const before = openFds();
    const [a, b] = socketPair(SOCK_SEQPACKET);
    try {
      using mine = EventFd.create();
      sendWithFds(a, Uint8Array.of(1), [mine.fd]);
      const { fds } = recvWithFds(b, 4, 1);
      using theirs = EventFd.adopt(fds[0]!);
      theirs.signal();
      expect(mine.consume()).toBe(1n);
    } finally {
      sysClose(a);
      sysClose(b);
    }
    expect(openFds()).toBe(before);
    expect(() => EventFd.adopt(-1)).toThrow(/not a file descriptor/);
  });

  it('wait() resolves at the next signal from the event loop, at once when one is pending', async () => {
    using efd = EventFd.create();
    efd.signal();
    await expect(efd.wait(1000)).resolves.toBe(1n);
    setTimeout(() => efd.signal(), 5);
    await expect(efd.wait(1000)).resolves.toBe(1n);
    await expect(efd.wait(20)).rejects.toMatchObject({ code: 'ERR_VFIO_TIMEOUT' });
  });

  it('watch() calls back per signal batch and stops with close(); closing the eventfd ends watches and waits', async () => {
    const before = openFds();
    const efd = EventFd.create();
    const seen: bigint[] = [];
    const watch = efd.watch((n) => seen.push(n));
    efd.signal();
    await new Promise((r) => setTimeout(r, 20));
    efd.signal();
    efd.signal();
    await new Promise((r) => setTimeout(r, 20));
    expect(seen).toEqual([1n, 2n]);
    watch.close();
    efd.signal();
    await new Promise((r) => setTimeout(r, 20));
    expect(seen).toEqual([1n, 2n]);
    expect(efd.consume()).toBe(1n);
    const pending = efd.wait();
    efd.watch(() => {});
    efd.close();
    await expect(pending).rejects.toMatchObject({ code: 'ERR_VFIO_CLOSED' });
    expect(openFds()).toBe(before);
  });
});

describe('EventFd listeners share one poll handle (libuv allows one per fd)', () => {
  it('several watches and waits on one eventfd all hear the same wake-up', async () => {
    using efd = EventFd.create();
    const a: bigint[] = [];
    const b: bigint[] = [];
    using wa = efd.watch((n) => a.push(n));
    using wb = efd.watch((n) => b.push(n));
    const waited = efd.wait(1000);
    efd.signal();
    await expect(waited).resolves.toBe(1n);
    expect(a).toEqual([1n]);
    expect(b).toEqual([1n]);
    wa.close();
    const again = efd.wait(1000);
    efd.signal();
    await expect(again).resolves.toBe(1n);
    expect(a).toEqual([1n]);
    expect(b).toEqual([1n, 1n]);
    wb.unref();
  });
});
