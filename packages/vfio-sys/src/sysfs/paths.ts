/**
 * Where sysfs, procfs and vfio-ts's own state live. One option moves them
 * together: `sysfsRoot` names the sysfs tree (default `/sys`), and procfs and
 * the run-state directory are its siblings (`<sysfsRoot>/../proc`,
 * `<sysfsRoot>/../run/vfio-ts`), as `/sys`, `/proc` and `/run` are on a real
 * machine. A fake tree for tests is then a directory holding `sys/`, `proc/`
 * and `run/`, and nothing reads the real machine by accident.
 */
import { readFileSync, readlinkSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';

export interface SysfsOptions {
  /** Root of sysfs (default `/sys`); procfs and run state are looked for beside it. */
  readonly sysfsRoot?: string;
}

export const DEFAULT_SYSFS_ROOT = '/sys';

export function sysfsPath(options: SysfsOptions, ...parts: string[]): string {
  return join(options.sysfsRoot ?? DEFAULT_SYSFS_ROOT, ...parts);
}

/** `/proc/...`, or its sibling of a non-default sysfs root. */
export function procPath(options: SysfsOptions, ...parts: string[]): string {
  return join(dirname(resolve(options.sysfsRoot ?? DEFAULT_SYSFS_ROOT)), 'proc', ...parts);
}

/** `/run/vfio-ts/...`: state that lives as long as the boot (bindings do not outlive it either). */
export function runStatePath(options: SysfsOptions, ...parts: string[]): string {
  return join(dirname(resolve(options.sysfsRoot ?? DEFAULT_SYSFS_ROOT)), 'run', 'vfio-ts', ...parts);
}

export function pciDevicePath(options: SysfsOptions, bdf: string, ...parts: string[]): string {
  return sysfsPath(options, 'bus/pci/devices', bdf, ...parts);
}

/** A sysfs attribute's text, trimmed; null when it cannot be read (absent, or vanished meanwhile). */
export function readAttribute(path: string): string | null {
  try {
    return readFileSync(path, 'utf8').trim();
  } catch {
    return null;
  }
}

/** The last component of a symlink's target (`driver` -> `e1000e`), or null. */
export function linkName(path: string): string | null {
  try {
    return basename(readlinkSync(path));
  } catch {
    return null;
  }
}

export const BDF_RE = /^([0-9a-f]{4}):([0-9a-f]{2}):([0-9a-f]{2})\.([0-7])$/;
