/**
 * The seam's rule for single region accesses, shared by every backend:
 * regionRead/regionWrite take 1, 2 or 4 bytes (one ioread/iowrite in
 * vfio-pci), and 8 goes through regionRead64/regionWrite64 so the value stays
 * an exact bigint. Any other size would be a partial or split transfer.
 */
import type { AccessSize } from './device-io.js';
import { VfioArgumentError } from './errors.js';

/** Throws ERR_VFIO_ARGUMENT, before anything is touched, unless `size` is 1, 2 or 4. */
export function checkAccessSize(
  size: number,
  call: 'regionRead' | 'regionWrite',
): asserts size is AccessSize {
  if (size === 1 || size === 2 || size === 4) return;
  if (size === 8)
    throw new VfioArgumentError(
      `${call} of 8 bytes: a number cannot hold every 64-bit value`,
      `use ${call}64, which takes a bigint`,
    );
  throw new VfioArgumentError(
    `${call} size ${String(size).slice(0, 20)} is not an access size`,
    `use 1, 2 or 4 (or ${call}64 for 8)`,
  );
}
