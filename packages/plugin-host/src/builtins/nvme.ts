/**
 * `sim:nvme`: QEMU's NVMe controller (1b36:0010) as Linux vfio-pci presents
 * it: configuration space and regions from the capture, and the controller
 * registers a driver reads first. CC.EN drives CSTS.RDY; the MSI-X table
 * (65 vectors at BAR0+0x2000) and PBA (+0x3000) live in BAR memory.
 */
import type { DeviceModel } from '../model.js';
import { capturedModel } from './captured.js';
import { nvmeCapture } from './captures.js';
import { put32, put64, register32 } from './registers.js';

export const NVME_CAP = 0x00;
export const NVME_VS = 0x08;
export const NVME_INTMS = 0x0c;
export const NVME_INTMC = 0x10;
export const NVME_CC = 0x14;
export const NVME_CSTS = 0x1c;
export const NVME_AQA = 0x24;

/** MQES 2047, CQR, TO 7.5 s, CSS NVM, MPSMAX 64 KiB: what QEMU's controller reports. */
export const NVME_CAP_VALUE = 0x7ffn | (1n << 16n) | (0x0fn << 24n) | (1n << 37n) | (4n << 52n);
export const NVME_VS_VALUE = 0x00010400; // NVMe 1.4

export function nvmeModel(): DeviceModel {
  return capturedModel('nvme', nvmeCapture, (ctx) => {
    const { region, memory } = ctx.bar(0);
    const init = () => {
      put64(memory, NVME_CAP, NVME_CAP_VALUE);
      put32(memory, NVME_VS, NVME_VS_VALUE);
      put32(memory, NVME_CC, 0);
      put32(memory, NVME_CSTS, 0);
    };
    // CSTS.RDY follows CC.EN; reconciled on every slow-path touch, so a CC
    // written through a mapping is honoured the next time CSTS is read.
    const readyFromCc = () => {
      const en = memory.u32[NVME_CC / 4]! & 1;
      put32(memory, NVME_CSTS, (memory.u32[NVME_CSTS / 4]! & ~1) | en);
    };
    register32(region, memory, NVME_CC, 'nvme CC', {
      write: (value) => {
        put32(memory, NVME_CC, value);
        readyFromCc();
      },
    });
    register32(region, memory, NVME_CSTS, 'nvme CSTS', {
      read: () => {
        readyFromCc();
        return memory.u32[NVME_CSTS / 4]!;
      },
      write: () => {}, // read-only (NSSRO is W1C; never set here)
    });
    register32(region, memory, NVME_VS, 'nvme VS', { write: () => {} });
    register32(region, memory, NVME_CAP, 'nvme CAP lo', { write: () => {} });
    register32(region, memory, NVME_CAP + 4, 'nvme CAP hi', { write: () => {} });
    init();
    return { reset: init };
  });
}
