/**
 * `sim:nvme`: QEMU's NVMe controller (1b36:0010) as Linux vfio-pci presents
 * it (configuration space and regions from the capture: BAR0 of 16 KiB, fully
 * mappable, the MSI-X table of 65 vectors at +0x2000 and the PBA at +0x3000),
 * driving a working NVMe 1.4 controller with one RAM-backed namespace
 * (builtins/nvme/). A client writes BAR0 through its mapping, so the
 * controller polls BAR0 memory on a device-owned timer: every 1 ms while
 * commands flow, backing off to 5 ms and then 20 ms when idle or disabled.
 * Slow-path writes to CC and the doorbells act at once.
 */
import { MemoryRegion, memoryRead, memoryWrite } from '@vfio-ts/memory-core';
import { ModelError, quote } from '../errors.js';
import type { DeviceModel } from '../model.js';
import { capturedModel } from './captured.js';
import { nvmeCapture } from './captures.js';
import { NvmeController } from './nvme/controller.js';
import { NVME_DEFAULT_DISK_BYTES } from './nvme/identity.js';
import { checkDiskBytes, RamNamespace } from './nvme/namespace.js';
import {
  NVME_CAP,
  NVME_CC,
  NVME_CSTS,
  NVME_DOORBELLS,
  NVME_DOORBELLS_END,
  NVME_VS,
} from './nvme/registers.js';
import { tracePciReset } from './nvme/trace.js';
import { register32 } from './registers.js';

export { NVME_IDENTITY, type NvmeIdentity } from './nvme/identity.js';
export {
  NVME_AQA,
  NVME_CAP,
  NVME_CAP_VALUE,
  NVME_CC,
  NVME_CSTS,
  NVME_INTMC,
  NVME_INTMS,
  NVME_VS,
  NVME_VS_VALUE,
} from './nvme/registers.js';
export {
  NVME_DATA_TRANSFER_ERROR as NVME_STATUS_DATA_TRANSFER_ERROR,
  NVME_DNR as NVME_STATUS_DNR,
} from './nvme/status.js';

/**
 * Poll intervals (ms): while commands flow and for 100 ms after, then 5 ms
 * for about a second, then (idle, or disabled) 20 ms. A poll costs ~2 us; the
 * timer wake-up costs more, so a long-idle controller wakes 50 times a second.
 */
export const NVME_POLL_BUSY_MS = 1;
export const NVME_POLL_IDLE_MS = 5;
export const NVME_POLL_SLEEP_MS = 20;
const BUSY_POLLS = 100;
const IDLE_POLLS = BUSY_POLLS + 200;

export interface NvmeModelOptions {
  /** Size of the namespace's RAM disk in bytes (a multiple of 512; default 4 MiB). */
  readonly diskBytes?: number;
}

function diskBytesOf(options: unknown): number {
  if (options === undefined) return NVME_DEFAULT_DISK_BYTES;
  if (options === null || typeof options !== 'object')
    throw new ModelError('ERR_MODEL_OPTION', `sim:nvme options must be an object, not ${quote(options)}`);
  const { diskBytes, ...rest } = options as Record<string, unknown>;
  const unknown = Object.keys(rest);
  if (unknown.length > 0)
    throw new ModelError(
      'ERR_MODEL_OPTION',
      `sim:nvme has no option ${quote(unknown[0])}`,
      'its one option is diskBytes',
    );
  if (diskBytes === undefined) return NVME_DEFAULT_DISK_BYTES;
  if (typeof diskBytes !== 'number')
    throw new ModelError('ERR_MODEL_OPTION', `sim:nvme diskBytes must be a number, not ${quote(diskBytes)}`);
  return diskBytes;
}

export function nvmeModel(options?: NvmeModelOptions): DeviceModel {
  const diskBytes = diskBytesOf(options);
  checkDiskBytes(diskBytes); // refused when the model is made, not when it is opened
  return capturedModel('nvme', nvmeCapture, (ctx) => {
    const { region, memory } = ctx.bar(0);
    const controller = new NvmeController(ctx, memory, new RamNamespace(diskBytes));
    register32(region, memory, NVME_CC, 'nvme CC', { write: (value) => controller.writeCc(value) });
    register32(region, memory, NVME_CSTS, 'nvme CSTS', {
      read: () => controller.syncCc(),
      write: () => {}, // read-only (NSSRO is W1C; never set here)
    });
    register32(region, memory, NVME_VS, 'nvme VS', { write: () => {} });
    register32(region, memory, NVME_CAP, 'nvme CAP lo', { write: () => {} });
    register32(region, memory, NVME_CAP + 4, 'nvme CAP hi', { write: () => {} });
    region.addSubregionOverlap(
      NVME_DOORBELLS,
      MemoryRegion.io('nvme doorbells', NVME_DOORBELLS_END - NVME_DOORBELLS, {
        read: (at, n) => memoryRead(memory, NVME_DOORBELLS + at, n as 1 | 2 | 4),
        write: (at, value, n) => {
          memoryWrite(memory, NVME_DOORBELLS + at, Number(value), n as 1 | 2 | 4);
          controller.poll();
        },
        impl: { min: 1, max: 4 },
        valid: { min: 1, max: 4 },
      }),
      1,
    );
    let idle = 0;
    ctx.every(NVME_POLL_SLEEP_MS, () => {
      idle = controller.poll() ? 0 : idle + 1;
      if (!controller.enabled || idle >= IDLE_POLLS) return NVME_POLL_SLEEP_MS;
      return idle < BUSY_POLLS ? NVME_POLL_BUSY_MS : NVME_POLL_IDLE_MS;
    });
    return {
      reset: () => {
        tracePciReset.emit();
        controller.powerOn();
      },
    };
  });
}
