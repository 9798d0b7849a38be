/**
 * The NVM command set on the one namespace (NVMe 1.4 section 6): Flush,
 * Write, Read, Write Zeroes and Dataset Management (deallocate reads back
 * zeros). Data moves through the command's PRPs; a fault there is a Data
 * Transfer Error for that command only.
 */
import type { NvmeDma } from './dma.js';
import { NVME_LBA_SIZE } from './identity.js';
import type { RamNamespace } from './namespace.js';
import { prpSegments, readSegments, writeSegments } from './prp.js';
import type { Command } from './queues.js';
import {
  type Completion,
  failed,
  NVME_INVALID_FIELD,
  NVME_INVALID_NSID,
  NVME_INVALID_OPCODE,
  NVME_LBA_RANGE,
  ok,
} from './status.js';

export const NVM_FLUSH = 0x00;
export const NVM_WRITE = 0x01;
export const NVM_READ = 0x02;
export const NVM_WRITE_ZEROES = 0x08;
export const NVM_DSM = 0x09;

const NSID_BROADCAST = 0xffffffff;

export interface IoContext {
  readonly dma: NvmeDma;
  readonly pageSize: number;
  readonly namespace: RamNamespace;
  /** Most bytes one command may move (MDTS). */
  readonly maxTransfer: number;
}

const slbaOf = (c: Command): bigint => BigInt(c.cdw[0]) | (BigInt(c.cdw[1]) << 32n);
const nlbOf = (c: Command): number => (c.cdw[2] & 0xffff) + 1;

export function executeIo(c: Command, io: IoContext): Completion {
  if (c.opcode === NVM_FLUSH)
    return c.nsid === 1 || c.nsid === NSID_BROADCAST ? ok() : failed(NVME_INVALID_NSID);
  if (
    c.opcode !== NVM_WRITE &&
    c.opcode !== NVM_READ &&
    c.opcode !== NVM_WRITE_ZEROES &&
    c.opcode !== NVM_DSM
  )
    return failed(NVME_INVALID_OPCODE);
  if (c.nsid !== 1) return failed(NVME_INVALID_NSID);
  if (c.opcode === NVM_DSM) return datasetManagement(c, io);
  const slba = slbaOf(c);
  const nlb = nlbOf(c);
  if (!io.namespace.holds(slba, nlb)) return failed(NVME_LBA_RANGE);
  if (c.opcode === NVM_WRITE_ZEROES) {
    io.namespace.zero(slba, nlb);
    return ok();
  }
  const length = nlb * NVME_LBA_SIZE;
  if (length > io.maxTransfer) return failed(NVME_INVALID_FIELD);
  const prps = prpSegments(io.dma, c.prp1, c.prp2, length, io.pageSize);
  if ('status' in prps) return failed(prps.status);
  if (c.opcode === NVM_READ) {
    const status = writeSegments(io.dma, prps.segments, io.namespace.read(slba, nlb));
    return status === 0 ? ok() : failed(status);
  }
  // Into a buffer first: a write whose data cannot be fetched leaves the blocks as they were.
  const incoming = new Uint8Array(length);
  const status = readSegments(io.dma, prps.segments, incoming);
  if (status !== 0) return failed(status);
  io.namespace.write(slba, incoming);
  return ok();
}

/** DSM: ranges of 16 bytes (context attributes, length in blocks, starting LBA); AD (cdw11 bit 2) deallocates them. */
function datasetManagement(c: Command, io: IoContext): Completion {
  const ranges = (c.cdw[0] & 0xff) + 1;
  const prps = prpSegments(io.dma, c.prp1, c.prp2, ranges * 16, io.pageSize);
  if ('status' in prps) return failed(prps.status);
  const raw = new Uint8Array(ranges * 16);
  const status = readSegments(io.dma, prps.segments, raw);
  if (status !== 0) return failed(status);
  if ((c.cdw[1] & 4) === 0) return ok(); // only attributes: nothing to do for a RAM disk
  const v = new DataView(raw.buffer);
  const list: [bigint, number][] = [];
  for (let i = 0; i < ranges; i++) {
    const count = v.getUint32(16 * i + 4, true);
    const slba = v.getBigUint64(16 * i + 8, true);
    if (!io.namespace.holds(slba, count)) return failed(NVME_LBA_RANGE);
    list.push([slba, count]);
  }
  for (const [slba, count] of list) io.namespace.zero(slba, count);
  return ok();
}
