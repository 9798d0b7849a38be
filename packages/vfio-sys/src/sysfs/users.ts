/**
 * Processes holding a device open, seen through /proc/<pid>/fd links.
 * Through VFIO (the group node `/dev/vfio/<group>` or the cdev
 * `/dev/vfio/devices/vfioN`): unbinding vfio-pci then blocks in the kernel
 * until the process lets go (vfio-pci keeps asking through the REQ
 * interrupt), so `unbindFromVfioPci` checks first; a process that closed its
 * group fd but kept the device fd is not seen (that fd is an anonymous
 * inode). Through DRM (`/dev/dri/card0`, `renderD128`): a display server or
 * compositor on the GPU, which `bindSafetyCheck` reports.
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

/** The device's DRM nodes (`/dev/dri/card0`, `/dev/dri/renderD128`): a GPU a display server or compositor holds. */
export function drmNodesOf(bdf: string, options: SysfsOptions = {}): Set<string> {
  return new Set(
    listDir(pciDevicePath(options, bdf, 'drm'))
      .filter((n) => /^(card|renderD)\d+$/.test(n))
      .map((n) => `/dev/dri/${n}`),
  );
}

/** Every process with one of `nodes` open, each once, by pid. */
export function processesHolding(nodes: ReadonlySet<string>, options: SysfsOptions = {}): VfioUser[] {
  if (nodes.size === 0) return [];
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

/** Every process with a VFIO node of the device open. */
export function vfioUsers(info: PciDeviceInfo, options: SysfsOptions = {}): VfioUser[] {
  return processesHolding(vfioNodesOf(info, options), options);
}
