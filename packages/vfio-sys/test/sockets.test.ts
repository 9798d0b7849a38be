import { resourceCounts } from '@vfio-ts/test-support';
import { describe, expect, it } from 'vitest';
import * as libc from '../src/libc-index.js';
import { recvWithFds, SOCK_SEQPACKET, sendWithFds, socketPair } from '../src/libc-index.js';

const openFds = () => resourceCounts().fds;

describe('fd passing over AF_UNIX (SCM_RIGHTS)', () => {
  it('passes an eventfd with a message; the received fd signals the same counter', () => {
    const before = openFds();
    const [a, b] = socketPair(SOCK_SEQPACKET);
    const efd = libc.sysEventfd(0, libc.EFD_CLOEXEC | libc.EFD_NONBLOCK);
    try {
      expect(sendWithFds(a, Buffer.from('irq'), [efd])).toBe(3);
      const { data, fds } = recvWithFds(b, 64, 4);
      expect(Buffer.from(data).toString()).toBe('irq');
      expect(fds).toHaveLength(1);
      expect(fds[0]).not.toBe(efd);
      libc.eventfdSignal(fds[0]!);
      expect(libc.eventfdConsume(efd)).toBe(1n);
      libc.sysClose(fds[0]!);
      // Messages without fds work too.
      sendWithFds(b, Uint8Array.of(1, 2, 3));
      expect([...recvWithFds(a, 8).data]).toEqual([1, 2, 3]);
    } finally {
      libc.sysClose(efd);
      libc.sysClose(a);
      libc.sysClose(b);
    }
    expect(openFds()).toBe(before);
  });

  it('refuses more fds than one message may carry, and reports errors as SysError', () => {
    const [a, b] = socketPair();
    try {
      expect(() => sendWithFds(a, Uint8Array.of(0), new Array(300).fill(0))).toThrow(/at most 253/);
      expect(() => sendWithFds(a, Uint8Array.of(0), [-1])).toThrow(
        expect.objectContaining({ syscall: 'sendmsg', code: 'EBADF' }),
      );
    } finally {
      libc.sysClose(a);
      libc.sysClose(b);
    }
  });

  it('drops and reports fds beyond what the receiver allowed (MSG_CTRUNC), closing what arrived', () => {
    const before = openFds();
    const [a, b] = socketPair(SOCK_SEQPACKET);
    const e1 = libc.sysEventfd();
    const e2 = libc.sysEventfd();
    const e3 = libc.sysEventfd();
    try {
      sendWithFds(a, Uint8Array.of(7), [e1, e2, e3]);
      expect(() => recvWithFds(b, 8, 1)).toThrow(/MSG_CTRUNC/);
    } finally {
      for (const fd of [e1, e2, e3, a, b]) libc.sysClose(fd);
    }
    expect(openFds()).toBe(before);
  });
});
