/**
 * Plugin models are code from outside, so the in-process backend checks what
 * they give it: the values register handlers return (no silent coercion of
 * NaN, Infinity, out-of-range numbers, strings or the wrong integer type), the
 * BARs a model declares, the hooks setup returns, and exceptions thrown by a
 * plugin's factory or setup; each is a typed ModelError naming the plugin (its
 * file when loaded from one), and where it applies the BAR and offset.
 */
import { MemoryRegion } from '@vfio-ts/memory-core';
import { resourceCounts } from '@vfio-ts/test-support';
import { describe, expect, it } from 'vitest';
import { badRegisterValue } from '../src/handler-values.js';
import {
  ConfigBuilder,
  type DeviceModel,
  loadModel,
  type ModelBar,
  register32,
  SimDevice,
} from '../src/index.js';

const BARS: ModelBar[] = [{ index: 0, size: 0x1000, kind: 'mem32', prefetchable: false }];

/** A model with a raw I/O register at BAR0+0x10 whose read returns `value` (impl up to `max` bytes). */
function returning(value: unknown, max = 4, extra: Partial<DeviceModel> = {}): DeviceModel {
  return {
    name: 'returner',
    config: new ConfigBuilder().build({ vendor: 0x1234, device: 0x0003, classCode: 0xff0000 }, BARS),
    bars: BARS,
    vga: true,
    setup(ctx) {
      ctx.bar(0).region.addSubregionOverlap(
        0x10,
        MemoryRegion.io('returner reg', 8, {
          read: () => value as number,
          write: () => {},
          impl: { min: 1, max },
          valid: { min: 1, max: 8 },
        }),
        1,
      );
      register32(ctx.bar(0).region, ctx.bar(0).memory, 0x20, 'returner reg32', {
        read: () => value as number,
      });
      return { vgaRead: () => value as number };
    },
    ...extra,
  };
}

const registerValue = (...parts: RegExp[]) =>
  expect.objectContaining({
    code: 'ERR_MODEL_REGISTER_VALUE',
    message: expect.stringMatching(new RegExp(parts.map((p) => p.source).join('.*'))),
  });

