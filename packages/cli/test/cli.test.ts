/**
 * End-to-end: the built binary, spawned as a user would run it, on every
 * built-in model. Kernel paths (list, inspect and read on real devices) are
 * exercised by the VM tier; here `list` runs against a fake sysfs.
 */
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { addFakePciDevice, makeFakeSysfs } from '@vfio-ts/test-support';
import { describe, expect, it } from 'vitest';
import { cli as run } from './run-cli.js';

function cli(args: string[], env: Record<string, string> = {}, uid?: number) {
  return run(args, env, uid === undefined ? {} : { uid, gid: uid });
}

const MODELS = {
  'sim:nvme': {
    vendor: 0x1b36,
    deviceId: 0x0010,
    class: 0x010802,
    bars: [[0, 'mem64', 0x4000]],
    msixBar: 0,
    entries: 65,
  },
  'sim:e1000e': {
    vendor: 0x8086,
    deviceId: 0x10d3,
    class: 0x020000,
    bars: [
      [0, 'mem32', 0x20000],
      [1, 'mem32', 0x20000],
      [2, 'io', 0x20],
      [3, 'mem32', 0x4000],
    ],
    msixBar: 3,
    entries: 5,
  },
  'sim:virtio-net': {
    vendor: 0x1af4,
    deviceId: 0x1041,
    class: 0x020000,
    bars: [
      [1, 'mem32', 0x1000],
      [4, 'mem64', 0x4000],
    ],
    msixBar: 1,
    entries: 4,
  },
  'sim:nvidia-gpu': {
    vendor: 0x10de,
    deviceId: 0x1db6,
    class: 0x030000,
    bars: [
      [0, 'mem32', 0x1000000],
      [1, 'mem64', 0x10000000],
      [3, 'mem64', 0x2000000],
      [5, 'io', 0x80],
    ],
    msixBar: null,
    entries: 0,
  },
  'sim:ati-gpu': {
    vendor: 0x1002,
    deviceId: 0x67df,
    class: 0x030000,
    bars: [
      [0, 'mem64', 0x10000000],
      [2, 'mem64', 0x40000],
      [4, 'io', 0x100],
      [5, 'mem32', 0x40000],
    ],
    msixBar: null,
    entries: 0,
  },
} as const;

