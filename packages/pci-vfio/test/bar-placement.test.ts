// The firmware stand-in (bar-placement.ts): where BARs go when the caller
// does not say, SeaBIOS-like, and which decoding it turns on.
import { describe, expect, it } from 'vitest';
import { type BarToPlace, decodeBits, placeBars } from '../src/bar-placement.js';

const NAME = '0000:00:05.0';
const KiB = 1024;
const MiB = 1024 * KiB;
const hex = (placements: ReturnType<typeof placeBars>) =>
  placements.map(({ bar, address }) => `${bar.index}@0x${address.toString(16)}`);

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
