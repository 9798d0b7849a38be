/**
 * Processes holding a device open through VFIO. Unbinding vfio-pci from such
 * a device blocks in the kernel until the process lets go (vfio-pci keeps
 * asking it through the REQ interrupt), so `unbindFromVfioPci` checks first.
 * Seen through /proc/<pid>/fd links to the group node `/dev/vfio/<group>` or
 * the device's cdev `/dev/vfio/devices/vfioN`; a process that closed its
 * group fd but kept the device fd is not seen (that fd is an anonymous inode).
 */
import { readdirSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';
import type { PciDeviceInfo } from './devices.js';
import { pciDevicePath, procPath, readAttribute, type SysfsOptions } from './paths.js';

export interface VfioUser {
  readonly pid: number;
  /** The process name (`comm`), or "?" when it exited meanwhile. */
  readonly command: string;
  /** The node it holds open. */
  readonly node: string;
}

function listDir(path: string): string[] {
  try {
    return readdirSync(path);
  } catch {
    return [];
  }
}

function vfioNodesOf(info: PciDeviceInfo, options: SysfsOptions): Set<string> {
  const nodes = new Set<string>();
  if (info.iommuGroup !== null) nodes.add(`/dev/vfio/${info.iommuGroup}`);
  for (const cdev of listDir(pciDevicePath(options, info.bdf, 'vfio-dev')))
    if (/^vfio\d+$/.test(cdev)) nodes.add(`/dev/vfio/devices/${cdev}`);
  return nodes;
}

/** Every process with a VFIO node of the device open. */
export function vfioUsers(info: PciDeviceInfo, options: SysfsOptions = {}): VfioUser[] {
  const nodes = vfioNodesOf(info, options);
  const users: VfioUser[] = [];
  for (const pid of listDir(procPath(options)).filter((n) => /^\d+$/.test(n))) {
    const fdDir = procPath(options, pid, 'fd');
    for (const fd of listDir(fdDir)) {
      let target: string;
      try {
        target = readlinkSync(join(fdDir, fd));
      } catch {
        continue; // closed meanwhile, or not ours to read
      }
      if (!nodes.has(target)) continue;
      users.push({
        pid: Number(pid),
        command: readAttribute(procPath(options, pid, 'comm')) ?? '?',
        node: target,
      });
      break;
    }
  }
  return users.sort((a, b) => a.pid - b.pid);
}
