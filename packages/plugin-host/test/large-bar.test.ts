/**
 * GPU-sized BARs in the in-process backend: spec sizes checked in 53-bit
 * arithmetic, memfd-backed BARs of 64-128 GiB that cost no memory until
 * touched, registers and the MSI-X table far beyond the first window, and a
 * reset that zeroes the BAR without touching its pages.
 */
import { readFileSync } from 'node:fs';
import { resourceCounts, settle } from '@vfio-ts/test-support';
import { describe, expect, it } from 'vitest';
import { ConfigBuilder, modelFromSpec, parseDeviceSpec, register32, SimDevice } from '../src/index.js';

const GiB = 2 ** 30;
const RW = { read: true, write: true };
const PCI_COMMAND_MEMORY = 0x2;

function rssKiB(): number {
  return Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'))![1]);
}

const spec = (size: string | number, extra: Record<string, unknown> = {}) => ({
  name: 'gpu',
  vendor: '0x10de',
  device: '0x2684',
  class: '0x030000',
  bars: [
    { index: 0, type: 'mem32', size: '16M' },
    { index: 1, type: 'mem64', size, prefetchable: true },
  ],
  ...extra,
});

describe('device spec sizes in 53-bit arithmetic', () => {
  it.each([
    ['0x180000000', '0x180000000'],
    ['4294967297', 4294967297],
    ['0x300000000', '0x300000000'],
    ['2^53 - 1', Number.MAX_SAFE_INTEGER],
  ])('refuses %s as a power of two', (_what, size) => {
    expect(() => parseDeviceSpec(spec(size))).toThrow(/bars\[1\]\.size: expected a power of two/);
  });

  it.each([
    ['0x200000000', '0x200000000'],
    ['64G', '64G'],
    ['2^52', 2 ** 52],
  ])('accepts %s', (_what, size) => {
    expect(parseDeviceSpec(spec(size)).bars[1]!.size).toBe(
      typeof size === 'number' ? size : size === '64G' ? 64 * GiB : 0x200000000,
    );
  });

  it('refuses a ROM size that only looks like a power of two in 32 bits', () => {
    expect(() => parseDeviceSpec(spec('16K', { rom: { size: 4294967297 } }))).toThrow(
      /rom\.size: expected a power of two/,
    );
  });
});

describe('a 64 GiB memory BAR', () => {
  const big = () =>
    new SimDevice(
      modelFromSpec(
        parseDeviceSpec(
          spec('64G', {
            msix: {
              vectors: 16,
              table: { bar: 1, offset: '0xc0000000' },
              pba: { bar: 1, offset: '0xc0001000' },
            },
            registers: [
              { bar: 1, offset: '0x0', size: 4, value: '0x11111111' },
              { bar: 1, offset: '0x80000000', size: 4, value: '0x22222222' },
              { bar: 1, offset: '0xfffffffc', size: 4, value: '0x33333333' },
            ],
          }),
        ),
      ),
      'gpu',
    );

  it('loads spec registers and masks the MSI-X table far past the first window, as mmap and the slow path see', () => {
    using dev = big();
    expect(dev.regionInfo(1).size).toBe(64 * GiB);
    dev.regionWrite(7, 0x04, PCI_COMMAND_MEMORY, 2);
    using map = dev.regionMmap(1, 0, 64 * GiB, RW);
    for (const [offset, value] of [
      [0, 0x11111111],
      [0x8000_0000, 0x22222222],
      [0xffff_fffc, 0x33333333],
    ] as const) {
      expect(map.read(offset, 4)).toBe(value);
      expect(dev.regionRead(1, offset, 4)).toBe(value);
    }
    // Vector control of every entry starts masked (at 3 GiB + 12 + 16 n).
    expect(map.read(0xc000_0000 + 12, 4)).toBe(1);
    expect(map.read(0xc000_0000 + 15 * 16 + 12, 4)).toBe(1);
    // The last word of the BAR, beyond every 4 GiB boundary.
    dev.regionWrite64(1, 64 * GiB - 8, 0x0102_0304_0506_0708n);
    expect(map.read64(64 * GiB - 8)).toBe(0x0102_0304_0506_0708n);
    map.write(32 * GiB, 0xabcdef01, 4);
    expect(dev.regionRead(1, 32 * GiB, 4)).toBe(0xabcdef01);
  });

  it('is zeroed by reset without touching its pages, then reloaded', () => {
    using dev = big();
    dev.regionWrite(7, 0x04, PCI_COMMAND_MEMORY, 2);
    using map = dev.regionMmap(1, 0, 64 * GiB, RW);
    map.write(40 * GiB, 0x5a5a5a5a, 4);
    const before = rssKiB();
    dev.reset();
    expect(rssKiB() - before).toBeLessThan(32 * 1024);
    expect(map.read(40 * GiB, 4)).toBe(0);
    expect(map.read(0x8000_0000, 4)).toBe(0x22222222);
    expect(map.read(0xc000_0000 + 12, 4)).toBe(1);
  });
});

describe('a model register past the first window of a BAR', () => {
  it('keeps its value in BAR memory where the mapping sees it, and its handlers run on the slow path', () => {
    const bars = [{ index: 0, size: 2 * GiB, kind: 'mem64' as const, prefetchable: false }];
    const AT = 0x4000_0000; // 1 GiB in: far past window 0
    let written = -1;
    using dev = new SimDevice(
      {
        name: 'far',
        config: new ConfigBuilder().build({ vendor: 0x1234, device: 0x0bad, classCode: 0xff0000 }, bars),
        bars,
        setup(ctx) {
          const { region, memory } = ctx.bar(0);
          register32(region, memory, AT, 'far doorbell', {
            write: (v) => {
              written = v;
            },
          });
          register32(region, memory, AT + 4, 'far plain', {});
          return {};
        },
      },
      'far',
    );
    dev.regionWrite(7, 0x04, PCI_COMMAND_MEMORY, 2);
    using map = dev.regionMmap(0, 0, 2 * GiB, RW);
    dev.regionWrite(0, AT, 0xfeedf00d, 4);
    expect(written).toBe(0xfeedf00d);
    dev.regionWrite(0, AT + 4, 0x12345678, 4);
    expect(map.read(AT + 4, 4)).toBe(0x12345678);
    map.write(AT + 4, 0x9abcdef0, 4);
    expect(dev.regionRead(0, AT + 4, 4)).toBe(0x9abcdef0);
    expect(dev.regionRead(0, AT + 6, 2)).toBe(0x9abc);
  });
});

describe('a 128 GiB BAR device', () => {
  it('costs no memory for its size and releases its memfd and mappings on close', async () => {
    await settle();
    const counts = resourceCounts();
    const before = rssKiB();
    {
      using dev = new SimDevice(modelFromSpec(parseDeviceSpec(spec('128G'))), 'gpu');
      dev.regionWrite(7, 0x04, PCI_COMMAND_MEMORY, 2);
      using map = dev.regionMmap(1, 0, 128 * GiB, RW);
      map.write(128 * GiB - 4, 1, 4);
      expect(rssKiB() - before).toBeLessThan(32 * 1024);
    }
    await settle();
    expect(resourceCounts()).toEqual(counts);
  });
});
