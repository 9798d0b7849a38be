/**
 * MappedArea at GPU sizes: a 256 GiB sparse memfd (ftruncate costs nothing,
 * the mmap only reserves address space) is served in 16 MiB windows of views,
 * every access lands at its own file offset (checked with pread, a path that
 * shares no code with the views), and unmap covers every window.
 */
import { readFileSync } from 'node:fs';
import { resourceCounts, settle } from '@vfio-ts/test-support';
import { describe, expect, it } from 'vitest';
import { MappedArea, pendingUnmaps } from '../src/index.js';
import * as libc from '../src/libc-index.js';
import { MAPPED_WINDOW_BYTES } from '../src/mapped-area.js';

const RW = { read: true, write: true };
const GiB = 2 ** 30;
const W = MAPPED_WINDOW_BYTES;
const counts = () => resourceCounts((line) => line.includes('memfd:vfio-sys-large'));

function sparseMemfd(size: number): number {
  const fd = libc.sysMemfdCreate('vfio-sys-large');
  libc.sysFtruncate(fd, size);
  return fd;
}

function preadLE(fd: number, offset: number, size: number): bigint {
  const buf = Buffer.alloc(size);
  libc.sysPread(fd, buf, offset);
  let v = 0n;
  for (let i = size - 1; i >= 0; i--) v = (v << 8n) | BigInt(buf[i]!);
  return v;
}

function rssKiB(): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'));
  return Number(m![1]);
}

/** Whether any mapping of this process covers `address`. */
function mappedAt(address: bigint): boolean {
  return readFileSync('/proc/self/maps', 'utf8')
    .split('\n')
    .some((line) => {
      const m = /^([0-9a-f]+)-([0-9a-f]+) /.exec(line);
      return m !== null && BigInt(`0x${m[1]}`) <= address && address < BigInt(`0x${m[2]}`);
    });
}

/** The first byte, the last, and both sides of every 4 GiB boundary of a mapping of `size` bytes. */
function probeOffsets(size: number, width: number): number[] {
  const out = [0, size - width];
  for (let b = 4 * GiB; b < size; b += 4 * GiB) out.push(b - width, b);
  return out;
}

