/**
 * Binding drivers must never hurt the machine: on fake machines laid out like
 * real ones, `bind` refuses a controller under a mounted filesystem or swap,
 * a NIC that is up, a device without an IOMMU group and a group shared with
 * host drivers, changing nothing; it checks vfio-pci really took the device
 * and otherwise puts the old driver back; `unbind` gives the original back.
 */
import { chmodSync, existsSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { FakeSystem } from '@vfio-ts/test-support';
import { describe, expect, it } from 'vitest';
import {
  BindRefusedError,
  bindSafetyCheck,
  bindToVfioPci,
  listIommuGroups,
  unbindFromVfioPci,
} from '../src/index.js';

const AHCI = '0x8086 0x2922 0x010601';
const NVME = '0x144d 0xa808 0x010802';
const NIC = '0x8086 0x15bc 0x020000';

/** Expects `fn` to refuse with these hazard kinds and leave every file of the machine as it was. */
function expectRefusal(sys: FakeSystem, fn: () => unknown, kinds: string[]): BindRefusedError {
  const before = sys.hash();
  let caught: unknown;
  try {
    fn();
  } catch (err) {
    caught = err;
  }
  expect(caught).toBeInstanceOf(BindRefusedError);
  const refused = caught as BindRefusedError;
  expect(refused.code).toBe('ERR_VFIO_BIND_UNSAFE');
  expect(refused.hazards.map((h) => h.kind)).toEqual(kinds);
  expect(sys.hash()).toBe(before);
  return refused;
}

function ahciWithRootDisk() {
  const sys = new FakeSystem()
    .addDevice('0000:00:1f.2', { group: 10, driver: 'ahci', ids: AHCI })
    .addDisk('0000:00:1f.2', 'ata1/host0/target0:0:0/0:0:0:0', 'sda', '8:0', [
      ['sda1', '8:1'],
      ['sda2', '8:2'],
    ]);
  return sys;
}

describe('bind refuses what would hurt the host, and changes nothing', () => {
  it('an AHCI controller holding the mounted root filesystem', () => {
    const sys = ahciWithRootDisk()
      .mount('8:2', '/dev/sda2', '/', 'ext4')
      .mount('8:1', '/dev/sda1', '/boot efi', 'vfat');
    const options = { sysfsRoot: sys.sysfsRoot, writeAttribute: sys.kernel() };
    const refused = expectRefusal(sys, () => bindToVfioPci('00:1f.2', options), [
      'mounted-filesystem',
      'mounted-filesystem',
    ]);
    expect(refused.hazards.map((h) => h.message)).toEqual([
      '0000:00:1f.2 holds sda (sda2), mounted on / (ext4)',
      '0000:00:1f.2 holds sda (sda1), mounted on /boot efi (vfat)',
    ]);
    expect(refused.hazards[0]!.hint).toMatch(/^unmount it first \(umount \/\)/);
    expect(sys.driverOf('0000:00:1f.2')).toBe('ahci');
  });

  it('a root filesystem on LVM over the disk, and btrfs with an anonymous device number', () => {
    const lvm = ahciWithRootDisk()
      .addMapper('dm-0', 'vg-root', '254:0', 'sda2')
      .mount('254:0', '/dev/mapper/vg-root', '/', 'xfs');
    expect(bindSafetyCheck('0000:00:1f.2', { sysfsRoot: lvm.sysfsRoot }).map((h) => h.message)).toEqual([
      '0000:00:1f.2 holds sda (dm-0), mounted on / (xfs)',
    ]);
    const btrfs = ahciWithRootDisk().mount('0:31', '/dev/sda2', '/home', 'btrfs');
    expect(bindSafetyCheck('0000:00:1f.2', { sysfsRoot: btrfs.sysfsRoot }).map((h) => h.kind)).toEqual([
      'mounted-filesystem',
    ]);
  });

  it('the second device of a multi-device btrfs (mountinfo names only the first)', () => {
    const sys = ahciWithRootDisk()
      .addDevice('0000:02:00.0', { group: 14, driver: 'nvme', ids: NVME })
      .addDisk('0000:02:00.0', 'nvme/nvme0', 'nvme0n1', '259:0', [['nvme0n1p2', '259:2']])
      .addBtrfs('4f9c7a3e-0d6b-4c1e-9a51-2b1f0e6c8d17', ['sda2', 'nvme0n1p2'])
      .mount('0:33', '/dev/sda2', '/', 'btrfs');
    expect(bindSafetyCheck('0000:02:00.0', { sysfsRoot: sys.sysfsRoot }).map((h) => h.message)).toEqual([
      '0000:02:00.0 holds nvme0n1 (nvme0n1p2), mounted on / (btrfs)',
    ]);
  });

  it('an NVMe disk with active swap', () => {
    const sys = new FakeSystem()
      .addDevice('0000:02:00.0', { group: 14, driver: 'nvme', ids: NVME })
      .addDisk('0000:02:00.0', 'nvme/nvme0', 'nvme0n1', '259:0', [
        ['nvme0n1p1', '259:1'],
        ['nvme0n1p3', '259:3'],
      ])
      .swapOn('/dev/nvme0n1p3');
    const refused = expectRefusal(
      sys,
      () => bindToVfioPci('0000:02:00.0', { sysfsRoot: sys.sysfsRoot, writeAttribute: sys.kernel() }),
      ['active-swap'],
    );
    expect(refused.hazards[0]).toMatchObject({
      bdf: '0000:02:00.0',
      message: '0000:02:00.0 holds nvme0n1 (nvme0n1p3), which is active swap',
      hint: expect.stringMatching(/^turn it off first \(swapoff \/dev\/nvme0n1p3\)/),
    });
  });

  it('an NVMe disk with native multipath (the disk under nvme-subsystem, its path under the controller)', () => {
    const sys = new FakeSystem()
      .addDevice('0000:02:00.0', { group: 14, driver: 'nvme', ids: NVME })
      .addMultipathNamespace('0000:02:00.0', 'nvme0', 'nvme0n1', '259:0', [['nvme0n1p2', '259:2']])
      .mount('259:2', '/dev/nvme0n1p2', '/', 'ext4');
    expect(bindSafetyCheck('0000:02:00.0', { sysfsRoot: sys.sysfsRoot }).map((h) => h.message)).toEqual([
      '0000:02:00.0 holds nvme0n1 (nvme0n1p2), mounted on / (ext4)',
    ]);
  });

  it('a NIC whose interface is up (also one level down, as virtio-net puts it)', () => {
    const sys = new FakeSystem()
      .addDevice('0000:00:19.0', { group: 6, driver: 'e1000e', ids: NIC })
      .addInterface('0000:00:19.0', 'eno1', true)
      .addDevice('0000:00:05.0', { group: 7, driver: 'virtio-pci', ids: '0x1af4 0x1041 0x020000' })
      .addInterface('0000:00:05.0', 'enp0s5', true, 'virtio2');
    const options = { sysfsRoot: sys.sysfsRoot, writeAttribute: sys.kernel() };
    const refused = expectRefusal(sys, () => bindToVfioPci('0000:00:19.0', options), ['interface-up']);
    expect(refused.message).toMatch(/network interface eno1, which is up/);
    expect(refused.hazards[0]!.hint).toMatch(/ip link set eno1 down/);
    expectRefusal(sys, () => bindToVfioPci('0000:00:05.0', options), ['interface-up']);
  });

  it('the boot display GPU, and a GPU a display server holds open', () => {
    const sys = new FakeSystem()
      .addDevice('0000:01:00.0', { group: 1, driver: 'amdgpu', ids: '0x1002 0x67df 0x030000' })
      .addDrm('0000:01:00.0', ['card0', 'renderD128'], true)
      .addDevice('0000:02:00.0', { group: 2, driver: 'nouveau', ids: '0x10de 0x1db6 0x030000' })
      .addDrm('0000:02:00.0', ['card1', 'renderD129'])
      .addProcess(812, 'Xorg', '/dev/dri/card1');
    const options = { sysfsRoot: sys.sysfsRoot, writeAttribute: sys.kernel() };
    const boot = expectRefusal(sys, () => bindToVfioPci('0000:01:00.0', options), ['boot-display']);
    expect(boot.hazards[0]!.message).toBe(
      '0000:01:00.0 is the boot display (boot_vga): the console and any desktop on it would go dark',
    );
    const held = expectRefusal(sys, () => bindToVfioPci('0000:02:00.0', options), ['display-in-use']);
    expect(held.hazards[0]!.message).toBe('0000:02:00.0 is in use through /dev/dri/card1 by pid 812 (Xorg)');
  });

  it('a device without an IOMMU group', () => {
    const sys = new FakeSystem().addDevice('0000:00:1f.2', { group: null, driver: 'ahci', ids: AHCI });
    const refused = expectRefusal(
      sys,
      () => bindToVfioPci('0000:00:1f.2', { sysfsRoot: sys.sysfsRoot, writeAttribute: sys.kernel() }),
      ['no-iommu-group'],
    );
    expect(refused.hazards[0]!.hint).toMatch(/intel_iommu=on/);
  });

  it('a group whose other devices are still on host drivers: lists them and offers --group', () => {
    const sys = new FakeSystem()
      .addDevice('0000:00:1c.0', { group: 10, driver: 'pcieport', ids: '0x8086 0x2940 0x060400' })
      .addDevice('0000:00:1f.0', { group: 10, driver: 'lpc_ich', ids: '0x8086 0x2918 0x060100' })
      .addDevice('0000:00:1f.2', { group: 10, driver: 'ahci', ids: AHCI })
      .addDevice('0000:00:1f.3', { group: 10, driver: 'i801_smbus', ids: '0x8086 0x2930 0x0c0500' });
    const refused = expectRefusal(
      sys,
      () => bindToVfioPci('0000:00:1f.2', { sysfsRoot: sys.sysfsRoot, writeAttribute: sys.kernel() }),
      ['group-not-viable'],
    );
    expect(refused.hazards[0]).toMatchObject({
      message:
        'IOMMU group 10 of 0000:00:1f.2 also holds 0000:00:1f.0 (bound to lpc_ich), 0000:00:1f.3 (bound to i801_smbus), still on host drivers, so VFIO could not use the group',
      hint: expect.stringMatching(/--group/),
    });
  });

  it('with --group, a reason found on any member of the group', () => {
    const sys = ahciWithRootDisk()
      .mount('8:2', '/dev/sda2', '/', 'ext4')
      .addDevice('0000:00:1f.3', { group: 10, driver: 'i801_smbus', ids: '0x8086 0x2930 0x0c0500' });
    const refused = expectRefusal(
      sys,
      () =>
        bindToVfioPci('0000:00:1f.3', {
          sysfsRoot: sys.sysfsRoot,
          group: true,
          writeAttribute: sys.kernel(),
        }),
      ['mounted-filesystem'],
    );
    expect(refused.hazards[0]!.bdf).toBe('0000:00:1f.2');
  });

  it('when procfs cannot be read, nothing can say the disks are unused', () => {
    const sys = ahciWithRootDisk();
    rmSync(join(sys.root, 'proc/self/mountinfo'));
    expect(bindSafetyCheck('0000:00:1f.2', { sysfsRoot: sys.sysfsRoot }).map((h) => h.kind)).toEqual([
      'usage-unknown',
    ]);
  });

  it('when vfio-pci is not loaded, before touching anything', () => {
    const sys = new FakeSystem().addDevice('0000:00:19.0', { group: 6, driver: 'e1000e', ids: NIC });
    rmSync(join(sys.sysfsRoot, 'bus/pci/drivers/vfio-pci'), { recursive: true });
    const before = sys.hash();
    expect(() =>
      bindToVfioPci('0000:00:19.0', { sysfsRoot: sys.sysfsRoot, writeAttribute: sys.kernel() }),
    ).toThrow(
      expect.objectContaining({
        code: 'ERR_VFIO_DRIVER_NOT_LOADED',
        hint: 'load it first: modprobe vfio-pci',
      }),
    );
    expect(sys.hash()).toBe(before);
  });
});

describe('bind and unbind on a model of the driver core', () => {
  it('binds a safe device, records its driver, and unbind gives that driver back', () => {
    const sys = new FakeSystem()
      .addDevice('0000:00:19.0', { group: 6, driver: 'e1000e', ids: NIC })
      .addInterface('0000:00:19.0', 'eno1', false);
    const options = { sysfsRoot: sys.sysfsRoot, writeAttribute: sys.kernel() };
    expect(bindSafetyCheck('0000:00:19.0', options)).toEqual([]);
    expect(bindToVfioPci('0000:00:19.0', options)).toEqual([
      { bdf: '0000:00:19.0', from: 'e1000e', to: 'vfio-pci' },
    ]);
    expect(sys.driverOf('0000:00:19.0')).toBe('vfio-pci');
    expect(sys.overrideOf('0000:00:19.0')).toBe('vfio-pci');
    const state = join(sys.root, 'run/vfio-ts/original-drivers.json');
    expect(JSON.parse(readFileSync(state, 'utf8'))).toEqual({
      '0000:00:19.0': { driver: 'e1000e', override: null },
    });
    // Binding again is a no-op and keeps the record.
    expect(bindToVfioPci('0000:00:19.0', options)).toEqual([
      { bdf: '0000:00:19.0', from: 'vfio-pci', to: 'vfio-pci' },
    ]);
    // The kernel's default would be another driver: unbind must use the recorded one, not drivers_probe.
    sys.defaultDrivers.set('0000:00:19.0', 'igb');
    sys.addDriver('igb');
    expect(unbindFromVfioPci('0000:00:19.0', options)).toEqual({
      bdf: '0000:00:19.0',
      from: 'vfio-pci',
      to: 'e1000e',
    });
    expect(sys.driverOf('0000:00:19.0')).toBe('e1000e');
    expect(sys.overrideOf('0000:00:19.0')).toBe('(null)');
    expect(JSON.parse(readFileSync(state, 'utf8'))).toEqual({});
  });

  it('force binds despite a reason, and still checks the result', () => {
    const sys = new FakeSystem()
      .addDevice('0000:00:19.0', { group: 6, driver: 'e1000e', ids: NIC })
      .addInterface('0000:00:19.0', 'eno1', true);
    const options = { sysfsRoot: sys.sysfsRoot, writeAttribute: sys.kernel(), force: true };
    expect(bindToVfioPci('0000:00:19.0', options)).toEqual([
      { bdf: '0000:00:19.0', from: 'e1000e', to: 'vfio-pci' },
    ]);
  });

  it('puts the previous driver back when vfio-pci does not take the device', () => {
    // Forced past "no IOMMU group": vfio-pci's probe then fails, as on a real kernel.
    const sys = new FakeSystem().addDevice('0000:00:1f.2', { group: null, driver: 'ahci', ids: AHCI });
    const options = { sysfsRoot: sys.sysfsRoot, writeAttribute: sys.kernel(), force: true };
    expect(() => bindToVfioPci('0000:00:1f.2', options)).toThrow(
      expect.objectContaining({
        code: 'ERR_VFIO_BIND_FAILED',
        message: expect.stringMatching(
          /^vfio-pci did not take 0000:00:1f.2 \(it has no IOMMU group, which vfio-pci's probe needs\); put it back on ahci/,
        ),
      }),
    );
    expect(sys.driverOf('0000:00:1f.2')).toBe('ahci');
    expect(sys.overrideOf('0000:00:1f.2')).toBe('(null)');
    expect(JSON.parse(readFileSync(join(sys.root, 'run/vfio-ts/original-drivers.json'), 'utf8'))).toEqual({});
  });

  it('binds a whole group with --group (the members on host drivers), and gives each member back', () => {
    const sys = new FakeSystem()
      .addDevice('0000:00:1c.0', { group: 10, driver: 'pcieport', ids: '0x8086 0x2940 0x060400' })
      .addDevice('0000:00:1f.0', { group: 10, driver: 'lpc_ich', ids: '0x8086 0x2918 0x060100' })
      .addDevice('0000:00:1f.2', { group: 10, driver: 'ahci', ids: AHCI })
      .addDevice('0000:00:1f.5', { group: 10, driver: null, ids: '0x8086 0x2926 0x0c0300' });
    const options = { sysfsRoot: sys.sysfsRoot, writeAttribute: sys.kernel(), group: true };
    expect(bindToVfioPci('0000:00:1f.2', options)).toEqual([
      { bdf: '0000:00:1f.2', from: 'ahci', to: 'vfio-pci' },
      { bdf: '0000:00:1f.0', from: 'lpc_ich', to: 'vfio-pci' },
    ]);
    // What the kernel allows beside VFIO (a bridge on pcieport, a device without a driver) is left alone.
    expect([sys.driverOf('0000:00:1c.0'), sys.driverOf('0000:00:1f.5')]).toEqual(['pcieport', null]);
    expect(listIommuGroups({ sysfsRoot: sys.sysfsRoot })[0]!.viable).toBe(true);
    expect(unbindFromVfioPci('0000:00:1f.0', options).to).toBe('lpc_ich');
    expect(unbindFromVfioPci('0000:00:1f.2', options).to).toBe('ahci');
    // A device that had no driver goes back to none, not to whatever drivers_probe would pick.
    const bare = new FakeSystem().addDevice('0000:00:1f.5', { group: 11, driver: null });
    const bareOptions = { sysfsRoot: bare.sysfsRoot, writeAttribute: bare.kernel() };
    expect(bindToVfioPci('0000:00:1f.5', bareOptions)).toEqual([
      { bdf: '0000:00:1f.5', from: null, to: 'vfio-pci' },
    ]);
    bare.defaultDrivers.set('0000:00:1f.5', 'ahci');
    bare.addDriver('ahci');
    expect(unbindFromVfioPci('0000:00:1f.5', bareOptions).to).toBe(null);
  });

  it('a group is bound whole or not at all: a member vfio-pci refuses rolls the others back', () => {
    const sys = new FakeSystem()
      .addDevice('0000:00:1f.0', { group: 10, driver: 'lpc_ich', ids: '0x8086 0x2918 0x060100' })
      .addDevice('0000:00:1f.2', { group: 10, driver: 'ahci', ids: AHCI });
    sys.probeRefuses.add('vfio-pci 0000:00:1f.0');
    const options = { sysfsRoot: sys.sysfsRoot, writeAttribute: sys.kernel(), group: true };
    expect(() => bindToVfioPci('0000:00:1f.2', options)).toThrow(
      expect.objectContaining({
        code: 'ERR_VFIO_BIND_FAILED',
        message: expect.stringMatching(/0000:00:1f.0.*put it back on lpc_ich/),
      }),
    );
    expect([sys.driverOf('0000:00:1f.2'), sys.driverOf('0000:00:1f.0')]).toEqual(['ahci', 'lpc_ich']);
    expect([sys.overrideOf('0000:00:1f.2'), sys.overrideOf('0000:00:1f.0')]).toEqual(['(null)', '(null)']);
  });

  it('unbind refuses while a process holds the device open through /dev/vfio, unless forced', () => {
    const sys = new FakeSystem().addDevice('0000:00:19.0', { group: 6, driver: 'e1000e', ids: NIC });
    const options = { sysfsRoot: sys.sysfsRoot, writeAttribute: sys.kernel() };
    bindToVfioPci('0000:00:19.0', options);
    sys.addProcess(4242, 'qemu-system-x86', '/dev/vfio/6');
    const before = sys.hash();
    expect(() => unbindFromVfioPci('0000:00:19.0', options)).toThrow(
      expect.objectContaining({
        code: 'ERR_VFIO_DEVICE_OPEN',
        message: expect.stringMatching(
          /is open through VFIO by pid 4242 \(qemu-system-x86, \/dev\/vfio\/6\)/,
        ),
      }),
    );
    expect(sys.hash()).toBe(before);
    expect(unbindFromVfioPci('0000:00:19.0', { ...options, force: true }).to).toBe('e1000e');
  });

  it('unbind of a device vfio-ts did not bind lets the kernel choose; one not on vfio-pci is left alone', () => {
    const sys = new FakeSystem()
      .addDevice('0000:00:03.0', { group: 3, driver: 'vfio-pci', ids: NVME })
      .addDevice('0000:00:19.0', { group: 6, driver: 'e1000e', ids: NIC });
    sys.addDriver('nvme');
    sys.defaultDrivers.set('0000:00:03.0', 'nvme');
    const options = { sysfsRoot: sys.sysfsRoot, writeAttribute: sys.kernel() };
    expect(unbindFromVfioPci('0000:00:03.0', options)).toEqual({
      bdf: '0000:00:03.0',
      from: 'vfio-pci',
      to: 'nvme',
    });
    const before = sys.hash();
    expect(unbindFromVfioPci('0000:00:19.0', options)).toEqual({
      bdf: '0000:00:19.0',
      from: 'e1000e',
      to: 'e1000e',
    });
    expect(sys.hash()).toBe(before);
  });

  it('unbind after a half-done bind clears driver_override and leaves the host driver on', () => {
    const sys = new FakeSystem().addDevice('0000:00:19.0', { group: 6, driver: 'e1000e', ids: NIC });
    const options = { sysfsRoot: sys.sysfsRoot, writeAttribute: sys.kernel() };
    options.writeAttribute(join(sys.sysfsRoot, 'bus/pci/devices/0000:00:19.0/driver_override'), 'vfio-pci');
    expect(unbindFromVfioPci('0000:00:19.0', options)).toEqual({
      bdf: '0000:00:19.0',
      from: 'e1000e',
      to: 'e1000e',
    });
    expect([sys.driverOf('0000:00:19.0'), sys.overrideOf('0000:00:19.0')]).toEqual(['e1000e', '(null)']);
    // e1000e was never unbound: the only writes are the test's and unbind's to driver_override.
    expect(sys.writes.map(([path]) => path)).toEqual([
      'bus/pci/devices/0000:00:19.0/driver_override',
      'bus/pci/devices/0000:00:19.0/driver_override',
    ]);
  });

  it('the real attribute writer opens existing files only (sysfs cannot create one)', () => {
    const sys = new FakeSystem().addDevice('0000:00:19.0', { group: 6, driver: 'e1000e', ids: NIC });
    rmSync(join(sys.sysfsRoot, 'bus/pci/drivers_probe'));
    expect(() => bindToVfioPci('0000:00:19.0', { sysfsRoot: sys.sysfsRoot })).toThrow(
      expect.objectContaining({
        code: 'ERR_VFIO_BIND_FAILED',
        message: expect.stringMatching(/drivers_probe \(ENOENT\)/),
      }),
    );
    expect(existsSync(join(sys.sysfsRoot, 'bus/pci/drivers_probe'))).toBe(false);
  });
});

describe('listing survives a changing machine', () => {
  it('a dangling link in an IOMMU group (hot unplug while listing) is reported, not fatal', () => {
    const sys = new FakeSystem().addDevice('0000:00:19.0', { group: 6, driver: 'e1000e', ids: NIC });
    symlinkSync(
      '../../../../devices/pci0000:00/0000:00:19.1',
      join(sys.sysfsRoot, 'kernel/iommu_groups/6/devices/0000:00:19.1'),
    );
    const [group] = listIommuGroups({ sysfsRoot: sys.sysfsRoot });
    expect(group).toMatchObject({ group: 6, viable: false, vanished: ['0000:00:19.1'] });
    expect(group!.devices.map((d) => d.bdf)).toEqual(['0000:00:19.0']);
  });

  it('a sysfs root that does not exist is an error, not a machine without IOMMU groups', () => {
    expect(() => listIommuGroups({ sysfsRoot: '/nonexistent/sys' })).toThrow(
      expect.objectContaining({
        code: 'ERR_VFIO_SYSFS_ROOT',
        message:
          'sysfs root /nonexistent/sys does not exist: check --sysfs-root / VFIO_TS_SYSFS_ROOT (the default is /sys)',
      }),
    );
  });

  it('state that cannot be recorded stops the bind before any change', () => {
    const sys = new FakeSystem().addDevice('0000:00:19.0', { group: 6, driver: 'e1000e', ids: NIC });
    chmodSync(sys.root, 0o555);
    try {
      // root bypasses the mode bits; then make run/ a file so mkdir fails for everyone.
      if (process.getuid?.() === 0) {
        chmodSync(sys.root, 0o755);
        symlinkSync('/dev/null', join(sys.root, 'run'));
      }
      const before = sys.hash();
      expect(() =>
        bindToVfioPci('0000:00:19.0', { sysfsRoot: sys.sysfsRoot, writeAttribute: sys.kernel() }),
      ).toThrow(expect.objectContaining({ code: 'ERR_VFIO_STATE' }));
      expect(sys.hash()).toBe(before);
    } finally {
      chmodSync(sys.root, 0o755);
    }
  });
});
