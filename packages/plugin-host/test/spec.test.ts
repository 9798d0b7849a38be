import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadModel, openSimDevice, parseDeviceSpec, parseSimSpecifier, SimDevice } from '../src/index.js';

const dir = mkdtempSync(join(tmpdir(), 'vfio-ts-spec-'));
const good = {
  name: 'mydev',
  vendor: '0x1234',
  device: '0x5678',
  class: '0x020000',
  bars: [
    { index: 0, type: 'mem64', size: '16K' },
    { index: 2, type: 'io', size: 32 },
  ],
  msix: {
    vectors: 8,
    table: { bar: 0, offset: '0x2000' },
    pba: { bar: 0, offset: '0x3000' },
    mode: 'sparse',
  },
  pageSize: 4096,
  registers: [{ bar: 0, offset: '0x10', size: 4, value: '0xcafef00d' }],
};

function specFile(name: string, content: unknown): string {
  const path = join(dir, `${name}.json`);
  writeFileSync(path, typeof content === 'string' ? content : JSON.stringify(content));
  return path;
}

describe('device spec files', () => {
  it('describe a device without code', () => {
    using dev = openSimDevice(`sim:${specFile('good', good)}`);
    expect(dev.regionRead(7, 0, 4)).toBe(0x56781234);
    expect(dev.regionInfo(0).capabilities).toEqual([
      {
        kind: 'sparse-mmap',
        id: 1,
        version: 1,
        areas: [
          { offset: 0, size: 0x2000 },
          { offset: 0x3000, size: 0x1000 },
        ],
      },
    ]);
    expect(dev.regionRead(0, 0x10, 4)).toBe(0xcafef00d);
    expect(dev.irqInfo(2).count).toBe(8);
    expect(dev.regionRead(7, 0x10, 4) & 0xf).toBe(4); // 64-bit memory BAR
    dev.regionWrite(0, 0x10, 0, 4);
    dev.reset();
    expect(dev.regionRead(0, 0x10, 4)).toBe(0xcafef00d);
  });

  const malformed: [string, (s: typeof good) => unknown, string][] = [
    [
      'a size that is not a power of two',
      (s) => ({ ...s, bars: [{ index: 0, type: 'mem64', size: 3000 }] }),
      'bars[0].size: expected a power of two',
    ],
    [
      'a BAR index out of range',
      (s) => ({ ...s, bars: [{ index: 6, type: 'mem32', size: 4096 }] }),
      'bars[0].index: Too big',
    ],
    [
      'a 64-bit BAR at index 5',
      (s) => ({ ...s, bars: [{ index: 5, type: 'mem64', size: 4096 }], msix: undefined }),
      'bars[0].index: a 64-bit BAR takes two registers',
    ],
    [
      'overlapping BAR registers',
      (s) => ({ ...s, bars: [...s.bars, { index: 1, type: 'mem32', size: 4096 }] }),
      'bars[2].index: BAR 1 is already defined by bars[0]',
    ],
    [
      'an unknown BAR type',
      (s) => ({ ...s, bars: [{ index: 0, type: 'mem16', size: 4096 }] }),
      'bars[0].type: Invalid option: expected one of "mem32"|"mem64"|"io"',
    ],
    ['a vendor ID over 16 bits', (s) => ({ ...s, vendor: '0x12345' }), 'vendor: expected a 16-bit vendor ID'],
    ['a non-numeric class', (s) => ({ ...s, class: 'network' }), 'class: expected a non-negative integer'],
    [
      'an MSI-X table that does not fit',
      (s) => ({ ...s, msix: { ...s.msix, vectors: 600 } }),
      'msix.table.offset: the table (0x2580 bytes at 0x2000) does not fit in BAR 0',
    ],
    [
      'an MSI-X table in an I/O BAR',
      (s) => ({ ...s, msix: { ...s.msix, table: { bar: 2, offset: 0 } } }),
      'msix.table.bar: expected a memory BAR defined in "bars", got BAR 2',
    ],
    [
      'an unknown MSI-X mode',
      (s) => ({ ...s, msix: { ...s.msix, mode: 'full' } }),
      'msix.mode: Invalid option',
    ],
    ['an unsupported page size', (s) => ({ ...s, pageSize: 8192 }), 'pageSize: Invalid input'],
    [
      'a register outside its BAR',
      (s) => ({ ...s, registers: [{ bar: 0, offset: '0x4000', size: 4, value: 1 }] }),
      'registers[0].offset: expected an offset aligned to 4 inside BAR 0',
    ],
    [
      'a register value too wide',
      (s) => ({ ...s, registers: [{ bar: 0, offset: 0, size: 1, value: 256 }] }),
      'registers[0].value: expected a value that fits 1 bytes',
    ],
    ['an unknown field', (s) => ({ ...s, colour: 'red' }), 'Unrecognized key: "colour"'],
    ['a missing field', (s) => ({ ...s, name: undefined }), 'name: Invalid input: expected string'],
  ];

  it.each(malformed)('reject %s with the path and what was expected', (_what, mutate, message) => {
    const path = specFile(`bad-${malformed.findIndex((m) => m[0] === _what)}`, mutate(structuredClone(good)));
    expect(() => openSimDevice(`sim:${path}`)).toThrow(expect.objectContaining({ code: 'ERR_MODEL_SPEC' }));
    expect(() => openSimDevice(`sim:${path}`)).toThrow(message);
  });

  it('say what is wrong with a file that is missing or not JSON', () => {
    expect(() => openSimDevice(`sim:${join(dir, 'nope.json')}`)).toThrow(
      /cannot read device spec file .*nope\.json \(ENOENT\)/,
    );
    expect(() => openSimDevice(`sim:${specFile('broken', '{"name": ')}`)).toThrow(/is not valid JSON/);
  });

  it('list every problem at once', () => {
    expect(() => parseDeviceSpec({ ...good, vendor: -1, device: 'x' })).toThrow(/vendor: .*\n {2}device: /s);
  });
});

describe('specifiers and plugins', () => {
  it('parse sim:<name> and sim:<path>.json and name the built-ins on a mistake', () => {
    expect(parseSimSpecifier('sim:nvme')).toEqual({ kind: 'builtin', name: 'nvme' });
    expect(parseSimSpecifier('sim:./x.json')).toEqual({ kind: 'spec-file', path: './x.json' });
    expect(() => parseSimSpecifier('sim:nvmf')).toThrow(
      /no built-in model "nvmf".*nvme, e1000e, virtio-net, nvidia-gpu, ati-gpu/,
    );
    expect(() => parseSimSpecifier('nvme')).toThrow(/is not a simulated device/);
  });

  it('load a model from a plugin module path', async () => {
    const model = await loadModel(new URL('./plugins/tiny-model.mjs', import.meta.url).pathname);
    using dev = new SimDevice(model, 'tiny');
    expect(dev.regionRead(0, 0, 4)).toBe(0x7e57);
    expect(dev.deviceInfo().flags).toBe(2); // no reset hook: PCI only
    await expect(loadModel('./no/such/plugin.mjs')).rejects.toThrow(/cannot load device model plugin/);
  });
});
