/**
 * `bind`/`unbind` through the binary on fake machines (VFIO_TS_SYSFS_ROOT or
 * --sysfs-root): every refusal names its reason and what to do, changes
 * nothing under the tree, and never touches the real /sys. The decisions are
 * vfio-sys's (bind-safety.test.ts there covers them on a driver-core model);
 * here the printing, exit codes and the one root option.
 */
import { FakeSystem } from '@vfio-ts/test-support';
import { describe, expect, it } from 'vitest';
import { cli } from './run-cli.js';

const AHCI = '0x8086 0x2922 0x010601';

const machines: Record<string, { make: () => FakeSystem; bdf: string; stderr: RegExp; kinds: string[] }> = {
  'an AHCI controller with the mounted root disk': {
    make: () =>
      new FakeSystem()
        .addDevice('0000:00:1f.2', { group: 10, driver: 'ahci', ids: AHCI })
        .addDisk('0000:00:1f.2', 'ata1/host0/target0:0:0/0:0:0:0', 'sda', '8:0', [['sda2', '8:2']])
        .mount('8:2', '/dev/sda2', '/', 'ext4'),
    bdf: '0000:00:1f.2',
    stderr: /- 0000:00:1f.2 holds sda \(sda2\), mounted on \/ \(ext4\)\n {4}unmount it first \(umount \/\)/,
    kinds: ['mounted-filesystem'],
  },
  'an NVMe disk with swap': {
    make: () =>
      new FakeSystem()
        .addDevice('0000:02:00.0', { group: 14, driver: 'nvme', ids: '0x144d 0xa808 0x010802' })
        .addDisk('0000:02:00.0', 'nvme/nvme0', 'nvme0n1', '259:0', [['nvme0n1p3', '259:3']])
        .swapOn('/dev/nvme0n1p3'),
    bdf: '02:00.0',
    stderr: /nvme0n1p3\), which is active swap\n {4}turn it off first \(swapoff \/dev\/nvme0n1p3\)/,
    kinds: ['active-swap'],
  },
  'a NIC that is up': {
    make: () =>
      new FakeSystem()
        .addDevice('0000:00:19.0', { group: 6, driver: 'e1000e', ids: '0x8086 0x15bc 0x020000' })
        .addInterface('0000:00:19.0', 'eno1', true),
    bdf: '0000:00:19.0',
    stderr: /drives network interface eno1, which is up\n {4}.*ip link set eno1 down/,
    kinds: ['interface-up'],
  },
  'a non-viable group': {
    make: () =>
      new FakeSystem()
        .addDevice('0000:00:1f.0', { group: 10, driver: 'lpc_ich', ids: '0x8086 0x2918 0x060100' })
        .addDevice('0000:00:1f.3', { group: 10, driver: 'i801_smbus', ids: '0x8086 0x2930 0x0c0500' }),
    bdf: '0000:00:1f.3',
    stderr:
      /also holds 0000:00:1f.0 \(bound to lpc_ich\), still on host drivers.*\n {4}bind the whole group with --group/,
    kinds: ['group-not-viable'],
  },
  'no IOMMU group': {
    make: () => new FakeSystem().addDevice('0000:00:1f.2', { group: null, driver: 'ahci', ids: AHCI }),
    bdf: '0000:00:1f.2',
    stderr: /has no IOMMU group, so vfio-pci cannot take it/,
    kinds: ['no-iommu-group'],
  },
};

