/**
 * The guest's PCI layout: what QEMU is given and which devices init binds to
 * vfio-pci. The addresses follow the reference captures (../shared/reference),
 * so the facts copied from them apply as they are.
 */
export interface GuestDevice {
  /** Guest PCI address. */
  readonly bdf: string;
  /** Short name used by the tests. */
  readonly name: string;
  /** The QEMU -device value. */
  readonly qemu: string;
  /** Bound to vfio-pci by the guest's init before any other driver loads. */
  readonly vfio: boolean;
}

export const GUEST_DEVICES: readonly GuestDevice[] = [
  // 00:01.0 and 00:02.0 are the two virtio-9p shares (host root, results).
  { bdf: '0000:00:03.0', name: 'nvme', qemu: 'nvme,serial=vfiots,drive=nvme0,addr=03.0', vfio: true },
  { bdf: '0000:00:04.0', name: 'e1000e', qemu: 'e1000e,addr=04.0,netdev=net0', vfio: true },
  {
    bdf: '0000:00:06.0',
    name: 'virtio-net',
    // Modern only, and behind the vIOMMU: without iommu_platform its DMA would bypass it.
    qemu: 'virtio-net-pci,disable-legacy=on,iommu_platform=on,addr=06.0,netdev=net1',
    vfio: true,
  },
  { bdf: '0000:00:07.0', name: 'edu', qemu: 'edu,addr=07.0', vfio: true },
  // A sub-page (0x100) BAR0 that vfio-pci still lets user space mmap, and a 4 MiB RAM BAR2.
  { bdf: '0000:00:09.0', name: 'ivshmem', qemu: 'ivshmem-plain,memdev=ivshmem0,addr=09.0', vfio: true },
  // A group that cannot be viable: two functions of one slot without ACS share
  // an IOMMU group, and function 1 is claimed by virtio-pci.
  { bdf: '0000:00:0a.0', name: 'edu-shared', qemu: 'edu,addr=0a.0,multifunction=on', vfio: true },
  { bdf: '0000:00:0a.1', name: 'rng-shared', qemu: 'virtio-rng-pci,addr=0a.1', vfio: false },
];

export function guestDevice(name: string): GuestDevice {
  const d = GUEST_DEVICES.find((x) => x.name === name);
  if (!d) throw new Error(`no guest device named ${name}`);
  return d;
}
