/**
 * The memory behind a model's BARs: memory BARs live in a memfd (so a user's
 * mmap, the slow path and the model see the same bytes), I/O BARs in
 * ordinary memory. Each BAR has its own address space over the model's
 * register tree, which is what slow-path accesses dispatch through.
 */
import { AddressSpace, MemoryRegion, type RamDeviceMemory } from '@vfio-ts/memory-core';
import { MappedArea } from '@vfio-ts/vfio-sys';
import * as libc from '@vfio-ts/vfio-sys/libc';
import type { BarLayout } from './config-space.js';
import { ModelError } from './errors.js';

export interface BarBacking {
  readonly layout: BarLayout;
  readonly mappable: boolean;
  /** memfd backing a memory BAR (-1 for I/O BARs, which live in ordinary memory). */
  readonly memfd: number;
  /** Bytes of the memfd: the BAR size rounded up to the emulated page. */
  readonly backingSize: number;
  readonly ownMapping: MappedArea | null;
  readonly memory: RamDeviceMemory;
  readonly region: MemoryRegion;
  readonly space: AddressSpace;
}

export function alignUp(value: number, align: number): number {
  return Math.ceil(value / align) * align;
}

/** Creates the memory of one BAR; `device` names it in messages and region names. */
export function backBar(
  device: string,
  layout: BarLayout & { mappable?: boolean },
  pageSize: number,
): BarBacking {
  const { index, size, kind } = layout;
  // Exact for every safe integer: a 32-bit `size & (size - 1)` took 0x180000000 for a power of two.
  if (
    !Number.isSafeInteger(size) ||
    size < (kind === 'io' ? 4 : 16) ||
    2 ** Math.round(Math.log2(size)) !== size
  ) {
    throw new ModelError(
      'ERR_MODEL_BAR',
      `BAR ${index} of ${device}: size ${size} is not a power of two >= ${kind === 'io' ? 4 : 16}`,
    );
  }
  const name = `${device} BAR ${index}`;
  if (kind === 'io') {
    const region = MemoryRegion.ram(name, size);
    return {
      layout,
      mappable: false,
      memfd: -1,
      backingSize: size,
      ownMapping: null,
      memory: region.memory!,
      region,
      space: new AddressSpace(region, name, { kind: 'io' }),
    };
  }
  const backingSize = alignUp(size, pageSize);
  const memfd = libc.sysMemfdCreate(name);
  try {
    libc.sysFtruncate(memfd, backingSize);
    const ownMapping = MappedArea.map(memfd, 0, backingSize, { read: true, write: true }, `${name} (model)`);
    const region = MemoryRegion.ramDevice(name, size, ownMapping);
    return {
      layout,
      mappable: layout.mappable !== false,
      memfd,
      backingSize,
      ownMapping,
      memory: ownMapping,
      region,
      space: new AddressSpace(region, name),
    };
  } catch (err) {
    libc.sysClose(memfd);
    throw err;
  }
}

/**
 * Zeroes a BAR's memory (device reset). A memory BAR's memfd gets its pages
 * punched out: every mapping sees zeros at once and a 128 GiB BAR costs
 * nothing, where filling it would touch (and allocate) every page.
 */
export function zeroBarMemory(bar: BarBacking): void {
  if (bar.memfd >= 0) libc.sysPunchHole(bar.memfd, 0, bar.backingSize);
  else bar.memory.u8.fill(0); // an I/O BAR: at most 256 bytes of owned RAM
}

/** Releases what backBar acquired: the address space, the model's mapping, the memfd. */
export function releaseBar(bar: BarBacking): void {
  bar.space.destroy();
  bar.ownMapping?.unmap();
  if (bar.memfd >= 0) libc.sysClose(bar.memfd);
}