describe('bind refuses, says why and what to do, and changes nothing', () => {
  it.each(Object.entries(machines))('%s', (_name, m) => {
    const sys = m.make();
    const before = sys.hash();
    const r = cli(['bind', m.bdf], { VFIO_TS_SYSFS_ROOT: sys.sysfsRoot });
    expect(r.stderr).toMatch(/^vfio-ts: refusing to bind \S+ to vfio-pci:\n/);
    expect(r.stderr).toMatch(m.stderr);
    expect(r.stderr).toMatch(/\n {2}fix each reason as it says; --force binds anyway\n$/);
    expect([r.code, r.stdout]).toEqual([1, '']);
    // The same refusal as one JSON document, through --sysfs-root instead of the variable.
    const j = cli(['--json', 'bind', m.bdf, '--sysfs-root', sys.sysfsRoot]);
    expect([j.code, j.stderr]).toEqual([1, '']);
    const doc = JSON.parse(j.stdout);
    expect(doc.error).toMatchObject({ code: 'ERR_VFIO_BIND_UNSAFE', hint: expect.stringMatching(/--force/) });
    expect(doc.error.hazards.map((h: { kind: string }) => h.kind)).toEqual(m.kinds);
    expect(sys.hash()).toBe(before);
  });
});

describe('bind and unbind on the fake tree', () => {
  it('checks that vfio-pci took the device, and puts the old driver back when it did not', () => {
    // A tree of plain files never binds anything: exactly the case the check is for.
    const sys = new FakeSystem().addDevice('0000:00:19.0', { group: 6, driver: 'e1000e' });
    const r = cli(['bind', '0000:00:19.0'], { VFIO_TS_SYSFS_ROOT: sys.sysfsRoot });
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(
      'vfio-ts: vfio-pci did not take 0000:00:19.0 (it has e1000e after the probe); put it back on e1000e\n' +
        '  the kernel log says why vfio-pci refused it (dmesg | tail); is the vfio-pci module the one loaded?\n',
    );
    expect(sys.overrideOf('0000:00:19.0')).toBe('');
  });

  it('--force overrides the checks only: the result is still checked', () => {
    const sys = machines['a NIC that is up']!.make();
    const r = cli(['bind', '--force', '0000:00:19.0'], { VFIO_TS_SYSFS_ROOT: sys.sysfsRoot });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^vfio-ts: vfio-pci did not take 0000:00:19.0/);
  });

  it('a device already on vfio-pci is left as it is', () => {
    const sys = new FakeSystem().addDevice('0000:00:03.0', { group: 3, driver: 'vfio-pci' });
    const before = sys.hash();
    const r = cli(['bind', '00:03.0', '--json'], { VFIO_TS_SYSFS_ROOT: sys.sysfsRoot });
    expect(JSON.parse(r.stdout)).toEqual({
      changes: [{ bdf: '0000:00:03.0', from: 'vfio-pci', to: 'vfio-pci' }],
    });
    expect(sys.hash()).toBe(before);
  });

  it('unbind refuses while a process holds the device open, naming it', () => {
    const sys = new FakeSystem()
      .addDevice('0000:00:03.0', { group: 3, driver: 'vfio-pci' })
      .addProcess(4242, 'qemu-system-x86', '/dev/vfio/3');
    const before = sys.hash();
    const r = cli(['unbind', '0000:00:03.0'], { VFIO_TS_SYSFS_ROOT: sys.sysfsRoot });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(
      /is open through VFIO by pid 4242 \(qemu-system-x86, \/dev\/vfio\/3\)\n {2}stop that process first/,
    );
    expect(sys.hash()).toBe(before);
  });

  it('a kernel device is opened through the same root (not the real /sys)', () => {
    const sys = new FakeSystem().addDevice('0000:00:03.0', { group: null, driver: 'vfio-pci' });
    const r = cli(['inspect', '0000:00:03.0'], { VFIO_TS_SYSFS_ROOT: sys.sysfsRoot });
    // One line: the path tried (no cdev in the fake tree, so the group path), then the reason from sysfs.
    expect(r.stderr).toMatch(
      /^vfio-ts: 0000:00:03\.0 through the group interface [^\n]*: 0000:00:03\.0 has no IOMMU group: [^\n]*\n$/,
    );
  });

  it('bind and unbind take PCI addresses only', () => {
    const r = cli(['bind', 'sim:nvme']);
    expect([r.code, r.stderr]).toEqual([2, 'vfio-ts: bind takes a PCI address, not sim:nvme\n']);
  });
});
