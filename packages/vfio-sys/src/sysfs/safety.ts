/**
 * Whether taking a device from its host driver is safe: the reasons not to,
 * each with what to do about it. `bindToVfioPci` refuses on any of them unless
 * forced; the CLI prints them.
 */
import { iommuGroupOf, isHostDriver, normalizeBdf, type PciDeviceInfo, pciDeviceInfo } from './devices.js';
import { pciDevicePath, procPath, readAttribute, type SysfsOptions } from './paths.js';
import { activeInterfaces, activeSwaps, type BlockUse, mountedFilesystems, UsageUnknown } from './usage.js';
import { drmNodesOf, processesHolding } from './users.js';

export type BindHazardKind =
  | 'mounted-filesystem'
  | 'active-swap'
  | 'usage-unknown'
  | 'interface-up'
  | 'boot-display'
  | 'display-in-use'
  | 'no-iommu-group'
  | 'group-not-viable';

export interface BindHazard {
  readonly kind: BindHazardKind;
  /** The device it concerns (with `group`, possibly another member of the group). */
  readonly bdf: string;
  /** What is wrong. */
  readonly message: string;
  /** What to do about it. */
  readonly hint: string;
}

export interface BindSafetyOptions extends SysfsOptions {
  /** The whole IOMMU group is to be bound: check every member, and the group is then not shared. */
  readonly group?: boolean;
}

function blockHazards(bdf: string, options: SysfsOptions): BindHazard[] {
  const hazards: BindHazard[] = [];
  const describe = (u: BlockUse) => (u.block === u.via ? u.block : `${u.via} (${u.block})`);
  const mounts = mountedFilesystems(bdf, options);
  const swaps = activeSwaps(bdf, options);
  for (const [uses, what] of [
    [mounts, 'mounted filesystems'],
    [swaps, 'swap'],
  ] as const) {
    if (uses instanceof UsageUnknown)
      hazards.push({
        kind: 'usage-unknown',
        bdf,
        message: `${bdf} has block devices, and ${uses.path} cannot be read to check them for ${what}`,
        hint: `make ${procPath(options)} readable, or check by hand (findmnt, swapon --show)`,
      });
  }
  if (Array.isArray(mounts))
    for (const u of mounts)
      hazards.push({
        kind: 'mounted-filesystem',
        bdf,
        message: `${bdf} holds ${describe(u)}, mounted on ${u.mountPoint} (${u.fsType})`,
        hint: `unmount it first (umount ${u.mountPoint}); unbinding the controller under a mounted filesystem loses its data`,
      });
  if (Array.isArray(swaps))
    for (const u of swaps)
      hazards.push({
        kind: 'active-swap',
        bdf,
        message: `${bdf} holds ${describe(u)}, which is active swap`,
        hint: `turn it off first (swapoff /dev/${u.block}); pages swapped out there would be lost`,
      });
  return hazards;
}

/** Reasons the device itself must not be taken from the host. */
function deviceHazards(info: PciDeviceInfo, options: SysfsOptions): BindHazard[] {
  const hazards = blockHazards(info.bdf, options);
  const up = activeInterfaces(info.bdf, options);
  if (up.length > 0)
    hazards.push({
      kind: 'interface-up',
      bdf: info.bdf,
      message: `${info.bdf} drives network interface ${up.join(', ')}, which is up`,
      hint: `taking it from its driver would cut this machine off that network; bring it down first (ip link set ${up[0]} down)`,
    });
  // The firmware's boot display: the console (and a display server) is on it.
  if (readAttribute(pciDevicePath(options, info.bdf, 'boot_vga')) === '1')
    hazards.push({
      kind: 'boot-display',
      bdf: info.bdf,
      message: `${info.bdf} is the boot display (boot_vga): the console and any desktop on it would go dark`,
      hint: 'pass through a secondary GPU, or run this machine headless (stop the display manager, unbind the framebuffer console) first',
    });
  const holders = processesHolding(drmNodesOf(info.bdf, options), options);
  if (holders.length > 0)
    hazards.push({
      kind: 'display-in-use',
      bdf: info.bdf,
      message: `${info.bdf} is in use through ${holders.map((u) => `${u.node} by pid ${u.pid} (${u.command})`).join(', ')}`,
      hint: 'stop those programs (the display server or compositor) first; unbinding a GPU under them can hang or crash them',
    });
  return hazards;
}

/** The devices a bind of `bdf` touches: itself, and with `group` every member of its group on a host driver. */
export function bindTargets(bdf: string, options: BindSafetyOptions = {}): PciDeviceInfo[] {
  const info = pciDeviceInfo(bdf, options);
  if (!options.group || info.iommuGroup === null) return [info];
  const members = iommuGroupOf(info.bdf, options).devices;
  // Only members on host drivers keep the group from VFIO: bridges on pcieport, pci-stub and
  // driverless devices are allowed beside it (vfio_dev_driver_allowed) and stay as they are.
  return members.filter((d) => d.bdf === info.bdf || isHostDriver(d.driver));
}

/**
 * Every reason not to bind `bdf` (with `group`, its whole IOMMU group) to
 * vfio-pci: block devices with mounted filesystems or swap, interfaces that
 * are up, no IOMMU group, or a group shared with devices on host drivers.
 * Empty when it is safe. Reads only; changes nothing.
 */
export function bindSafetyCheck(bdf: string, options: BindSafetyOptions = {}): BindHazard[] {
  const address = normalizeBdf(bdf);
  const targets = bindTargets(address, options);
  const self = targets.find((d) => d.bdf === address)!;
  const hazards = targets.flatMap((d) => deviceHazards(d, options));
  if (self.iommuGroup === null) {
    hazards.push({
      kind: 'no-iommu-group',
      bdf: address,
      message: `${address} has no IOMMU group, so vfio-pci cannot take it and it would be left without a driver`,
      hint: 'enable the IOMMU (intel_iommu=on or amd_iommu=on on the kernel command line, and VT-d/AMD-Vi in the firmware)',
    });
  } else if (!options.group) {
    const others = iommuGroupOf(address, options).devices.filter(
      (d) => d.bdf !== address && isHostDriver(d.driver),
    );
    if (others.length > 0)
      hazards.push({
        kind: 'group-not-viable',
        bdf: address,
        message: `IOMMU group ${self.iommuGroup} of ${address} also holds ${others
          .map((d) => `${d.bdf} (bound to ${d.driver})`)
          .join(', ')}, still on host drivers, so VFIO could not use the group`,
        hint: 'bind the whole group with --group (every member is checked the same way), or unbind those first',
      });
  }
  return hazards;
}