describe('values returned by register handlers', () => {
  const BAD_4: [unknown, RegExp][] = [
    [Number.NaN, /NaN/],
    [Number.POSITIVE_INFINITY, /Infinity/],
    [Number.NEGATIVE_INFINITY, /-Infinity/],
    [-1, /-1 .*does not fit 4 bytes/],
    [2 ** 32, /does not fit 4 bytes/],
    [1.5, /1\.5, which is not an integer/],
    ['7', /a string \("7"\)/],
    [7n, /a bigint/],
    [undefined, /undefined/],
    [null, /null/],
    [{}, /an object/],
  ];

  it.each(BAD_4)(
    'a raw I/O register returning %s is a typed error naming the model, BAR and offset',
    (value, what) => {
      using dev = new SimDevice(returning(value), 'sim:returner');
      expect(() => dev.regionRead(0, 0x10, 4)).toThrow(
        registerValue(/model returner/, /BAR 0 \+0x10/, /'returner reg'/, what, /4-byte read/),
      );
    },
  );

  it.each(BAD_4)('a register32 handler returning %s is refused too', (value, what) => {
    using dev = new SimDevice(returning(value), 'sim:returner');
    expect(() => dev.regionRead(0, 0x20, 4)).toThrow(registerValue(/BAR 0 \+0x20/, /'returner reg32'/, what));
    expect(() => dev.regionRead(0, 0x21, 1)).toThrow(registerValue(/BAR 0 \+0x21/, what));
  });

  it('checks the width: 0x100 from a 1-byte read; a bigint where the 8-byte seam read reaches the handler as dwords', () => {
    using dev = new SimDevice(returning(0x100, 1), 'sim:returner');
    expect(() => dev.regionRead(0, 0x10, 1)).toThrow(
      registerValue(/256 \(0x100\), which does not fit 1 byte/),
    );
    // Linux 6.1 has no 64-bit BAR path: an 8-byte access is two 4-byte ones, so a handler sees size 4.
    using dev8 = new SimDevice(returning(5n, 8), 'sim:returner');
    expect(() => dev8.regionRead64(0, 0x10)).toThrow(
      registerValue(/BAR 0 \+0x10/, /a bigint \(5n\), where a 4-byte read returns a number/),
    );
  });

  it('has a rule for 8-byte handler reads too (a model reading its own tree may make them)', () => {
    expect(badRegisterValue(5, 8)).toMatch(/where an 8-byte read returns a bigint/);
    expect(badRegisterValue(1n << 64n, 8)).toMatch(/does not fit 8 bytes/);
    expect(badRegisterValue(0xfedcba9876543210n, 8)).toBeNull();
  });

  it('lets valid values through unchanged', () => {
    using dev = new SimDevice(returning(0xfedcba98), 'sim:returner');
    expect(dev.regionRead(0, 0x10, 4)).toBe(0xfedcba98);
    expect(dev.regionRead(0, 0x20, 4)).toBe(0xfedcba98);
    expect(dev.regionRead(0, 0x21, 1)).toBe(0xba);
    expect(dev.regionRead64(0, 0x10)).toBe(0xfedcba98fedcba98n); // two dword reads of the same register
  });

  it('checks what vgaRead returns', () => {
    using dev = new SimDevice(returning(Number.NaN), 'sim:returner');
    expect(() => dev.regionRead(8, 0x3c3, 1)).toThrow(registerValue(/VGA \+0x3c3/, /'vgaRead'/, /NaN/));
  });

  it('checks a register the model adds after setup, from its first access', () => {
    let late: (() => void) | undefined;
    const model: DeviceModel = {
      ...returning(0),
      setup(ctx) {
        late = () =>
          ctx
            .bar(0)
            .region.addSubregionOverlap(
              0x40,
              MemoryRegion.io('late reg', 4, { read: () => Number.NaN, write: () => {} }),
              1,
            );
        return undefined;
      },
    };
    using dev = new SimDevice(model, 'sim:late');
    expect(dev.regionRead(0, 0x40, 4)).toBe(0);
    late!();
    expect(() => dev.regionRead(0, 0x40, 4)).toThrow(registerValue(/'late reg'/, /NaN/));
  });

  it('names the plugin file for a model loaded from one', async () => {
    const path = new URL('./plugins/tiny-model.mjs', import.meta.url).pathname;
    const model = await loadModel(path);
    expect(model.source).toBe(path);
    const bad: DeviceModel = {
      ...model,
      setup(ctx) {
        register32(ctx.bar(0).region, ctx.bar(0).memory, 0, 'tiny reg', { read: () => Number.NaN });
        return undefined;
      },
    };
    using dev = new SimDevice(bad, 'sim:tiny');
    expect(() => dev.regionRead(0, 0, 4)).toThrow(
      registerValue(new RegExp(`plugin ${path} \\(model tiny\\)`), /BAR 0/),
    );
  });
});

