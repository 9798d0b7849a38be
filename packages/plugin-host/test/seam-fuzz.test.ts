/**
 * Hostile input to the seam, generated: every call of the in-process backend
 * with arbitrary arguments (wrong types, sizes, offsets, indices, requests)
 * either works or throws a typed VfioError, on every built-in model, and
 * nothing it opens outlives the device.
 */
import { resourceCounts, settle } from '@vfio-ts/test-support';
import { VfioError } from '@vfio-ts/vfio-sys';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { builtinModels, openSimDevice, type SimDevice } from '../src/index.js';

const anything = fc.oneof(
  fc.integer({ min: -3, max: 12 }),
  fc.nat({ max: 0x10000 }), // block lengths up to 64 KiB: a 256 MiB read is allowed, just slow
  fc.constantFrom(
    0,
    1,
    2,
    4,
    8,
    3,
    16,
    0x3c3,
    0x1000,
    0x88000,
    2 ** 40,
    2 ** 53,
    1.5,
    Number.NaN,
    Infinity,
    -1,
  ),
  fc.constantFrom('1', '', null, undefined, 1n, -1n, 1n << 64n, {}, [], true),
);
const irqData = fc.oneof(
  anything,
  fc.constant({ type: 'none' }),
  fc.constant({ type: 'bool', values: [true] }),
  fc.constant({ type: 'bool', values: 5 }),
  fc.constant({ type: 'eventfd', eventfds: [null] }),
);

type Call = (dev: SimDevice, a: unknown[]) => unknown;
const CALLS: Call[] = [
  (d, [i, o, s]) => d.regionRead(i as number, o as number, s as 4),
  (d, [i, o]) => d.regionRead64(i as number, o as number),
  (d, [i, o, v, s]) => d.regionWrite(i as number, o as number, v as number, s as 4),
  (d, [i, o, v]) => d.regionWrite64(i as number, o as number, v as bigint),
  (d, [i, o, n]) => d.regionReadBlock(i as number, o as number, n as number),
  (d, [i, o, b]) => d.regionWriteBlock(i as number, o as number, b as Uint8Array),
  (d, [i, o, n, p]) => d.regionMmap(i as number, o as number, n as number, p as never).unmap(),
  (d, [i]) => d.regionInfo(i as number),
  (d, [i]) => d.irqInfo(i as number),
  (d, [i, a, s, n, data]) =>
    d.setIrqs({
      index: i,
      action: ['mask', 'unmask', 'trigger', a][Number(a) & 3],
      start: s,
      count: n,
      data,
    } as never),
  (d, [r]) => d.setIrqs(r as never),
  (d, [k, v]) => d.raise(['intx', 'msi', 'msix', k][Number(k) & 3] as 'msix', v as number),
];

describe('the seam under generated hostile calls', () => {
  it.each(Object.keys(builtinModels))('%s: only typed errors, nothing leaked', async (name) => {
    const before = resourceCounts();
    const dev = openSimDevice(`sim:${name}`);
    const untyped: string[] = [];
    fc.assert(
      fc.property(
        fc.nat(CALLS.length - 1),
        fc.tuple(anything, anything, anything, anything, irqData),
        (c, args) => {
          try {
            CALLS[c]!(dev, args);
          } catch (err) {
            if (!(err instanceof VfioError)) untyped.push(`call ${c}: ${String(err)}`);
          }
        },
      ),
      { numRuns: 3000 },
    );
    dev.close();
    await settle();
    expect(untyped.slice(0, 5)).toEqual([]);
    expect(resourceCounts()).toEqual(before);
  });
});