describe('MappedArea over 256 GiB', () => {
  const SIZE = 256 * GiB;

  it('maps it whole with views of one window at most, made on first use and kept', () => {
    const fd = sparseMemfd(SIZE);
    try {
      using area = MappedArea.map(fd, 0, SIZE, RW, 'big');
      expect(area.size).toBe(SIZE);
      expect(area.windowBytes).toBe(MAPPED_WINDOW_BYTES);
      expect(area.windowCount).toBe(SIZE / W);
      expect(W).toBe(16 * 2 ** 20);
      // Window 0 is the area's own views: one window, never the whole mapping.
      expect(area.u8.byteLength).toBe(W);
      expect(area.u32.length).toBe(W / 4);
      expect(area.u64.length).toBe(W / 8);
      const last = area.windowCount - 1;
      const w = area.window(last);
      expect(area.window(last)).toBe(w);
      expect(w.u8.byteLength).toBe(W);
      expect(() => area.window(SIZE / W)).toThrow(expect.objectContaining({ code: 'ERR_VFIO_ARGUMENT' }));
      expect(() => area.window(-1)).toThrow(expect.objectContaining({ code: 'ERR_VFIO_ARGUMENT' }));
    } finally {
      libc.sysClose(fd);
    }
  });

  it.each([1, 2, 4, 8] as const)(
    'a %d-byte access at the first byte, the last, and across every 4 GiB boundary reaches its file offset',
    (width) => {
      const fd = sparseMemfd(SIZE);
      try {
        using area = MappedArea.map(fd, 0, SIZE, RW, 'big');
        const offsets = probeOffsets(SIZE, width);
        expect(offsets.length).toBe(2 + 2 * 63);
        offsets.forEach((offset, n) => {
          const value = (BigInt(n + 1) * 0x0123_4567_89ab_cdefn) & ((1n << BigInt(8 * width)) - 1n);
          if (width === 8) area.write64(offset, value);
          else area.write(offset, Number(value), width);
          expect(preadLE(fd, offset, width)).toBe(value);
          expect(width === 8 ? area.read64(offset) : BigInt(area.read(offset, width))).toBe(value);
        });
        // pwrite lands where the views look, in the last window too.
        libc.sysPwrite(fd, Buffer.from([0xaa, 0xbb]), SIZE - 2);
        expect(area.read(SIZE - 2, 2)).toBe(0xbbaa);
        expect(area.window(SIZE / W - 1).u8[W - 1]).toBe(0xbb);
        expect(() => area.read(SIZE - 1, 2)).toThrow(/outside mapping big/);
        expect(() => area.read(SIZE, 1)).toThrow(/outside mapping big/);
      } finally {
        libc.sysClose(fd);
      }
    },
  );

  it('copies bytes across a window boundary', () => {
    const fd = sparseMemfd(4 * GiB);
    try {
      using area = MappedArea.map(fd, 0, 4 * GiB, RW, 'big');
      const data = Uint8Array.from({ length: 64 }, (_, i) => i + 1);
      area.writeBytes(3 * GiB - 32, data);
      const back = new Uint8Array(64);
      libc.sysPread(fd, back, 3 * GiB - 32);
      expect([...back]).toEqual([...data]);
      const copy = new Uint8Array(64);
      area.readBytes(3 * GiB - 32, copy);
      expect([...copy]).toEqual([...data]);
      expect(() => area.readBytes(4 * GiB - 8, new Uint8Array(9))).toThrow(/outside mapping big/);
    } finally {
      libc.sysClose(fd);
    }
  });

  it('serves a mapping of exactly 4 GiB to its last word (was: undefined reads and dropped writes)', () => {
    const fd = sparseMemfd(4 * GiB);
    try {
      using area = MappedArea.map(fd, 0, 4 * GiB, RW);
      area.write(4 * GiB - 4, 0xdeadbeef, 4);
      expect(area.read(4 * GiB - 4, 4)).toBe(0xdeadbeef);
      expect(preadLE(fd, 4 * GiB - 4, 4)).toBe(0xdeadbeefn);
    } finally {
      libc.sysClose(fd);
    }
  });

  it('does not grow RSS with the mapping size', () => {
    const fd = sparseMemfd(SIZE);
    try {
      const before = rssKiB();
      using area = MappedArea.map(fd, 0, SIZE, RW);
      for (let g = 0; g < 256; g++) area.write(g * GiB, g, 4);
      // 256 touched pages and their windows' views: far below one window's size.
      expect(rssKiB() - before).toBeLessThan(16 * 1024);
    } finally {
      libc.sysClose(fd);
    }
  });

  it('after unmap stale views of every window read zeros, and the whole range is released once unreachable', async () => {
    await settle();
    const before = counts();
    const pendingBefore = pendingUnmaps();
    let address: bigint;
    let stale: { first: Uint32Array; middle: BigUint64Array; last: Uint8Array } | null;
    {
      const fd = sparseMemfd(SIZE);
      const area = MappedArea.map(fd, 0, SIZE, RW);
      address = area.address;
      area.write(0, 0x11111111, 4);
      area.write64(100 * GiB, 0x2222_2222_2222_2222n);
      area.write(SIZE - 1, 0x33, 1);
      stale = {
        first: area.u32,
        middle: area.window((100 * GiB) / W).u64,
        last: area.window(SIZE / W - 1).u8,
      };
      expect(stale.middle[0]).toBe(0x2222_2222_2222_2222n);
      area.unmap();
      expect(stale.first[0]).toBe(0);
      expect(stale.middle[0]).toBe(0n);
      expect(stale.last[W - 1]).toBe(0);
      stale.middle[1] = 5n; // the placeholder is writable and harmless
      expect(area.window((100 * GiB) / W).u8.byteLength).toBe(0);
      expect(() => area.read(0, 4)).toThrow(expect.objectContaining({ code: 'ERR_VFIO_CLOSED' }));
      libc.sysClose(fd);
      expect(counts().maps).toBe(before.maps); // the memfd pages are gone at once
      expect(mappedAt(address + BigInt(200 * GiB))).toBe(true); // the placeholder holds the range
    }
    stale = null;
    await settle();
    expect(pendingUnmaps()).toBe(pendingBefore);
    expect(mappedAt(address)).toBe(false);
    expect(mappedAt(address + BigInt(SIZE - 1))).toBe(false);
    expect(counts()).toEqual(before);
  });

  it('releases a mapping that is dropped without unmap once none of its windows is reachable', async () => {
    await settle();
    const pendingBefore = pendingUnmaps();
    const address = mapAndDrop(8 * GiB);
    await settle();
    expect(pendingUnmaps()).toBe(pendingBefore);
    expect(mappedAt(address)).toBe(false);
  });
});

/** Maps, makes a far window, and drops the area (not in the async test: its frame would keep it). */
function mapAndDrop(size: number): bigint {
  const fd = sparseMemfd(size);
  const area = MappedArea.map(fd, 0, size, RW);
  area.window(area.windowCount - 1);
  libc.sysClose(fd);
  return area.address;
}
