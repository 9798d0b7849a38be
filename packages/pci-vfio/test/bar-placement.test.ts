// The firmware stand-in (bar-placement.ts): where BARs go when the caller
// does not say, SeaBIOS-like, and which decoding it turns on.
import { describe, expect, it } from 'vitest';
import { type BarToPlace, decodeBits, placeBars } from '../src/bar-placement.js';

const NAME = '0000:00:05.0';
const KiB = 1024;
const MiB = 1024 * KiB;
const GiB = 1024 * MiB;
const hex = (placements: ReturnType<typeof placeBars>) =>
  placements.map(
    ({ bar, address }) => `${bar.index}@${address === null ? 'unmapped' : `0x${address.toString(16)}`}`,
  );

describe('placeBars', () => {
  it('given e1000e-like BARs: largest first, each naturally aligned, I/O in its own window', () => {
    const bars: BarToPlace[] = [
      { index: 0, kind: 'mem32', size: 128 * KiB },
      { index: 1, kind: 'mem32', size: 128 * KiB },
      { index: 2, kind: 'io', size: 32 },
      { index: 3, kind: 'mem32', size: 16 * KiB },
    ];
    expect(hex(placeBars(bars, {}, NAME))).toEqual([
      '0@0xc0000000',
      '1@0xc0020000',
      '3@0xc0040000',
      '2@0xc000',
    ]);
  });

  it('aligns a smaller BAR placed after a larger one to its own size', () => {
    const bars: BarToPlace[] = [
      { index: 0, kind: 'mem32', size: 4 * KiB },
      { index: 2, kind: 'mem32', size: 8 * KiB },
      { index: 4, kind: 'mem32', size: 4 * KiB },
    ];
    expect(hex(placeBars(bars, {}, NAME))).toEqual(['2@0xc0000000', '0@0xc0002000', '4@0xc0003000']);
  });

  it('puts 64-bit BARs up to 256 MiB below 4 GiB and larger ones above (as SeaBIOS does)', () => {
    const bars: BarToPlace[] = [
      { index: 0, kind: 'mem64', size: 256 * MiB },
      { index: 2, kind: 'mem64', size: 512 * MiB },
      { index: 4, kind: 'mem32', size: 16 * MiB },
    ];
    expect(hex(placeBars(bars, {}, NAME))).toEqual(['2@0x8000000000', '0@0xc0000000', '4@0xd0000000']);
  });

  it('uses a given address as is; the others are placed from the window start regardless', () => {
    const bars: BarToPlace[] = [
      { index: 0, kind: 'mem64', size: 16 * KiB },
      { index: 2, kind: 'mem32', size: 4 * KiB },
    ];
    expect(hex(placeBars(bars, { 0: 0xd000_0000 }, NAME))).toEqual(['0@0xd0000000', '2@0xc0000000']);
  });

  it.each([
    ['misaligned', 0xc000_1000],
    ['zero', 0],
    ['negative', -0x4000],
    ['beyond 2^53', 2 ** 54],
  ])('refuses a %s given address with a typed error naming the BAR', (_what, address) => {
    const bars: BarToPlace[] = [{ index: 1, kind: 'mem32', size: 16 * KiB }];
    expect(() => placeBars(bars, { 1: address }, NAME)).toThrow(
      expect.objectContaining({
        code: 'ERR_VFIO_PCI_BAR_ADDRESS',
        device: NAME,
        message: expect.stringMatching(/BAR 1 address .* is not aligned to its size 0x4000/),
      }),
    );
  });
});

describe('placeBars at GPU sizes', () => {
  it('puts a 64 GiB BAR high, naturally aligned, and the small ones below 4 GiB', () => {
    const bars: BarToPlace[] = [
      { index: 0, kind: 'mem32', size: 16 * MiB },
      { index: 1, kind: 'mem64', size: 64 * GiB },
      { index: 3, kind: 'mem64', size: 32 * MiB },
    ];
    expect(hex(placeBars(bars, {}, NAME))).toEqual(['1@0x8000000000', '3@0xc0000000', '0@0xc2000000']);
  });

  it('never puts a 32-bit BAR above 4 GiB: one that does not fit the 32-bit window is left unmapped, with the reason', () => {
    const bars: BarToPlace[] = [
      { index: 0, kind: 'mem32', size: 512 * MiB },
      { index: 1, kind: 'mem32', size: 512 * MiB },
      { index: 2, kind: 'mem32', size: 1 * MiB },
    ];
    const placements = placeBars(bars, {}, NAME);
    // The second 512 MiB BAR would end at 4 GiB, past the window's end at the IOAPIC (0xfec00000).
    expect(hex(placements)).toEqual(['0@0xc0000000', '1@unmapped', '2@0xe0000000']);
    expect(placements[1]!.unplaced).toBe(
      'warning: 0000:00:05.0: no space for mem32 BAR 1 of 0x20000000 bytes in the 32-bit memory window [0xc0000000-0xfebfffff]; BAR 1 is left unmapped',
    );
    // 2 GiB, the largest 32-bit BAR, never fits that window (it used to land at 0x100000000).
    expect(hex(placeBars([{ index: 0, kind: 'mem32', size: 2 * GiB }], {}, NAME))).toEqual(['0@unmapped']);
  });

  it('moves a small 64-bit BAR high when the 32-bit window is full, as SeaBIOS migrates 64-bit entries', () => {
    const bars: BarToPlace[] = [
      { index: 0, kind: 'mem32', size: 512 * MiB },
      { index: 2, kind: 'mem32', size: 256 * MiB },
      { index: 4, kind: 'mem64', size: 256 * MiB },
    ];
    expect(hex(placeBars(bars, {}, NAME))).toEqual(['0@0xc0000000', '2@0xe0000000', '4@0x8000000000']);
  });

  it.each([
    ['a 32-bit BAR above 4 GiB', { index: 1, kind: 'mem32', size: 16 * KiB }, 0x1_0000_0000],
    [
      'a 32-bit BAR running past 4 GiB',
      { index: 1, kind: 'mem32', size: 512 * MiB },
      0xe000_0000 + 512 * MiB,
    ],
    ['an I/O BAR past port 0xffff', { index: 1, kind: 'io', size: 256 }, 0x1_0000],
  ] as const)('refuses a given address that puts %s, with a typed error', (_what, bar, address) => {
    expect(() => placeBars([bar], { 1: address }, NAME)).toThrow(
      expect.objectContaining({
        code: 'ERR_VFIO_PCI_BAR_ADDRESS',
        message: expect.stringMatching(/cannot decode address/),
      }),
    );
  });

  it('accepts a given address above 4 GiB for a 64-bit BAR', () => {
    const bars: BarToPlace[] = [{ index: 2, kind: 'mem64', size: 64 * GiB }];
    expect(hex(placeBars(bars, { 2: 0x100_0000_0000 }, NAME))).toEqual(['2@0x10000000000']);
  });
});

describe('decodeBits', () => {
  it('turns on I/O decoding for I/O BARs and memory decoding for memory BARs, nothing without BARs', () => {
    expect(decodeBits([])).toBe(0);
    expect(decodeBits([{ index: 2, kind: 'io', size: 32 }])).toBe(0x1);
    expect(decodeBits([{ index: 0, kind: 'mem64', size: 4096 }])).toBe(0x2);
    expect(
      decodeBits([
        { index: 0, kind: 'mem32', size: 4096 },
        { index: 2, kind: 'io', size: 32 },
      ]),
    ).toBe(0x3);
  });
});
