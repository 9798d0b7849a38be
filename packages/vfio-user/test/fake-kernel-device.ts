/**
 * A kernel-like device for the host tests (this machine has no VFIO device):
 * one memfd plays the device fd, each region at its own offset in it as the
 * kernel's index << 40 (here index << 20); BAR 0 is mappable with sparse
 * areas around an MSI-X table, BAR 2 mappable whole with MSIX_MAPPABLE,
 * config space (region 7) reached by pread/pwrite only. SET_IRQS keeps its
 * own dup of each eventfd as the kernel keeps a reference, and everything
 * asked of it is recorded. Its DMA space is the real DmaSpace over a
 * recording backend that checks, at each unmap, that the server still has
 * the memory mapped.
 */
import { readFileSync } from 'node:fs';
import {
  type AccessSize,
  DmaSpace,
  type EventFd,
  MappedArea,
  type MmapProtection,
  type RegionCapability,
  SysError,
  type VfioDeviceInfo,
  type VfioDeviceIo,
  type VfioIrqInfo,
  type VfioIrqSet,
  type VfioRegionInfo,
} from '@vfio-ts/vfio-sys';
import * as libc from '@vfio-ts/vfio-sys/libc';
import type { ServableKernelDevice } from '../src/index.js';

export const REGION_SHIFT = 20;
const READ = 1;
const WRITE = 2;
const MMAP = 4;

interface FakeRegion {
  readonly size: number;
  readonly flags: number;
  readonly capabilities: RegionCapability[];
}

const REGIONS: Record<number, FakeRegion> = {
  0: {
    size: 0x4000,
    flags: READ | WRITE | MMAP,
    // The MSI-X table at 0x1000-0x2fff is not mappable: two areas around it.
    capabilities: [
      {
        kind: 'sparse-mmap',
        id: 1,
        version: 1,
        areas: [
          { offset: 0, size: 0x1000 },
          { offset: 0x3000, size: 0x1000 },
        ],
      },
    ],
  },
  2: {
    size: 0x1000,
    flags: READ | WRITE | MMAP,
    capabilities: [{ kind: 'msix-mappable', id: 3, version: 1 }],
  },
  7: { size: 0x100, flags: READ | WRITE, capabilities: [] },
};

export interface IrqRecord {
  readonly index: number;
  readonly action: string;
  readonly start: number;
  readonly count: number;
  readonly data: string;
}

export class FakeKernelDevice implements VfioDeviceIo {
  readonly backend = 'kernel' as const;
  readonly name = '0000:0f:00.0';
  readonly fd: number;
  readonly irqCalls: IrqRecord[] = [];
  readonly commandWrites: number[] = [];
  resets = 0;
  /** The "kernel's" references to the client's eventfds, by index. */
  readonly held = new Map<number, (EventFd | null)[]>();
  #closed = false;

  constructor() {
    this.fd = libc.sysMemfdCreate('fake-vfio-device');
    libc.sysFtruncate(this.fd, 8 << REGION_SHIFT);
    // Config space: command register with memory decode on (as vfio-pci's open leaves it).
    this.regionWrite(7, 0x04, 0x0002, 2);
    this.commandWrites.length = 0;
  }

  deviceInfo(): VfioDeviceInfo {
    return { flags: 0x83, numRegions: 9, numIrqs: 5 }; // RESET | PCI | CAPS (an info capability chain)
  }

  regionInfo(index: number): VfioRegionInfo {
    const r = REGIONS[index] ?? { size: 0, flags: 0, capabilities: [] };
    if (index > 8) throw new SysError('ioctl', 22, { detail: `region ${index}` });
    return {
      index,
      flags: r.flags,
      size: r.size,
      fdOffset: index << REGION_SHIFT,
      capabilities: r.capabilities,
    };
  }

  regionFd(index: number): { fd: number; offset: number } | null {
    return REGIONS[index] && REGIONS[index].flags & MMAP
      ? { fd: this.fd, offset: index << REGION_SHIFT }
      : null;
  }

  irqInfo(index: number): VfioIrqInfo {
    return { index, flags: 1, count: [1, 1, 4, 1, 1][index] ?? 0 };
  }

  regionRead(index: number, offset: number, size: AccessSize): number {
    const buf = Buffer.alloc(size);
    libc.sysPread(this.fd, buf, (index << REGION_SHIFT) + offset);
    return buf.readUIntLE(0, size);
  }

  regionRead64(index: number, offset: number): bigint {
    const buf = Buffer.alloc(8);
    libc.sysPread(this.fd, buf, (index << REGION_SHIFT) + offset);
    return buf.readBigUInt64LE(0);
  }

