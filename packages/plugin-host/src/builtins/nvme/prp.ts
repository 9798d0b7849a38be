/**
 * Physical Region Page lists (NVMe 1.4 section 4.3): where a command's data
 * lies in host memory. PRP1 may start inside a page; the rest are whole
 * pages, in PRP2 itself when they fit one more page, else in a list PRP2
 * points at, whose last entry chains to the next list page when more follow.
 */
import { type NvmeDma, NvmeDmaFault } from './dma.js';
import { NVME_DATA_TRANSFER_ERROR, NVME_INVALID_PRP_OFFSET } from './status.js';

export interface Segment {
  readonly address: bigint;
  readonly length: number;
}

/** The data of a command: its segments, or the status that refuses it. */
export type Prps = { readonly segments: readonly Segment[] } | { readonly status: number };

export function prpSegments(
  dma: NvmeDma,
  prp1: bigint,
  prp2: bigint,
  length: number,
  pageSize: number,
): Prps {
  const page = BigInt(pageSize);
  if ((prp1 & 3n) !== 0n) return { status: NVME_INVALID_PRP_OFFSET };
  const first = Math.min(length, pageSize - Number(prp1 % page));
  const segments: Segment[] = [{ address: prp1, length: first }];
  let left = length - first;
  if (left === 0) return { segments };
  if (left <= pageSize) {
    if (prp2 % page !== 0n) return { status: NVME_INVALID_PRP_OFFSET };
    segments.push({ address: prp2, length: left });
    return { segments };
  }
  // A list: entries from PRP2 to the end of its page, the last one chaining on if more pages follow.
  if ((prp2 & 7n) !== 0n) return { status: NVME_INVALID_PRP_OFFSET };
  let list = prp2;
  try {
    while (left > 0) {
      const slots = Number((page - (list % page)) / 8n);
      const pages = Math.ceil(left / pageSize);
      const take = Math.min(pages, slots); // when more follow, the last slot is the chain
      const raw = dma.read(list, take * 8);
      const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
      const entries = pages > slots ? take - 1 : take;
      for (let i = 0; i < entries; i++) {
        const address = view.getBigUint64(8 * i, true);
        if (address % page !== 0n) return { status: NVME_INVALID_PRP_OFFSET };
        const n = Math.min(left, pageSize);
        segments.push({ address, length: n });
        left -= n;
      }
      if (left > 0) {
        list = view.getBigUint64(8 * (take - 1), true);
        if ((list & 7n) !== 0n) return { status: NVME_INVALID_PRP_OFFSET };
      }
    }
  } catch (err) {
    if (err instanceof NvmeDmaFault) return { status: NVME_DATA_TRANSFER_ERROR };
    throw err;
  }
  return { segments: merge(segments) };
}

/** Adjacent segments as one, so contiguous data costs one DMA access. */
function merge(segments: Segment[]): Segment[] {
  const out: Segment[] = [];
  for (const s of segments) {
    const last = out[out.length - 1];
    if (last && last.address + BigInt(last.length) === s.address)
      out[out.length - 1] = { address: last.address, length: last.length + s.length };
    else out.push(s);
  }
  return out;
}

/** Copies `data` to the host at the segments; a DMA fault is a Data Transfer Error. */
export function writeSegments(dma: NvmeDma, segments: readonly Segment[], data: Uint8Array): number {
  let at = 0;
  try {
    for (const s of segments) {
      dma.write(s.address, data.subarray(at, at + s.length));
      at += s.length;
    }
  } catch (err) {
    if (err instanceof NvmeDmaFault) return NVME_DATA_TRANSFER_ERROR;
    throw err;
  }
  return 0;
}

/** Reads the host's data at the segments into `into`; a DMA fault is a Data Transfer Error. */
export function readSegments(dma: NvmeDma, segments: readonly Segment[], into: Uint8Array): number {
  let at = 0;
  try {
    for (const s of segments) {
      into.set(dma.read(s.address, s.length), at);
      at += s.length;
    }
  } catch (err) {
    if (err instanceof NvmeDmaFault) return NVME_DATA_TRANSFER_ERROR;
    throw err;
  }
  return 0;
}

/** A data buffer of `length` bytes from a command's PRPs, to the host: the usual shape of admin data. */
export function sendToHost(
  dma: NvmeDma,
  prp1: bigint,
  prp2: bigint,
  data: Uint8Array,
  pageSize: number,
): number {
  const prps = prpSegments(dma, prp1, prp2, data.length, pageSize);
  if ('status' in prps) return prps.status;
  return writeSegments(dma, prps.segments, data);
}
