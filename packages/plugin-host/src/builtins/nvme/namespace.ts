/**
 * The one namespace: a RAM-backed disk of 512-byte blocks, which keeps its
 * data across resets as a disk does. Sparse: 64 KiB chunks are allocated on
 * first write, so opening a device costs nothing until the host writes (tests
 * and tools open sim:nvme thousands of times), and unwritten or deallocated
 * blocks read as zeros.
 */
import { ModelError } from '../../errors.js';
import { NVME_LBA_SIZE } from './identity.js';

/** The largest disk a model option may ask for: it lives in the server's RAM. */
export const NVME_MAX_DISK_BYTES = 1024 * 1024 * 1024;
const CHUNK = 64 * 1024;

/** Refuses a disk size that is not whole blocks between one block and NVME_MAX_DISK_BYTES. */
export function checkDiskBytes(bytes: number): number {
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
  return bytes;
}

export class RamNamespace {
  readonly blocks: number;
  readonly #chunks = new Map<number, Uint8Array>();

  constructor(bytes: number) {
    this.blocks = checkDiskBytes(bytes) / NVME_LBA_SIZE;
  }

  /** Whether blocks `slba`..`slba + count - 1` exist. */
  holds(slba: bigint, count: number): boolean {
    return slba + BigInt(count) <= BigInt(this.blocks);
  }

  read(slba: bigint, count: number): Uint8Array {
    const out = new Uint8Array(count * NVME_LBA_SIZE);
    this.#each(slba, count, (chunk, at, from, n) => {
      if (chunk) out.set(chunk.subarray(from, from + n), at);
    });
    return out;
  }

  write(slba: bigint, data: Uint8Array): void {
    this.#each(slba, data.length / NVME_LBA_SIZE, (chunk, at, from, n, index) => {
      let c = chunk;
      if (!c) {
        c = new Uint8Array(CHUNK);
        this.#chunks.set(index, c);
      }
      c.set(data.subarray(at, at + n), from);
    });
  }

  zero(slba: bigint, count: number): void {
    this.#each(slba, count, (chunk, _at, from, n, index) => {
      if (!chunk) return;
      if (n === CHUNK) this.#chunks.delete(index);
      else chunk.fill(0, from, from + n);
    });
  }

  /** Calls `fn` for each chunk piece of the block range: (chunk or undefined, offset in the range, offset in the chunk, bytes, chunk index). */
  #each(
    slba: bigint,
    count: number,
    fn: (chunk: Uint8Array | undefined, at: number, from: number, n: number, index: number) => void,
  ): void {
    const start = Number(slba) * NVME_LBA_SIZE;
    const end = start + count * NVME_LBA_SIZE;
    for (let pos = start; pos < end; ) {
      const index = Math.floor(pos / CHUNK);
      const from = pos - index * CHUNK;
      const n = Math.min(CHUNK - from, end - pos);
      fn(this.#chunks.get(index), pos - start, from, n, index);
      pos += n;
    }
  }
}