  regionWrite(index: number, offset: number, value: number, size: AccessSize): void {
    const buf = Buffer.alloc(size);
    buf.writeUIntLE(value, 0, size);
    libc.sysPwrite(this.fd, buf, (index << REGION_SHIFT) + offset);
    if (index === 7 && offset === 0x04) this.commandWrites.push(value);
  }

  regionWrite64(index: number, offset: number, value: bigint): void {
    const buf = Buffer.alloc(8);
    buf.writeBigUInt64LE(value, 0);
    libc.sysPwrite(this.fd, buf, (index << REGION_SHIFT) + offset);
  }

  regionReadBlock(index: number, offset: number, length: number): Uint8Array {
    const buf = Buffer.alloc(length);
    libc.sysPread(this.fd, buf, (index << REGION_SHIFT) + offset);
    return buf;
  }

  regionWriteBlock(index: number, offset: number, data: Uint8Array): void {
    libc.sysPwrite(this.fd, data, (index << REGION_SHIFT) + offset);
  }

  regionMmap(index: number, offset: number, size: number, prot: MmapProtection): MappedArea {
    return MappedArea.map(this.fd, (index << REGION_SHIFT) + offset, size, prot, `fake region ${index}`);
  }

  setIrqs(request: VfioIrqSet): void {
    const { index, action, start, count, data } = request;
    this.irqCalls.push({ index, action, start, count, data: data.type });
    if (action !== 'trigger') return;
    if (data.type === 'none' && count === 0) {
      for (const e of this.held.get(index) ?? []) e?.close();
      this.held.delete(index);
      return;
    }
    if (data.type === 'eventfd') {
      const table = this.held.get(index) ?? [];
      data.eventfds.forEach((e, i) => {
        table[start + i]?.close();
        table[start + i] = e === null ? null : e.dup();
      });
      this.held.set(index, table);
    }
  }

  /** What the device does when it interrupts: signals the eventfd the "kernel" holds. */
  raise(index: number, vector: number): void {
    const e = this.held.get(index)?.[vector];
    if (!e) throw new Error(`no eventfd on IRQ ${index} vector ${vector}`);
    e.signal();
  }

  reset(): void {
    this.resets++;
  }

  get closed(): boolean {
    return this.#closed;
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const table of this.held.values()) for (const e of table) e?.close();
    this.held.clear();
    libc.sysClose(this.fd);
  }

  [Symbol.dispose](): void {
    this.close();
  }
}

export interface IommuRecord {
  readonly op: 'map' | 'unmap';
  readonly iova: bigint;
  readonly size: bigint;
  readonly address?: bigint;
  readonly read?: boolean;
  readonly write?: boolean;
  /** At unmap: was the memory still mapped in this process (it must be: IOMMU first, then munmap). */
  readonly stillMapped?: boolean;
}

/** Whether [address, +size) lies inside one mapping of this process. */
export function isMapped(address: bigint, size: bigint): boolean {
  return readFileSync('/proc/self/maps', 'utf8')
    .split('\n')
    .some((line) => {
      const [range] = line.split(' ');
      const [lo, hi] = (range ?? '').split('-').map((h) => BigInt(`0x${h || '0'}`));
      return lo !== undefined && hi !== undefined && address >= lo && address + size <= hi;
    });
}

/** A ServableKernelDevice: the fake device and a DmaSpace over a recording backend (IOVAs 0x1000-0xffffffff). */
export function fakeOpened(device: FakeKernelDevice): {
  opened: ServableKernelDevice;
  iommu: IommuRecord[];
  refuseNext: { errno: number } | null;
} {
  const state = { iommu: [] as IommuRecord[], refuseNext: null as { errno: number } | null };
  const addresses = new Map<bigint, bigint>(); // IOVA -> the address mapped there
  const dma = new DmaSpace({
    interface: 'group',
    label: 'fake type1 container',
    choosesIova: false,
    map(address, iova, size, read, write) {
      if (state.refuseNext) {
        const { errno } = state.refuseNext;
        state.refuseNext = null;
        throw new SysError('ioctl', errno, { detail: 'VFIO_IOMMU_MAP_DMA' });
      }
      state.iommu.push({ op: 'map', iova: iova!, size, address, read, write });
      addresses.set(iova!, address);
      return iova!;
    },
    unmap(iova, size) {
      state.iommu.push({ op: 'unmap', iova, size, stillMapped: isMapped(addresses.get(iova)!, size) });
      addresses.delete(iova);
    },
    ranges: () => [{ start: 0x1000n, last: 0xffff_ffffn }],
  });
  const opened = { device, dma, interface: 'group' as const, path: '/dev/vfio/fake' };
  return Object.assign(state, { opened });
}
