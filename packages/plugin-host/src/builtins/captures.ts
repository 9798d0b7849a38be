/**
 * Facts captured from QEMU 7.2 emulated devices bound to the real Linux 6.1
 * vfio-pci driver (Debian 6.1.0-56-amd64, emulated Intel IOMMU), read through
 * the VFIO UAPI: the CONFIG region bytes exactly as pread returns them, and
 * the device info and every region and IRQ info. Origin: the team's reference
 * captures, /work/shared/reference/devices/<name>/ (vfio-config.bin and
 * vfio.json; ivshmem is ivshmem-plain there).
 *
 * This is the one copy in the repository: the built-in models are made from
 * it, plugin-host's tests hold the models to it byte for byte, and the VM
 * tier checks the real driver against it (tools/vm/test/reference.ts derives
 * its facts from `deviceCaptures`).
 */

export interface CapturedRegion {
  readonly index: number;
  readonly flags: number;
  readonly size: number;
  readonly msixMappable: boolean;
  /** VFIO_DEVICE_GET_REGION_INFO failed (the VGA region of a device that is not VGA); flags and size are 0. */
  readonly error?: 'EINVAL';
}

export interface CapturedIrq {
  readonly index: number;
  /** null: VFIO_DEVICE_GET_IRQ_INFO failed with EINVAL. */
  readonly flags: number | null;
  readonly count: number;
}

export interface CapturedDevice {
  readonly ids: string;
  /** VFIO_DEVICE_GET_INFO: flags, num_regions and num_irqs. */
  readonly deviceFlags: number;
  readonly numRegions: number;
  readonly numIrqs: number;
  /** Hex of the CONFIG region. */
  readonly configHex: string;
  readonly regions: readonly CapturedRegion[];
  readonly irqs: readonly CapturedIrq[];
}

/**
 * The hex of a CONFIG region of `size` bytes from its captured bytes up to the
 * last non-zero one: the rest of the region was captured as zeros.
 */
function configRegion(size: number, hex: string): string {
  return hex.padEnd(size * 2, '0');
}

export const nvmeCapture: CapturedDevice = {
  ids: '1b36:0010',
  deviceFlags: 3,
  numRegions: 9,
  numIrqs: 5,
  configHex: configRegion(
    0x1000,
    '361b10000301100002020801000000000400b0fe000000000000000000000000000000000000000000000000f41a0011' +
      '0000000040000000000000000b0100001180400000200000003000000000000000000000000000000000000000000000' +
      '010003000800000000000000000000000000000000000000000000000000000010609200008000100000000011040000' +
      '0000110000000000000000000000000000000000000030',
  ),
  regions: [
    { index: 0, flags: 15, size: 0x4000, msixMappable: true },
    { index: 1, flags: 0, size: 0x0, msixMappable: false },
    { index: 2, flags: 0, size: 0x0, msixMappable: false },
    { index: 3, flags: 0, size: 0x0, msixMappable: false },
    { index: 4, flags: 0, size: 0x0, msixMappable: false },
    { index: 5, flags: 0, size: 0x0, msixMappable: false },
    { index: 6, flags: 0, size: 0x0, msixMappable: false },
    { index: 7, flags: 3, size: 0x1000, msixMappable: false },
    { index: 8, flags: 0, size: 0x0, msixMappable: false, error: 'EINVAL' },
  ],
  irqs: [
    { index: 0, flags: 7, count: 1 },
    { index: 1, flags: 9, count: 0 },
    { index: 2, flags: 9, count: 65 },
    { index: 3, flags: 9, count: 1 },
    { index: 4, flags: 9, count: 1 },
  ],
};

export const e1000eCapture: CapturedDevice = {
  ids: '8086:10d3',
  deviceFlags: 3,
  numRegions: 9,
  numIrqs: 5,
  configHex: configRegion(
    0x1000,
    '8680d3100301100000000002000000000000acfe0000aefea1c100000040b0fe00000000000000000000000086800000' +
      '0000a0fec8000000000000000a0100000000000000000000000000000000000000000000000000000000000000000000' +
      '000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000' +
      '000000000000000000000000000000001100040003000000032000000000000000000000000000000000000000000000' +
      '000000000000000001d022000000000005e0800000000000000000000000000010a09100008000000000000011040000' +
      '00001100000000000000000000000000010002140000000000000000302046000000000000e00000a000000000000000' +
      '000000000000000000000000000000000000000000000000000000000000000003000100563412ffff005452',
  ),
  regions: [
    { index: 0, flags: 7, size: 0x20000, msixMappable: false },
    { index: 1, flags: 7, size: 0x20000, msixMappable: false },
    { index: 2, flags: 3, size: 0x20, msixMappable: false },
    { index: 3, flags: 15, size: 0x4000, msixMappable: true },
    { index: 4, flags: 0, size: 0x0, msixMappable: false },
    { index: 5, flags: 0, size: 0x0, msixMappable: false },
    { index: 6, flags: 1, size: 0x40000, msixMappable: false },
    { index: 7, flags: 3, size: 0x1000, msixMappable: false },
    { index: 8, flags: 0, size: 0x0, msixMappable: false, error: 'EINVAL' },
  ],
  irqs: [
    { index: 0, flags: 7, count: 1 },
    { index: 1, flags: 9, count: 1 },
    { index: 2, flags: 9, count: 5 },
    { index: 3, flags: 9, count: 1 },
    { index: 4, flags: 9, count: 1 },
  ],
};