describe('the BARs a model declares', () => {
  const bar = (b: Record<string, unknown>) => ({
    index: 0,
    size: 0x1000,
    kind: 'mem32',
    prefetchable: false,
    ...b,
  });
  const CASES: [string, Record<string, unknown>[], RegExp][] = [
    ['index 6', [bar({ index: 6 })], /bars\[0\]\.index: expected a BAR index 0-5, got 6/],
    ['index -1', [bar({ index: -1 })], /bars\[0\]\.index/],
    ['index 1.5', [bar({ index: 1.5 })], /bars\[0\]\.index/],
    ['index "0"', [bar({ index: '0' })], /bars\[0\]\.index.*got "0"/],
    ['a duplicate', [bar({}), bar({})], /bars\[1\]\.index: BAR register 0 is already used by bars\[0\]/],
    ['mem64 at BAR 5', [bar({ index: 5, kind: 'mem64' })], /BAR 5 has no upper half/],
    [
      'mem64 over the next BAR',
      [bar({ kind: 'mem64' }), bar({ index: 1 })],
      /bars\[1\]\.index: BAR register 1/,
    ],
    [
      'kind mem16',
      [bar({ kind: 'mem16' })],
      /bars\[0\]\.kind: expected "mem32", "mem64" or "io", got "mem16"/,
    ],
    ['size 3000', [bar({ size: 3000 })], /bars\[0\]\.size: expected a power of two, got 3000/],
    ['size 0x180000000', [bar({ kind: 'mem64', size: 0x180000000 })], /expected a power of two/],
    ['size 4294967297', [bar({ kind: 'mem64', size: 4294967297 })], /expected a power of two/],
    ['size "4K"', [bar({ size: '4K' })], /expected a power of two, got "4K"/],
    ['an I/O BAR of 2 bytes', [bar({ kind: 'io', size: 2 })], /I\/O BAR of 4 to 256 bytes/],
    ['an I/O BAR of 512 bytes', [bar({ kind: 'io', size: 512 })], /I\/O BAR of 4 to 256 bytes/],
    ['a memory BAR of 8 bytes', [bar({ size: 8 })], /at least 16 bytes/],
    ['a 4 GiB 32-bit BAR', [bar({ size: 2 ** 32 })], /a 32-bit BAR decodes at most 2 GiB/],
    ['prefetchable "yes"', [bar({ prefetchable: 'yes' })], /bars\[0\]\.prefetchable/],
    [
      'seven BARs',
      Array.from({ length: 7 }, (_, i) => bar({ index: i })),
      /bars: expected an array of at most 6/,
    ],
  ];

  it.each(CASES)('refuses %s naming the field, and leaks nothing', (_what, bars, message) => {
    const before = resourceCounts();
    const model = {
      name: 'bad-bars',
      source: './bad-bars.mjs',
      config: new Uint8Array(256),
      bars,
    } as unknown as DeviceModel;
    expect(() => new SimDevice(model, 'sim:bad')).toThrow(
      expect.objectContaining({
        code: 'ERR_MODEL_INVALID',
        message: expect.stringMatching(
          new RegExp(`plugin ./bad-bars.mjs \\(model bad-bars\\): .*${message.source}`),
        ),
      }),
    );
    expect(resourceCounts()).toEqual(before);
  });

  it('refuses a ROM whose size is not a power of two', () => {
    expect(
      () =>
        new SimDevice(
          {
            name: 'big',
            config: new ConfigBuilder().build({ vendor: 1, device: 1, classCode: 0 }, []),
            bars: [],
            rom: new Uint8Array(3000),
          },
          'sim:big',
        ),
    ).toThrow(
      expect.objectContaining({ code: 'ERR_MODEL_INVALID', message: expect.stringMatching(/rom: /) }),
    );
  });
});

describe('exceptions from a plugin', () => {
  const file = (name: string) => new URL(`./plugins/${name}`, import.meta.url).pathname;

  it('a module that throws a non-Error while loading is reported, not a TypeError', async () => {
    const path = file('throwing-module.mjs');
    await expect(loadModel(path)).rejects.toThrow(
      expect.objectContaining({
        code: 'ERR_PLUGIN_LOAD',
        message: `cannot load device model plugin ${path}: undefined`,
      }),
    );
  });

  it('a throwing factory is reported naming the plugin file', async () => {
    const path = file('throwing-factory.mjs');
    await expect(loadModel(path)).rejects.toThrow(
      expect.objectContaining({
        code: 'ERR_PLUGIN_FACTORY',
        message: expect.stringMatching(
          new RegExp(`plugin ${path}: its model factory threw: the factory of this plugin is broken`),
        ),
        cause: expect.any(RangeError),
      }),
    );
  });

  it('a throwing setup is reported naming the plugin file, and the BARs it backed are released', async () => {
    const path = file('throwing-setup.mjs');
    const model = await loadModel(path);
    const before = resourceCounts();
    expect(() => new SimDevice(model, 'sim:throws')).toThrow(
      expect.objectContaining({
        code: 'ERR_MODEL_SETUP',
        message: expect.stringMatching(
          new RegExp(
            `plugin ${path} \\(model throws-in-setup\\): setup failed: "setup of this plugin is broken"`,
          ),
        ),
      }),
    );
    expect(resourceCounts()).toEqual(before);
  });

  it('hooks of the wrong shape are refused at setup, not when they are first called', () => {
    const model: DeviceModel = {
      ...returning(0),
      setup: () => ({ reset: 'soon' }) as never,
    };
    expect(() => new SimDevice(model, 'sim:hooks')).toThrow(
      expect.objectContaining({
        code: 'ERR_MODEL_INVALID',
        message: expect.stringMatching(/setup\(\)\.reset: expected a function, got "soon"/),
      }),
    );
  });
});
