// Facts about QEMU 7.2's devices under Linux 6.1 vfio-pci, copied from the
// reference captures (shared/reference/devices/<name>/vfio.json; ivshmem is
// ivshmem-plain), taken in the same guest layout as the VM tier's. Region
// offsets are index << 40.
export interface RegionFact {
  readonly index: number;
  readonly flags: number;
  readonly size: number;
  readonly caps: readonly number[];
}
export interface IrqFact {
  readonly index: number;
  readonly flags: number;
  readonly count: number;
}
export interface DeviceFact {
  readonly bdf: string;
  readonly vendorDevice: number;
  readonly deviceFlags: number;
  readonly numRegions: number;
  readonly numIrqs: number;
  readonly regions: readonly RegionFact[];
  readonly irqs: readonly (IrqFact | { readonly index: number; readonly errno: 'EINVAL' })[];
  readonly msix: {
    readonly bar: number;
    readonly tableOffset: number;
    readonly pbaOffset: number;
    readonly entries: number;
  } | null;
}
export const REFERENCE: Record<'nvme' | 'e1000e' | 'virtio-net' | 'edu' | 'ivshmem', DeviceFact> = {
  nvme: {
    bdf: '0000:00:03.0',
    vendorDevice: 0x00101b36,
    deviceFlags: 3,
    numRegions: 9,
    numIrqs: 5,
    regions: [
      { index: 0, flags: 15, size: 0x4000, caps: [3] },
      { index: 1, flags: 0, size: 0x0, caps: [] },
      { index: 2, flags: 0, size: 0x0, caps: [] },
      { index: 3, flags: 0, size: 0x0, caps: [] },
      { index: 4, flags: 0, size: 0x0, caps: [] },
      { index: 5, flags: 0, size: 0x0, caps: [] },
      { index: 6, flags: 0, size: 0x0, caps: [] },
      { index: 7, flags: 3, size: 0x1000, caps: [] },
    ],
    irqs: [
      { index: 0, flags: 7, count: 1 },
      { index: 1, flags: 9, count: 0 },
      { index: 2, flags: 9, count: 65 },
      { index: 3, flags: 9, count: 1 },
      { index: 4, flags: 9, count: 1 },
    ],
    msix: { bar: 0, tableOffset: 0x2000, pbaOffset: 0x3000, entries: 65 },
  },
  e1000e: {
    bdf: '0000:00:04.0',
    vendorDevice: 0x10d38086,
    deviceFlags: 3,
    numRegions: 9,
    numIrqs: 5,
    regions: [
      { index: 0, flags: 7, size: 0x20000, caps: [] },
      { index: 1, flags: 7, size: 0x20000, caps: [] },
      { index: 2, flags: 3, size: 0x20, caps: [] },
      { index: 3, flags: 15, size: 0x4000, caps: [3] },
      { index: 4, flags: 0, size: 0x0, caps: [] },
      { index: 5, flags: 0, size: 0x0, caps: [] },
      { index: 6, flags: 1, size: 0x40000, caps: [] },
      { index: 7, flags: 3, size: 0x1000, caps: [] },
    ],
    irqs: [
      { index: 0, flags: 7, count: 1 },
      { index: 1, flags: 9, count: 1 },
      { index: 2, flags: 9, count: 5 },
      { index: 3, flags: 9, count: 1 },
      { index: 4, flags: 9, count: 1 },
    ],
    msix: { bar: 3, tableOffset: 0x0, pbaOffset: 0x2000, entries: 5 },
  },
  'virtio-net': {
    bdf: '0000:00:06.0',
    vendorDevice: 0x10411af4,
    deviceFlags: 2,
    numRegions: 9,
    numIrqs: 5,
    regions: [
      { index: 0, flags: 0, size: 0x0, caps: [] },
      { index: 1, flags: 15, size: 0x1000, caps: [3] },
      { index: 2, flags: 0, size: 0x0, caps: [] },
      { index: 3, flags: 0, size: 0x0, caps: [] },
      { index: 4, flags: 7, size: 0x4000, caps: [] },
      { index: 5, flags: 0, size: 0x0, caps: [] },
      { index: 6, flags: 1, size: 0x40000, caps: [] },
      { index: 7, flags: 3, size: 0x100, caps: [] },
    ],
    irqs: [
      { index: 0, flags: 7, count: 1 },
      { index: 1, flags: 9, count: 0 },
      { index: 2, flags: 9, count: 4 },
      { index: 3, errno: 'EINVAL' },
      { index: 4, flags: 9, count: 1 },
    ],
    msix: { bar: 1, tableOffset: 0x0, pbaOffset: 0x800, entries: 4 },
  },
  edu: {
    bdf: '0000:00:07.0',
    vendorDevice: 0x11e81234,
    deviceFlags: 2,
    numRegions: 9,
    numIrqs: 5,
    regions: [
      { index: 0, flags: 7, size: 0x100000, caps: [] },
      { index: 1, flags: 0, size: 0x0, caps: [] },
      { index: 2, flags: 0, size: 0x0, caps: [] },
      { index: 3, flags: 0, size: 0x0, caps: [] },
      { index: 4, flags: 0, size: 0x0, caps: [] },
      { index: 5, flags: 0, size: 0x0, caps: [] },
      { index: 6, flags: 0, size: 0x0, caps: [] },
      { index: 7, flags: 3, size: 0x100, caps: [] },
    ],
    irqs: [
      { index: 0, flags: 7, count: 1 },
      { index: 1, flags: 9, count: 1 },
      { index: 2, flags: 9, count: 0 },
      { index: 3, errno: 'EINVAL' },
      { index: 4, flags: 9, count: 1 },
    ],
    msix: null,
  },
  ivshmem: {
    bdf: '0000:00:09.0',
    vendorDevice: 0x11101af4,
    deviceFlags: 2,
    numRegions: 9,
    numIrqs: 5,
    regions: [
      { index: 0, flags: 7, size: 0x100, caps: [] },
      { index: 1, flags: 0, size: 0x0, caps: [] },
      { index: 2, flags: 7, size: 0x400000, caps: [] },
      { index: 3, flags: 0, size: 0x0, caps: [] },
      { index: 4, flags: 0, size: 0x0, caps: [] },
      { index: 5, flags: 0, size: 0x0, caps: [] },
      { index: 6, flags: 0, size: 0x0, caps: [] },
      { index: 7, flags: 3, size: 0x100, caps: [] },
    ],
    irqs: [
      { index: 0, flags: 7, count: 0 },
      { index: 1, flags: 9, count: 0 },
      { index: 2, flags: 9, count: 0 },
      { index: 3, errno: 'EINVAL' },
      { index: 4, flags: 9, count: 1 },
    ],
    msix: null,
  },
};
