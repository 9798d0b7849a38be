/**
 * A fake sysfs tree with the layout of a real one (the reference host
 * capture, shared/reference/host): devices under devices/pci0000:00, linked
 * from bus/pci/devices and kernel/iommu_groups/<n>/devices, with driver and
 * iommu_group links. Point discovery at it with `{ sysfsRoot }` or the CLI's
 * VFIO_TS_SYSFS_ROOT; never at the real /sys.
 */
import { mkdirSync, mkdtempSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** An empty tree in a new temporary folder; returns its root. */
export function makeFakeSysfs(): string {
  const sys = mkdtempSync(join(tmpdir(), 'fake-sys-'));
  mkdirSync(join(sys, 'bus/pci/devices'), { recursive: true });
  writeFileSync(join(sys, 'bus/pci/drivers_probe'), '');
  return sys;
}

/**
 * Adds a PCI device at `bdf` in IOMMU group `group`, bound to `driver` (null: none).
 * `ids` is "vendor device class" in sysfs's hex form, e.g. "0x1b36 0x0010 0x010802".
 */
export function addFakePciDevice(
  sys: string,
  bdf: string,
  group: number,
  driver: string | null,
  ids: string,
  override = '(null)',
): void {
  const [vendor, device, cls] = ids.split(' ');
  const d = join(sys, 'devices/pci0000:00', bdf);
  mkdirSync(d, { recursive: true });
  writeFileSync(join(d, 'vendor'), `${vendor}\n`);
  writeFileSync(join(d, 'device'), `${device}\n`);
  writeFileSync(join(d, 'class'), `${cls}\n`);
  writeFileSync(join(d, 'driver_override'), `${override}\n`);
  symlinkSync(`../../../devices/pci0000:00/${bdf}`, join(sys, 'bus/pci/devices', bdf));
  mkdirSync(join(sys, 'kernel/iommu_groups', String(group), 'devices'), { recursive: true });
  symlinkSync(
    `../../../../devices/pci0000:00/${bdf}`,
    join(sys, 'kernel/iommu_groups', String(group), 'devices', bdf),
  );
  symlinkSync(`../../../kernel/iommu_groups/${group}`, join(d, 'iommu_group'));
  if (driver) {
    const drv = join(sys, 'bus/pci/drivers', driver);
    mkdirSync(drv, { recursive: true });
    writeFileSync(join(drv, 'unbind'), '');
    symlinkSync(`../../../bus/pci/drivers/${driver}`, join(d, 'driver'));
  }
}