describe('inspect --json on every built-in model', () => {
  it.each(Object.entries(MODELS))('%s matches the model', (device, want) => {
    const r = cli(['inspect', device, '--json']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const doc = JSON.parse(r.stdout);
    expect(doc).toMatchObject({
      device,
      backend: 'sim',
      vendor: want.vendor,
      deviceId: want.deviceId,
      class: want.class,
    });
    expect(
      doc.bars.map((b: { index: number; type: string; size: number }) => [b.index, b.type, b.size]),
    ).toEqual(want.bars);
    for (const b of doc.bars) expect(b.address).toBeGreaterThan(0);
    const config = doc.regions.find((r: { name: string }) => r.name === 'CONFIG');
    expect(config.flags).toEqual(['READ', 'WRITE']);
    if (want.msixBar === null) expect(doc.msix).toBeNull();
    else {
      expect(doc.msix).toMatchObject({
        tableBar: want.msixBar,
        entries: want.entries,
        mappable: true,
        fixup: null,
      });
      const bar = doc.regions.find((r: { index: number }) => r.index === want.msixBar);
      expect(bar.caps).toEqual([{ id: 3, name: 'MSIX_MAPPABLE', version: 1 }]);
      expect(bar.mmaps).toEqual([{ offset: 0, size: bar.size }]);
    }
    expect(doc.irqs.map((q: { name: string }) => q.name)).toContain('MSIX');
  });

  it('shows the fixup and the mapped areas when MSIX_MAPPABLE is not reported', () => {
    const doc = JSON.parse(
      cli(['--option', 'sim-msix-mode=mmap-no-cap', 'inspect', 'sim:nvme', '--json']).stdout,
    );
    expect(doc.msix).toMatchObject({
      mappable: false,
      fixup: [
        { offset: 0, size: 0x2000 },
        { offset: 0x3000, size: 0x1000 },
      ],
    });
    expect(doc.regions[0].mmaps).toEqual([
      { offset: 0, size: 0x2000 },
      { offset: 0x3000, size: 0x1000 },
    ]);
  });

  it('lists the quirks applied with x-vga', () => {
    const doc = JSON.parse(cli(['--option', 'x-vga=on', 'inspect', 'sim:nvidia-gpu', '--json']).stdout);
    expect(doc.quirks).toEqual([
      { bar: 0, name: 'vfio-nvidia-bar0-88000-mirror-quirk' },
      { bar: 0, name: 'vfio-nvidia-bar0-1800-mirror-quirk' },
      { bar: 5, name: 'vfio-nvidia-bar5-window-address-quirk' },
      { bar: 5, name: 'vfio-nvidia-bar5-window-data-quirk' },
      { bar: 5, name: 'vfio-nvidia-bar5-master-quirk' },
      { bar: 5, name: 'vfio-nvidia-bar5-enable-quirk' },
    ]);
    expect(doc.regions.find((r: { name: string }) => r.name === 'VGA')).toMatchObject({
      size: 0xc0000,
      flags: ['READ', 'WRITE'],
    });
  });
});

describe('human output', () => {
  it.each(Object.keys(MODELS))('inspect %s', async (device) => {
    const r = cli(['inspect', device]);
    expect(r.code).toBe(0);
    await expect(r.stdout).toMatchFileSnapshot(`__snapshots__/inspect-${device.slice(4)}.txt`);
  });

  it.each(Object.keys(MODELS))('mtree and mtree -f %s', async (device) => {
    const tree = cli(['mtree', device]);
    const flat = cli(['mtree', '-f', '-D', device]);
    expect([tree.code, flat.code]).toEqual([0, 0]);
    await expect(`${tree.stdout}---\n${flat.stdout}`).toMatchFileSnapshot(
      `__snapshots__/mtree-${device.slice(4)}.txt`,
    );
  });
});

describe('register access', () => {
  it('reads the same value through the fast and the slow path', () => {
    const fast = JSON.parse(cli(['read', 'sim:nvme', '0', '0x8', '--json']).stdout);
    const slow = JSON.parse(cli(['read', 'sim:nvme', '0', '0x8', '--slow', '--json']).stdout);
    expect(fast).toEqual({ value: 0x10400, path: 'fast', region: 'sim:nvme BAR 0 mmaps[0]' });
    expect(slow).toEqual({ value: 0x10400, path: 'slow', region: 'sim:nvme BAR 0' });
    const cap = JSON.parse(cli(['read', 'sim:nvme', '0', '0', '--size', '8', '--json']).stdout);
    expect(cap.value).toBe(0x4000200f0107ffn.toString());
    const io = JSON.parse(cli(['read', 'sim:e1000e', '2', '4', '--json']).stdout);
    expect(io.path).toBe('slow');
  });

  it('writes through the tree', () => {
    const r = cli(['write', 'sim:nvme', '0', '0x24', '0x1f001f', '--json']);
    expect(JSON.parse(r.stdout)).toEqual({
      value: 0x1f001f,
      path: 'fast',
      region: 'sim:nvme BAR 0 mmaps[0]',
    });
  });

  it('traces in QEMU format on stderr', () => {
    const r = cli([
      '--trace',
      'vfio_region_*',
      '--trace',
      'vfio_msix_fixup',
      '--option',
      'sim-msix-mode=mmap-no-cap',
      'read',
      'sim:nvme',
      '0',
      '0x8',
      '--slow',
    ]);
    expect(r.code).toBe(0);
    const lines = r.stderr.trim().split('\n');
    expect(lines[0]).toBe(
      'vfio_region_setup Device sim:nvme, region 0 "sim:nvme BAR 0", flags: 0x7, offset: 0x0, size: 0x4000',
    );
    expect(lines).toContain('vfio_region_read  (sim:nvme:region0+0x8, 4) = 0x10400');
    expect(lines).not.toContain('vfio_msix_fixup  (sim:nvme) MSI-X region 0 mmap fixup [0x0 - 0x2000]'); // x-no-mmap: nothing to fix up
    expect(lines.at(-1)).toBe('vfio_region_finalize Device sim:nvme, region 0');
    expect(r.stdout).toBe('0x00010400  (slow path, sim:nvme BAR 0)\n');
  });

  it('benchmarks fast against slow reads', () => {
    const doc = JSON.parse(cli(['bench', 'sim:nvme', '--iterations', '20000', '--json']).stdout);
    expect(doc.bar).toBe(0);
    expect(doc.slowNs).toBeGreaterThan(doc.fastNs);
  });
});

describe('bad input: exit 2 and a precise message', () => {
  const dir = mkdtempSync(join(tmpdir(), 'vfio-ts-cli-'));
  const malformed = join(dir, 'bad.json');
  writeFileSync(
    malformed,
    JSON.stringify({
      name: 'x',
      vendor: 1,
      device: 2,
      class: 0,
      bars: [{ index: 0, type: 'mem32', size: 100 }],
    }),
  );
  const cases: [string, string[], RegExp][] = [
    ['unknown device syntax', ['inspect', 'nvme'], /"nvme" is not a device/],
    ['unknown model', ['inspect', 'sim:nvmf'], /no built-in model "nvmf"/],
    [
      'missing spec file',
      ['inspect', join(dir, 'nope.json').replace(/^/, 'sim:')],
      /cannot read device spec file .*nope\.json \(ENOENT\)/,
    ],
    ['malformed spec', ['inspect', `sim:${malformed}`], /bars\[0\]\.size: expected a power of two/],
    ['unknown option', ['--option', 'x-turbo=on', 'inspect', 'sim:nvme'], /unknown device option "x-turbo"/],
    ['bad BAR index', ['read', 'sim:nvme', '9', '0'], /BAR "9" is not a BAR index/],
    ['absent BAR', ['read', 'sim:nvme', '2', '0'], /has no BAR 2/],
    [
      'offset out of range',
      ['read', 'sim:nvme', '0', '0x4000'],
      /offset 0x4000 \(\+4\) is outside BAR 0 of 0x4000 bytes/,
    ],
    ['unaligned size', ['read', 'sim:nvme', '0', '2'], /offset 0x2 is not aligned to the 4-byte access/],
    ['bad size', ['read', 'sim:nvme', '0', '0', '--size', '3'], /--size 3 is not an access size/],
    [
      'value too large',
      ['write', 'sim:nvme', '0', '0', '0x1ff', '--size', '1'],
      /value 0x1ff does not fit a 1-byte access/,
    ],
    ['vfio-user without a socket', ['inspect', 'vfio-user:'], /"vfio-user:" names no socket/],
    [
      'bad relocation',
      ['--option', 'x-msix-relocation=bar9', 'inspect', 'sim:nvme'],
      /x-msix-relocation must be one of off, auto, bar0, bar1, bar2, bar3, bar4, bar5, not "bar9"/,
    ],
    ['unknown command', ['frob'], /unknown command 'frob'/],
  ];
  it.each(cases)('%s', (_what, args, message) => {
    const r = cli(args);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(message);
    expect(r.stdout).toBe('');
    expect(r.stderr.trim().split('\n').length).toBeLessThanOrEqual(2);
  });

  it('non-root bind', () => {
    const r = cli(['bind', '0000:00:1f.7'], {}, 65534);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/bind needs root \(it writes to \/sys\/bus\/pci\)\n {2}run it with sudo/);
  });
});

