/** `vfio-ts list [--all]`: IOMMU groups, their devices, and whether VFIO can use each group. */
import { listIommuGroups, type SysfsOptions, vfioInterfaces } from '@vfio-ts/vfio-sys';
import { hex } from '../numbers.js';
import type { Output } from '../output.js';

/**
 * The VFIO interfaces the kernel offers for a device bound to vfio-pci: `group`
 * (its IOMMU group) and `cdev` (a vfio-dev/vfioN entry, Linux 6.6+ with
 * iommufd). None for a device on another driver.
 */
function offered(bdf: string, driver: string | null, options: SysfsOptions): ('group' | 'cdev')[] {
  if (driver !== 'vfio-pci') return [];
  const i = vfioInterfaces(bdf, options);
  return [...(i.group !== null ? (['group'] as const) : []), ...(i.cdev !== null ? (['cdev'] as const) : [])];
}

export function list(
  out: Output,
  options: { all: boolean; warn: (line: string) => void } & SysfsOptions,
): void {
  const all = listIommuGroups(options);
  // A device can disappear between reading a group and reading the device (hot unplug): say so, list the rest.
  for (const g of all)
    for (const bdf of g.vanished)
      options.warn(
        `vfio-ts: warning: ${bdf} in IOMMU group ${g.group} vanished while listing (hot-unplugged?)`,
      );
  const groups = all
    .map((g) => ({
      ...g,
      devices: options.all ? g.devices : g.devices.filter((d) => d.driver === 'vfio-pci'),
    }))
    .filter((g) => g.devices.length > 0);
  const doc = {
    groups: groups.map((g) => ({
      group: g.group,
      viable: g.viable,
      devices: g.devices.map((d) => ({
        bdf: d.bdf,
        vendor: d.vendor,
        device: d.device,
        class: d.classCode,
        driver: d.driver,
        interfaces: offered(d.bdf, d.driver, options),
      })),
      vanished: g.vanished,
    })),
  };
  if (out.json) {
    out.document(doc);
    return;
  }
  if (all.length === 0) {
    out.line('No IOMMU groups on this machine: the IOMMU is off or absent, so VFIO has no devices to offer.');
    out.line(
      'Enable it (intel_iommu=on / amd_iommu=on), or try a simulated device: vfio-ts inspect sim:nvme',
    );
    return;
  }
  if (groups.length === 0) {
    out.line(
      'No device is bound to vfio-pci. Use --all to see every device, and `vfio-ts bind <bdf>` to bind one.',
    );
    return;
  }
  out.table(
    ['group', 'viable', 'device', 'id', 'class', 'driver', 'interfaces'],
    groups.flatMap((g) =>
      g.devices.map((d, i) => [
        i === 0 ? String(g.group) : '',
        i === 0 ? (g.viable ? 'yes' : 'no') : '',
        d.bdf,
        `${d.vendor.toString(16).padStart(4, '0')}:${d.device.toString(16).padStart(4, '0')}`,
        hex(d.classCode, 6),
        d.driver ?? '-',
        offered(d.bdf, d.driver, options).join(',') || '-',
      ]),
    ),
  );
}
