/**
 * What the host is using a PCI device for: block devices below it that hold a
 * mounted filesystem or active swap (also through device-mapper/md holders),
 * and network interfaces that are up. Block devices and interfaces are found
 * in sysfs (`class/block`, `class/net`, resolved to their place under the
 * device), mounts in `/proc/self/mountinfo`, swaps in `/proc/swaps`.
 */
import { existsSync, readdirSync, readFileSync, realpathSync } from 'node:fs';
import { basename, join } from 'node:path';
import { pciDevicePath, procPath, readAttribute, type SysfsOptions, sysfsPath } from './paths.js';

export interface BlockUse {
  /** The block device in use (`sda2`, `nvme0n1p3`, or a holder such as `dm-0`). */
  readonly block: string;
  /** The device below the PCI function it sits on (`sda`), for the message. */
  readonly via: string;
  /** Where it is mounted, or `swap`. */
  readonly mountPoint: string;
  readonly fsType: string;
}

/** Holders are followed this deep (dm on md on a partition is three). */
const MAX_HOLDER_DEPTH = 8;

function realpathOrNull(path: string): string | null {
  try {
    return realpathSync(path);
  } catch {
    return null;
  }
}

function listDir(path: string): string[] {
  try {
    return readdirSync(path);
  } catch {
    return [];
  }
}

/** Entries of `class/<cls>` whose device lives below the PCI device (any depth). */
function classMembersBelow(bdf: string, cls: string, options: SysfsOptions): string[] {
  const device = realpathOrNull(pciDevicePath(options, bdf));
  if (device === null) return [];
  const dir = sysfsPath(options, 'class', cls);
  return listDir(dir).filter((name) => realpathOrNull(join(dir, name))?.startsWith(`${device}/`) === true);
}

interface BlockNode {
  readonly name: string;
  readonly via: string;
  readonly dev: string | null;
  readonly dmName: string | null;
}

/**
 * The block devices of the PCI device itself: those below it in sysfs, NVMe
 * multipath heads with a path through it (with native multipath the disk
 * `nvme0n1` lives under the virtual nvme-subsystem, and only its paths,
 * listed in `nvme0n1/multipath/`, under the controller), and the partitions
 * of either.
 */
function ownBlockDevices(bdf: string, options: SysfsOptions): string[] {
  const device = realpathOrNull(pciDevicePath(options, bdf));
  if (device === null) return [];
  const blockDir = sysfsPath(options, 'class/block');
  const below = (path: string | null) => path?.startsWith(`${device}/`) === true;
  const entries = listDir(blockDir).map((name) => ({ name, real: realpathOrNull(join(blockDir, name)) }));
  const disks = new Set(
    entries
      .filter(
        (e) =>
          below(e.real) ||
          listDir(join(blockDir, e.name, 'multipath')).some((p) =>
            below(realpathOrNull(join(blockDir, e.name, 'multipath', p))),
          ),
      )
      .map((e) => e.real),
  );
  return entries
    .filter((e) => disks.has(e.real) || (e.real !== null && disks.has(join(e.real, '..'))))
    .map((e) => e.name)
    .sort();
}

/** Block devices on the PCI device, and everything stacked on them (holders), each once. */
export function blockDevicesOf(bdf: string, options: SysfsOptions = {}): BlockNode[] {
  const blockDir = sysfsPath(options, 'class/block');
  const seen = new Map<string, BlockNode>();
  const visit = (name: string, via: string, depth: number) => {
    if (seen.has(name) || depth > MAX_HOLDER_DEPTH) return;
    const dir = join(blockDir, name);
    seen.set(name, {
      name,
      via,
      dev: readAttribute(join(dir, 'dev')),
      dmName: readAttribute(join(dir, 'dm/name')),
    });
    for (const holder of listDir(join(dir, 'holders'))) visit(holder, via, depth + 1);
  };
  for (const name of ownBlockDevices(bdf, options)) {
    // A partition's parent disk is the name to show (sda for sda2).
    const parent = basename(join(realpathOrNull(join(blockDir, name)) ?? name, '..'));
    visit(name, existsSync(join(blockDir, parent)) ? parent : name, 0);
  }
  return [...seen.values()];
}

/** Unescapes the octal escapes (`\040` for a space) the kernel writes in mountinfo and swaps. */
function unescapeOctal(text: string): string {
  return text.replace(/\\([0-7]{3})/g, (_m, oct: string) => String.fromCharCode(Number.parseInt(oct, 8)));
}

