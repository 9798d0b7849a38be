/**
 * `sim:virtio-net`: QEMU's modern virtio-net (1af4:1041) as Linux vfio-pci
 * presents it: MSI-X at the start of the 4 KiB BAR1 (PBA at 0x800), the
 * virtio structures in the 64-bit prefetchable BAR4 found through the vendor
 * capabilities. The common configuration answers feature selection, queue
 * selection and status (writing 0 resets); the device configuration holds the
 * MAC 52:54:00:12:34:57 and link up. No device reset (as the capture shows).
 */
import { PCI_CAP_ID_VNDR, PCI_CFG_SPACE_SIZE, pciCapabilities } from '@vfio-ts/vfio-sys/uapi';
import type { DeviceModel, ModelContext } from '../model.js';
import { capturedModel } from './captured.js';
import { virtioNetCapture } from './captures.js';
import { put32, register, register32 } from './registers.js';

export const VIRTIO_PCI_CAP_COMMON_CFG = 1;
export const VIRTIO_PCI_CAP_DEVICE_CFG = 4;
/** VIRTIO_F_VERSION_1 (32), VIRTIO_NET_F_MAC (5), VIRTIO_NET_F_STATUS (16). */
export const VIRTIO_NET_FEATURES = (1n << 32n) | (1n << 5n) | (1n << 16n);
export const VIRTIO_NET_QUEUES = 3;

export interface VirtioStructure {
  readonly bar: number;
  readonly offset: number;
  readonly length: number;
}

/** Finds a virtio structure by cfg_type in the vendor capabilities. */
export function virtioStructure(
  ctx: Pick<ModelContext, 'configRead'>,
  cfgType: number,
): VirtioStructure | undefined {
  // The standard 256 bytes, read once per lookup (models look up at set-up only).
  const config = Uint8Array.from({ length: PCI_CFG_SPACE_SIZE }, (_, i) => ctx.configRead(i, 1));
  for (const { id, offset } of pciCapabilities(config)) {
    if (id === PCI_CAP_ID_VNDR && config[offset + 3] === cfgType) {
      return {
        bar: config[offset + 4]!,
        offset: ctx.configRead(offset + 8, 4),
        length: ctx.configRead(offset + 12, 4),
      };
    }
  }
  return undefined;
}

export function virtioNetModel(): DeviceModel {
  return capturedModel('virtio-net', virtioNetCapture, (ctx) => {
    const common = virtioStructure(ctx, VIRTIO_PCI_CAP_COMMON_CFG)!;
    const device = virtioStructure(ctx, VIRTIO_PCI_CAP_DEVICE_CFG)!;
    const { region, memory } = ctx.bar(common.bar);
    const c = common.offset;
    const featureWord = (select: number) =>
      select < 2 ? Number((VIRTIO_NET_FEATURES >> BigInt(32 * select)) & 0xffffffffn) : 0;
    const init = () => {
      memory.u8.fill(0, c, c + common.length);
      put32(memory, c + 0x04, featureWord(0));
      memory.u16[(c + 0x12) / 2] = VIRTIO_NET_QUEUES;
      memory.u16[(c + 0x18) / 2] = 256;
      memory.u8.set([0x52, 0x54, 0x00, 0x12, 0x34, 0x57], device.offset);
      memory.u16[(device.offset + 6) / 2] = 1; // VIRTIO_NET_S_LINK_UP
      memory.u16[(device.offset + 8) / 2] = 1; // one queue pair
    };
    register32(region, memory, c + 0x00, 'virtio device_feature_select', {
      write: (select) => {
        put32(memory, c + 0x00, select);
        put32(memory, c + 0x04, featureWord(select));
      },
    });
    register32(region, memory, c + 0x04, 'virtio device_feature', { write: () => {} });
    register(region, memory, c + 0x14, 1, 'virtio device_status', {
      write: (value) => {
        if (value === 0)
          init(); // writing 0 resets the device
        else memory.u8[c + 0x14] = value;
      },
    });
    register(region, memory, c + 0x16, 2, 'virtio queue_select', {
      write: (queue) => {
        memory.u16[(c + 0x16) / 2] = queue;
        memory.u16[(c + 0x18) / 2] = queue < VIRTIO_NET_QUEUES ? 256 : 0;
      },
    });
    init();
    return undefined;
  });
}