describe('x-msix-relocation', () => {
  it('inspect shows where the table went, and where it was', () => {
    const r = cli(['--option', 'x-msix-relocation=bar2', 'inspect', 'sim:nvme']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(
      [
        'MSI-X  cap @0x40  65 entries  table BAR 2 +0x0  PBA BAR 2 +0x410',
        '       relocated (x-msix-relocation) from table BAR 0 +0x2000  PBA BAR 0 +0x3000',
        '       BAR 0 is MSIX_MAPPABLE: mapped whole',
      ].join('\n'),
    );
    const doc = JSON.parse(
      cli(['--json', '--option', 'x-msix-relocation=bar0', 'inspect', 'sim:nvme']).stdout,
    );
    expect(doc.msix).toMatchObject({
      tableBar: 0,
      tableOffset: 0x4000,
      relocatedFrom: { tableOffset: 0x2000 },
    });
  });

  it('a relocation the device cannot take is a device error (exit 1) that says what to do', () => {
    const r = cli(['--option', 'x-msix-relocation=auto', 'inspect', 'sim:nvme']);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(
      'vfio-ts: sim:nvme: No automatic MSI-X relocation available for device 1b36:0010\n  name the BAR instead, e.g. x-msix-relocation=bar2\n',
    );
  });
});

describe('list', () => {
  it('says so and exits 0 on a machine without IOMMU groups', () => {
    const r = cli(['list'], { VFIO_TS_SYSFS_ROOT: mkdtempSync(join(tmpdir(), 'nosys-')) });
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^No IOMMU groups on this machine/);
  });

  it('shows groups, devices and viability from sysfs', () => {
    const sys = makeFakeSysfs();
    const dev = (bdf: string, group: number, driver: string | null, ids: [string, string, string]) =>
      addFakePciDevice(sys, bdf, group, driver, ids.join(' '));
    dev('0000:00:03.0', 3, 'vfio-pci', ['0x1b36', '0x0010', '0x010802']);
    dev('0000:00:04.0', 4, 'e1000e', ['0x8086', '0x10d3', '0x020000']);
    dev('0000:00:04.1', 4, 'vfio-pci', ['0x8086', '0x10d3', '0x020000']);
    const env = { VFIO_TS_SYSFS_ROOT: sys };
    const doc = JSON.parse(cli(['list', '--json'], env).stdout);
    expect(doc.groups).toEqual([
      {
        group: 3,
        viable: true,
        devices: [
          {
            bdf: '0000:00:03.0',
            vendor: 0x1b36,
            device: 0x10,
            class: 0x010802,
            driver: 'vfio-pci',
            interfaces: ['group'],
          },
        ],
        vanished: [],
      },
      {
        group: 4,
        viable: false,
        devices: [
          {
            bdf: '0000:00:04.1',
            vendor: 0x8086,
            device: 0x10d3,
            class: 0x020000,
            driver: 'vfio-pci',
            interfaces: ['group'],
          },
        ],
        vanished: [],
      },
    ]);
    const all = JSON.parse(cli(['list', '--all', '--json'], env).stdout);
    expect(all.groups[1].devices.map((d: { bdf: string }) => d.bdf)).toEqual([
      '0000:00:04.0',
      '0000:00:04.1',
    ]);
    const human = cli(['list', '--all'], env).stdout;
    expect(human).toContain('4      no      0000:00:04.0  8086:10d3  0x020000  e1000e    -');
    expect(human).toContain('0000:00:04.1  8086:10d3  0x020000  vfio-pci  group');
    // A kernel with device cdevs (6.6+ with iommufd) lists both interfaces.
    mkdirSync(join(sys, 'devices/pci0000:00/0000:00:03.0/vfio-dev/vfio0'), { recursive: true });
    writeFileSync(join(sys, 'devices/pci0000:00/0000:00:03.0/vfio-dev/vfio0/dev'), '244:0\n');
    const both = JSON.parse(cli(['list', '--json'], env).stdout);
    expect(both.groups[0].devices[0].interfaces).toEqual(['group', 'cdev']);
    expect(cli(['list'], env).stdout).toContain('vfio-pci  group,cdev');
  });
});

describe('help and version', () => {
  it('prints help for every command and the version', () => {
    for (const cmd of ['list', 'inspect', 'mtree', 'read', 'write', 'bench', 'bind', 'unbind']) {
      const r = cli([cmd, '--help']);
      expect(r.code, cmd).toBe(0);
      expect(r.stdout).toContain(`Usage: vfio-ts ${cmd}`);
    }
    expect(cli(['--version']).stdout.trim()).toMatch(/^\d+\.\d+\.\d+$/);
  });
});