/** Which node a `/dev/...` source names, if it is one of ours. */
function nodeForSource(source: string, nodes: readonly BlockNode[]): BlockNode | undefined {
  if (!source.startsWith('/dev/')) return undefined;
  const mapper = /^\/dev\/mapper\/(.+)$/.exec(source);
  if (mapper) return nodes.find((n) => n.dmName === mapper[1]);
  return nodes.find((n) => n.name === basename(source));
}

/** Returned instead of a list when procfs cannot be read: then nothing can say the device is unused. */
export class UsageUnknown {
  constructor(readonly path: string) {}
}

function readProc(path: string): string | UsageUnknown {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return new UsageUnknown(path);
  }
}

/**
 * Member devices of each mounted btrfs filesystem, by member name: a
 * multi-device btrfs shows one of its devices in mountinfo, and all of them
 * in sysfs (`fs/btrfs/<uuid>/devices/<name>`).
 */
function btrfsMembers(options: SysfsOptions): Map<string, string[]> {
  const byMember = new Map<string, string[]>();
  const root = sysfsPath(options, 'fs/btrfs');
  for (const uuid of listDir(root)) {
    const members = listDir(join(root, uuid, 'devices'));
    for (const m of members) byMember.set(m, members);
  }
  return byMember;
}

/** Filesystems mounted from block devices of the PCI device (any member of a multi-device btrfs counts). */
export function mountedFilesystems(bdf: string, options: SysfsOptions = {}): BlockUse[] | UsageUnknown {
  const nodes = blockDevicesOf(bdf, options);
  if (nodes.length === 0) return [];
  const mountinfo = readProc(procPath(options, 'self/mountinfo'));
  if (mountinfo instanceof UsageUnknown) return mountinfo;
  const btrfs = btrfsMembers(options);
  const uses: BlockUse[] = [];
  for (const line of mountinfo.split('\n')) {
    // id parent major:minor root mount-point options [optional...] - fstype source super-options
    const fields = line.split(' ');
    const dash = fields.indexOf('-');
    if (fields.length < 5 || dash < 0) continue;
    const source = unescapeOctal(fields[dash + 2] ?? '');
    const siblings = fields[dash + 1] === 'btrfs' ? (btrfs.get(basename(source)) ?? []) : [];
    const node =
      nodes.find((n) => n.dev !== null && n.dev === fields[2]) ??
      nodeForSource(source, nodes) ??
      nodes.find((n) => siblings.includes(n.name));
    if (node)
      uses.push({
        block: node.name,
        via: node.via,
        mountPoint: unescapeOctal(fields[4]!),
        fsType: fields[dash + 1] ?? '?',
      });
  }
  return uses;
}

/** Swap partitions on block devices of the PCI device (swap files count as mounted filesystems). */
export function activeSwaps(bdf: string, options: SysfsOptions = {}): BlockUse[] | UsageUnknown {
  const nodes = blockDevicesOf(bdf, options);
  if (nodes.length === 0) return [];
  const swaps = readProc(procPath(options, 'swaps'));
  if (swaps instanceof UsageUnknown) return swaps;
  return swaps
    .split('\n')
    .slice(1)
    .flatMap((line) => {
      const [file] = line.split(/\s+/);
      const node = file ? nodeForSource(unescapeOctal(file), nodes) : undefined;
      return node ? [{ block: node.name, via: node.via, mountPoint: 'swap', fsType: 'swap' }] : [];
    });
}

const IFF_UP = 0x1;

/** Network interfaces of the device that are up: taking it from its driver would cut them off. */
export function activeInterfaces(bdf: string, options: SysfsOptions = {}): string[] {
  const netDir = sysfsPath(options, 'class/net');
  return classMembersBelow(bdf, 'net', options)
    .sort()
    .filter((ifname) => {
      // flags carries IFF_UP (administratively up); operstate alone says "down" for an up link without carrier.
      const flags = readAttribute(join(netDir, ifname, 'flags'));
      if (flags !== null && /^0x[0-9a-f]+$/i.test(flags)) return (Number.parseInt(flags, 16) & IFF_UP) !== 0;
      return readAttribute(join(netDir, ifname, 'operstate')) !== 'down';
    });
}
