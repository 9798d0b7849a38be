/** The one namespace: a RAM-backed disk of 512-byte blocks, which keeps its data across resets as a disk does. */
import { ModelError } from '../../errors.js';
import { NVME_LBA_SIZE } from './identity.js';

/** The largest disk a model option may ask for: it lives in the server's RAM. */
export const NVME_MAX_DISK_BYTES = 1024 * 1024 * 1024;

export class RamNamespace {
  readonly blocks: number;
  readonly data: Uint8Array;

  constructor(bytes: number) {
    if (
      !Number.isSafeInteger(bytes) ||
      bytes < NVME_LBA_SIZE ||
      bytes > NVME_MAX_DISK_BYTES ||
      bytes % NVME_LBA_SIZE !== 0
    ) {
      throw new ModelError(
        'ERR_MODEL_OPTION',
        `sim:nvme diskBytes ${bytes}: expected a multiple of ${NVME_LBA_SIZE} from ${NVME_LBA_SIZE} to ${NVME_MAX_DISK_BYTES}`,
      );
    }
    this.blocks = bytes / NVME_LBA_SIZE;
    this.data = new Uint8Array(bytes);
  }

  /** Whether blocks `slba`..`slba + count - 1` exist. */
  holds(slba: bigint, count: number): boolean {
    return slba + BigInt(count) <= BigInt(this.blocks);
  }

  bytes(slba: bigint, count: number): Uint8Array {
    const at = Number(slba) * NVME_LBA_SIZE;
    return this.data.subarray(at, at + count * NVME_LBA_SIZE);
  }
}
