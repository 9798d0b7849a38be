/**
 * Which message received fds belong to when the peer pipelines. QEMU sends
 * DMA_UNMAP (no fd) and then DMA_MAP (one fd) back to back during a memory
 * transaction; Linux glues the first message's bytes and the second's into
 * one recvmsg when the buffer has room, and hands over the second's fd with
 * them. The fd was sent with DMA_MAP and must be received with DMA_MAP.
 */
import * as libc from '@vfio-ts/vfio-sys/libc';
import { setNonBlocking, socketPair } from '@vfio-ts/vfio-sys/libc';
import { describe, expect, it } from 'vitest';
import { MessageChannel } from '../src/channel.js';
import { command } from '../src/codec.js';

describe('MessageChannel fd attribution', () => {
  it('gives the fd of the second of two pipelined messages to the second (QEMU: DMA_UNMAP, then DMA_MAP with its fd)', () => {
    const [a, b] = socketPair();
    setNonBlocking(b, true);
    const sender = new MessageChannel(a, { maxMessageSize: 1 << 20, maxFds: 16 });
    const receiver = new MessageChannel(b, { maxMessageSize: 1 << 20, maxFds: 16 });
    const memfd = libc.sysMemfdCreate('channel-fds');
    try {
      sender.send(command(1, 3, { kind: 'dma-unmap', argsz: 32, flags: 0, addr: 0n, size: 0x1000n }));
      sender.send(
        command(2, 2, { kind: 'dma-map', argsz: 32, flags: 3, offset: 0n, addr: 0n, size: 0x1000n }),
        [memfd],
      );
      receiver.pump();
      const first = receiver.take();
      const second = receiver.take();
      expect(first?.header.id).toBe(1);
      expect(second?.header.id).toBe(2);
      expect(first?.fds).toEqual([]);
      expect(second?.fds).toHaveLength(1);
      for (const fd of second?.fds ?? []) libc.sysClose(fd);
    } finally {
      libc.sysClose(memfd);
      sender.close();
      receiver.close();
    }
  });
});
