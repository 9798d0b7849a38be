/**
 * Region reads and writes validated as vfio-pci's read/write paths validate
 * them (range, READ/WRITE flags, decode enabled in the command register), and
 * the target that serves each: config space, the ROM, the VGA hooks, the BAR's
 * register tree, or the MSI-X table that vfio-pci hides.
 */

import type { AddressSpace } from '@vfio-ts/memory-core';
import { type AccessSize, SysError, VfioArgumentError, type VfioRegionInfo } from '@vfio-ts/vfio-sys';
import {
  PCI_COMMAND_IO,
  PCI_COMMAND_MEMORY,
  VFIO_PCI_CONFIG_REGION_INDEX,
  VFIO_PCI_ROM_REGION_INDEX,
  VFIO_PCI_VGA_REGION_INDEX,
  VFIO_REGION_INFO_FLAG_READ,
  VFIO_REGION_INFO_FLAG_WRITE,
} from '@vfio-ts/vfio-sys/uapi';
import type { BarBacking } from './bar-backing.js';
import { quote } from './errors.js';
import { type MsixLayout, touchesMsixTable } from './msix-emulation.js';

const EINVAL = 22;
const EIO = 5;

export type AccessTarget = BarBacking | 'config' | 'rom' | 'vga' | 'hidden';

export interface AccessFacts {
  readonly name: string;
  readonly bars: readonly (BarBacking | undefined)[];
  readonly msix: MsixLayout | null;
  /** The command register now (decode enables). */
  command(): number;
}

/** A block offset and length that can be allocated and addressed (the range itself is checked per access). */
export function checkBlockLength(offset: number, length: number, regionSize: number, what: string): void {
  if (!Number.isSafeInteger(offset) || offset < 0)
    throw new VfioArgumentError(`${what} at offset ${quote(offset)}: expected a byte offset`);
  if (!Number.isSafeInteger(length) || length < 0 || length > regionSize)
    throw new VfioArgumentError(
      `${what} of ${quote(length)} bytes: expected 0 to 0x${regionSize.toString(16)} (the region size)`,
    );
}

export function accessFailure(syscall: string, errno: number, detail: string): never {
  throw new SysError(syscall, errno, { detail });
}

/** Validates an access to region `index` (described by `info`) and says what serves it. */
export function resolveAccess(
  facts: AccessFacts,
  info: VfioRegionInfo,
  index: number,
  offset: number,
  size: number,
  write: boolean,
): AccessTarget {
  const syscall = write ? 'pwrite' : 'pread';
  if (!Number.isSafeInteger(offset) || offset < 0 || offset + size > info.size) {
    const at = Number.isSafeInteger(offset) ? `0x${offset.toString(16)}` : quote(offset);
    accessFailure(
      syscall,
      EINVAL,
      `${size} bytes at ${at} of ${facts.name} region ${index} (size 0x${info.size.toString(16)})`,
    );
  }
  if ((info.flags & (write ? VFIO_REGION_INFO_FLAG_WRITE : VFIO_REGION_INFO_FLAG_READ)) === 0) {
    accessFailure(syscall, EINVAL, `${facts.name} region ${index} is not ${write ? 'writable' : 'readable'}`);
  }
  if (index === VFIO_PCI_CONFIG_REGION_INDEX) return 'config';
  if (index === VFIO_PCI_ROM_REGION_INDEX) return 'rom';
  if (index === VFIO_PCI_VGA_REGION_INDEX) return 'vga';
  const bar = facts.bars[index]!;
  const io = bar.layout.kind === 'io';
  if ((facts.command() & (io ? PCI_COMMAND_IO : PCI_COMMAND_MEMORY)) === 0) {
    accessFailure(
      syscall,
      EIO,
      `${facts.name} BAR ${index}: ${io ? 'I/O' : 'memory'} decode is disabled in the command register`,
    );
  }
  // vfio-pci keeps the MSI-X table from read/write: reads all ones, writes dropped.
  if (touchesMsixTable(facts.msix, index, offset, size)) return 'hidden';
  return bar;
}

/** vfio_pci_core_do_io_rw: a block as the widest aligned accesses that fit, up to 4 bytes. */
export function forEachPiece(
  offset: number,
  length: number,
  fn: (at: number, size: AccessSize) => void,
): void {
  let at = offset;
  const end = offset + length;
  while (at < end) {
    const size: AccessSize = end - at >= 4 && at % 4 === 0 ? 4 : end - at >= 2 && at % 2 === 0 ? 2 : 1;
    fn(at, size);
    at += size;
  }
}

/**
 * One BAR access as Linux 6.1's vfio_pci_core_do_io_rw performs it: aligned
 * accesses of up to 4 bytes as they are; an unaligned one, and any 8-byte one
 * (6.1 has no 64-bit path: ioread32 twice, low dword first), as the widest
 * aligned pieces. Values are little endian.
 */
export function barReadPieces(space: AddressSpace, offset: number, size: 1 | 2 | 4 | 8): bigint {
  if (size !== 8 && offset % size === 0) return BigInt(space.read(offset, size));
  let value = 0n;
  forEachPiece(offset, size, (at, n) => {
    value |= BigInt(space.read(at, n)) << BigInt(8 * (at - offset));
  });
  return value;
}

export function barWritePieces(
  space: AddressSpace,
  offset: number,
  value: bigint,
  size: 1 | 2 | 4 | 8,
): void {
  if (size !== 8 && offset % size === 0) {
    space.write(offset, Number(value), size);
    return;
  }
  forEachPiece(offset, size, (at, n) => {
    space.write(at, Number((value >> BigInt(8 * (at - offset))) & ((1n << BigInt(8 * n)) - 1n)), n);
  });
}

export function readLE(bytes: Uint8Array, offset: number, size: number): number {
  let v = 0;
  for (let i = size - 1; i >= 0; i--) v = v * 256 + bytes[offset + i]!;
  return v;
}