export const virtioNetCapture: CapturedDevice = {
  ids: '1af4:1041',
  deviceFlags: 2,
  numRegions: 9,
  numIrqs: 5,
  configHex: configRegion(
    0x100,
    'f41a41100301100001000002000000000000000000b0b0fe00000000000000000cc080fe0000000000000000f41a0011' +
      '0000a8fe98000000000000000b0100000900100104000000000000000010000009401003040000000010000000100000' +
      '095010040400000000200000001000000960140204000000003000000010000004000000097014050000000000000000' +
      '000000000000000011840300010000000108',
  ),
  regions: [
    { index: 0, flags: 0, size: 0x0, msixMappable: false },
    { index: 1, flags: 15, size: 0x1000, msixMappable: true },
    { index: 2, flags: 0, size: 0x0, msixMappable: false },
    { index: 3, flags: 0, size: 0x0, msixMappable: false },
    { index: 4, flags: 7, size: 0x4000, msixMappable: false },
    { index: 5, flags: 0, size: 0x0, msixMappable: false },
    { index: 6, flags: 1, size: 0x40000, msixMappable: false },
    { index: 7, flags: 3, size: 0x100, msixMappable: false },
    { index: 8, flags: 0, size: 0x0, msixMappable: false, error: 'EINVAL' },
  ],
  irqs: [
    { index: 0, flags: 7, count: 1 },
    { index: 1, flags: 9, count: 0 },
    { index: 2, flags: 9, count: 4 },
    { index: 3, flags: null, count: 0 },
    { index: 4, flags: 9, count: 1 },
  ],
};

export const eduCapture: CapturedDevice = {
  ids: '1234:11e8',
  deviceFlags: 2,
  numRegions: 9,
  numIrqs: 5,
  configHex: configRegion(
    0x100,
    '3412e811030110001000ff0000000000000090fe000000000000000000000000000000000000000000000000f41a0011' +
      '0000000040000000000000000b010000050080',
  ),
  regions: [
    { index: 0, flags: 7, size: 0x100000, msixMappable: false },
    { index: 1, flags: 0, size: 0x0, msixMappable: false },
    { index: 2, flags: 0, size: 0x0, msixMappable: false },
    { index: 3, flags: 0, size: 0x0, msixMappable: false },
    { index: 4, flags: 0, size: 0x0, msixMappable: false },
    { index: 5, flags: 0, size: 0x0, msixMappable: false },
    { index: 6, flags: 0, size: 0x0, msixMappable: false },
    { index: 7, flags: 3, size: 0x100, msixMappable: false },
    { index: 8, flags: 0, size: 0x0, msixMappable: false, error: 'EINVAL' },
  ],
  irqs: [
    { index: 0, flags: 7, count: 1 },
    { index: 1, flags: 9, count: 1 },
    { index: 2, flags: 9, count: 0 },
    { index: 3, flags: null, count: 0 },
    { index: 4, flags: 9, count: 1 },
  ],
};

export const ivshmemPlainCapture: CapturedDevice = {
  ids: '1af4:1110',
  deviceFlags: 2,
  numRegions: 9,
  numIrqs: 5,
  configHex: configRegion(
    0x100,
    'f41a101103010000010000050000000000d0b0fe000000000c0040fe00000000000000000000000000000000f41a0011',
  ),
  regions: [
    { index: 0, flags: 7, size: 0x100, msixMappable: false },
    { index: 1, flags: 0, size: 0x0, msixMappable: false },
    { index: 2, flags: 7, size: 0x400000, msixMappable: false },
    { index: 3, flags: 0, size: 0x0, msixMappable: false },
    { index: 4, flags: 0, size: 0x0, msixMappable: false },
    { index: 5, flags: 0, size: 0x0, msixMappable: false },
    { index: 6, flags: 0, size: 0x0, msixMappable: false },
    { index: 7, flags: 3, size: 0x100, msixMappable: false },
    { index: 8, flags: 0, size: 0x0, msixMappable: false, error: 'EINVAL' },
  ],
  irqs: [
    { index: 0, flags: 7, count: 0 },
    { index: 1, flags: 9, count: 0 },
    { index: 2, flags: 9, count: 0 },
    { index: 3, flags: null, count: 0 },
    { index: 4, flags: 9, count: 1 },
  ],
};

/** Every capture by its reference name (the folder under reference/devices). */
export const deviceCaptures = {
  nvme: nvmeCapture,
  e1000e: e1000eCapture,
  'virtio-net': virtioNetCapture,
  edu: eduCapture,
  'ivshmem-plain': ivshmemPlainCapture,
} as const satisfies Record<string, CapturedDevice>;
