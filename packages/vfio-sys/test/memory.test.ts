/** libc calls and MappedArea on real memfds: coherence, exact widths, safe unmap, no leaks. */
import { resourceCounts, settle } from '@vfio-ts/test-support';
import { describe, expect, it } from 'vitest';
import { MappedArea, pendingUnmaps, SysError } from '../src/index.js';
import * as libc from '../src/libc-index.js';

const RW = { read: true, write: true };

/** Fds, and mappings of this file's own memfds. */
const counts = () => resourceCounts((line) => line.includes('memfd:vfio-sys-test'));

function memfd(size = 0x2000): number {
  const fd = libc.sysMemfdCreate('vfio-sys-test');
  libc.sysFtruncate(fd, size);
  return fd;
}

describe('MappedArea on a memfd', () => {
  it('sees pwrite through the mapping and pread sees mapped writes', () => {
    const fd = memfd();
    const area = MappedArea.map(fd, 0, 0x2000, RW);
    try {
      area.write(0x10, 0xcafef00d, 4);
      const buf = Buffer.alloc(4);
      libc.sysPread(fd, buf, 0x10);
      expect(buf.readUInt32LE(0)).toBe(0xcafef00d);
      libc.sysPwrite(fd, Buffer.from([1, 2, 3, 4, 5, 6, 7, 8]), 0x1000);
      expect(area.read(0x1000, 4)).toBe(0x04030201);
      expect(area.read64(0x1000)).toBe(0x0807060504030201n);
      expect(area.read(0x1001, 1)).toBe(2);
      expect(area.read(0x1002, 2)).toBe(0x0403);
      area.write64(0x1008, 0x1122334455667788n);
      expect(area.read(0x100c, 4)).toBe(0x11223344);
    } finally {
      area.unmap();
      libc.sysClose(fd);
    }
  });

  it('maps at an offset and rejects out-of-range, unaligned and bad arguments', () => {
    const fd = memfd();
    try {
      libc.sysPwrite(fd, Buffer.from([0xab]), 0x1000);
      using area = MappedArea.map(fd, 0x1000, 0x1000, RW, 'test area');
      expect(area.read(0, 1)).toBe(0xab);
      expect(() => area.read(0x1000, 4)).toThrow(/outside mapping test area/);
      expect(() => area.read(2, 4)).toThrow(/not naturally aligned/);
      expect(() => MappedArea.map(fd, 0x10, 0x1000, RW)).toThrow(
        expect.objectContaining({ syscall: 'mmap', code: 'EINVAL' }),
      );
      expect(() => MappedArea.map(fd, 0, -1, RW)).toThrow(/positive safe integer/);
    } finally {
      libc.sysClose(fd);
    }
  });

  it('after unmap a stale view reads zeros instead of faulting, and the range is released once unreachable', async () => {
    await settle();
    const before = counts();
    const pendingBefore = pendingUnmaps();
    let stale: Uint32Array | null;
    {
      const fd = memfd();
      const area = MappedArea.map(fd, 0, 0x2000, RW);
      area.write(0, 0x12345678, 4);
      stale = area.u32;
      area.unmap();
      area.unmap(); // idempotent
      expect(stale[0]).toBe(0); // the placeholder, not the device memory
      stale[1] = 5; // writable, harmless
      expect(() => area.read(0, 4)).toThrow(expect.objectContaining({ code: 'ERR_VFIO_CLOSED' }));
      libc.sysClose(fd);
      // The memfd pages are gone from the process at once.
      expect(counts().maps).toBe(before.maps);
    }
    stale = null;
    await settle();
    expect(pendingUnmaps()).toBe(pendingBefore);
    expect(counts()).toEqual(before);
  });
});

describe('libc errors', () => {
  it('carry the syscall, errno and its name, and read as a sentence', () => {
    try {
      libc.sysOpen('/nonexistent/vfio', libc.O_RDWR);
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(SysError);
      expect(err).toMatchObject({ syscall: 'open', errno: 2, errnoName: 'ENOENT', code: 'ENOENT' });
      expect((err as Error).message).toBe(
        'open("/nonexistent/vfio") failed: no such file or directory (ENOENT, errno 2)',
      );
    }
    expect(() => libc.sysClose(-1)).toThrow(expect.objectContaining({ errnoName: 'EBADF' }));
  });

  it('eventfds signal, poll readable and reset when consumed; dup keeps its own reference', () => {
    const efd = libc.sysEventfd(0, libc.EFD_CLOEXEC | libc.EFD_NONBLOCK);
    const copy = libc.sysDup(efd);
    try {
      expect(libc.sysPoll([{ fd: efd, events: libc.POLLIN }], 0)[0]).toBe(0);
      libc.eventfdSignal(copy);
      libc.eventfdSignal(copy);
      expect(libc.sysPoll([{ fd: efd, events: libc.POLLIN }], 0)[0]! & libc.POLLIN).toBe(libc.POLLIN);
      expect(libc.eventfdConsume(efd)).toBe(2n);
      expect(libc.eventfdConsume(efd)).toBe(0n);
    } finally {
      libc.sysClose(copy);
      libc.sysClose(efd);
    }
    expect(libc.hostPageSize()).toBe(4096);
  });
});
