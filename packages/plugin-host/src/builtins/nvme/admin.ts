/**
 * The admin command set (NVMe 1.4 section 5) as far as Linux's nvme driver
 * and nvme-cli use it on a PCIe controller: queue creation and deletion,
 * Identify, features, log pages, Abort, Asynchronous Event Request (held
 * until reset), Keep Alive. Anything else is Invalid Command Opcode.
 */
import type { NvmeDma } from './dma.js';
import type { Features } from './features.js';
import {
  activeNamespaces,
  identifyController,
  identifyNamespace,
  NVME_IDENTITY,
  namespaceDescriptors,
} from './identity.js';
import type { RamNamespace } from './namespace.js';
import { sendToHost } from './prp.js';
import type { Command, CompletionQueue, SubmissionQueue } from './queues.js';
import { CAP_MQES } from './registers.js';
import {
  type Completion,
  failed,
  HELD,
  NVME_AER_LIMIT_EXCEEDED,
  NVME_INVALID_CQID,
  NVME_INVALID_FIELD,
  NVME_INVALID_IRQ_VECTOR,
  NVME_INVALID_LOG_ID,
  NVME_INVALID_NSID,
  NVME_INVALID_OPCODE,
  NVME_INVALID_PRP_OFFSET,
  NVME_INVALID_QID,
  NVME_INVALID_QUEUE_DEL,
  NVME_MAX_QSIZE_EXCEEDED,
  ok,
} from './status.js';
import {
  traceAer,
  traceAerlExceeded,
  traceCreateCq,
  traceCreateSq,
  traceDelCq,
  traceDelSq,
  traceGetFeat,
  traceGetLog,
  traceIdentify,
  traceSetFeat,
} from './trace.js';

export const ADM_DELETE_SQ = 0x00;
export const ADM_CREATE_SQ = 0x01;
export const ADM_GET_LOG_PAGE = 0x02;
export const ADM_DELETE_CQ = 0x04;
export const ADM_CREATE_CQ = 0x05;
export const ADM_IDENTIFY = 0x06;
export const ADM_ABORT = 0x08;
export const ADM_SET_FEATURES = 0x09;
export const ADM_GET_FEATURES = 0x0a;
export const ADM_ASYNC_EVENT = 0x0c;
export const ADM_KEEP_ALIVE = 0x18;

const NSID_BROADCAST = 0xffffffff;

export interface AdminContext {
  readonly dma: NvmeDma;
  readonly pageSize: number;
  readonly namespace: RamNamespace;
  readonly features: Features;
  /** Interrupt vectors a completion queue may use. */
  readonly vectors: number;
  sq(qid: number): SubmissionQueue | undefined;
  cq(qid: number): CompletionQueue | undefined;
  createSq(qid: number, base: bigint, size: number, cqid: number): void;
  createCq(qid: number, base: bigint, size: number, vector: number, interrupts: boolean): void;
  deleteSq(qid: number): void;
  deleteCq(qid: number): void;
  /** Holds one more Asynchronous Event Request; false when AERL are outstanding already. */
  holdAsyncEvent(): boolean;
}

export function executeAdmin(c: Command, a: AdminContext): Completion | typeof HELD {
  switch (c.opcode) {
    case ADM_CREATE_CQ:
      return createCq(c, a);
    case ADM_CREATE_SQ:
      return createSq(c, a);
    case ADM_DELETE_SQ:
      return deleteSq(c, a);
    case ADM_DELETE_CQ:
      return deleteCq(c, a);
    case ADM_IDENTIFY:
      return identify(c, a);
    case ADM_GET_LOG_PAGE:
      return logPage(c, a);
    case ADM_SET_FEATURES:
      traceSetFeat.emit(c.cid, c.nsid, c.cdw[0] & 0xff, c.cdw[0] >>> 31, c.cdw[1]);
      return a.features.set(c.cdw[0], c.cdw[1]);
    case ADM_GET_FEATURES:
      traceGetFeat.emit(c.cid, c.nsid, c.cdw[0] & 0xff, (c.cdw[0] >>> 8) & 7, c.cdw[1]);
      return a.features.get(c.cdw[0], c.cdw[1]);
    case ADM_ASYNC_EVENT:
      traceAer.emit(c.cid);
      if (a.holdAsyncEvent()) return HELD;
      traceAerlExceeded.emit();
      return failed(NVME_AER_LIMIT_EXCEEDED);
    case ADM_ABORT:
      return ok(1); // bit 0: not aborted (every command but held AERs has completed already)
    case ADM_KEEP_ALIVE:
      return ok();
    default:
      return failed(NVME_INVALID_OPCODE);
  }
}

/** A queue of 2..MQES+1 entries (QSIZE is 0's based) in a page-aligned, physically contiguous buffer. */
function queueShape(c: Command, a: AdminContext): { qid: number; size: number } | Completion {
  const qid = c.cdw[0] & 0xffff;
  const qsize = c.cdw[0] >>> 16;
  if (qid === 0 || qid > a.features.ioQueues) return failed(NVME_INVALID_QID);
  if (qsize === 0 || qsize > CAP_MQES) return failed(NVME_MAX_QSIZE_EXCEEDED);
  if (c.prp1 === 0n || c.prp1 % BigInt(a.pageSize) !== 0n) return failed(NVME_INVALID_PRP_OFFSET);
  if ((c.cdw[1] & 1) === 0) return failed(NVME_INVALID_FIELD); // PC 0: CAP.CQR says contiguous only
  return { qid, size: qsize + 1 };
}

function createCq(c: Command, a: AdminContext): Completion {
  const shape = queueShape(c, a);
  if ('status' in shape) return shape;
  if (a.cq(shape.qid)) return failed(NVME_INVALID_QID);
  const interrupts = (c.cdw[1] & 2) !== 0;
  const vector = c.cdw[1] >>> 16;
  if (interrupts && vector >= a.vectors) return failed(NVME_INVALID_IRQ_VECTOR);
  traceCreateCq.emit(c.prp1, shape.qid, vector, shape.size - 1, c.cdw[1] & 0xffff, interrupts ? 1 : 0);
  a.createCq(shape.qid, c.prp1, shape.size, vector, interrupts);
  return ok();
}

function createSq(c: Command, a: AdminContext): Completion {
  const cqid = c.cdw[1] >>> 16;
  if (cqid === 0 || !a.cq(cqid)) return failed(NVME_INVALID_CQID);
  const shape = queueShape(c, a);
  if ('status' in shape) return shape;
  if (a.sq(shape.qid)) return failed(NVME_INVALID_QID);
  traceCreateSq.emit(c.prp1, shape.qid, cqid, shape.size - 1, c.cdw[1] & 0xffff);
  a.createSq(shape.qid, c.prp1, shape.size, cqid);
  return ok();
}

function deleteSq(c: Command, a: AdminContext): Completion {
  const qid = c.cdw[0] & 0xffff;
  if (qid === 0 || !a.sq(qid)) return failed(NVME_INVALID_QID);
  traceDelSq.emit(qid);
  a.deleteSq(qid);
  return ok();
}

function deleteCq(c: Command, a: AdminContext): Completion {
  const qid = c.cdw[0] & 0xffff;
  const cq = qid === 0 ? undefined : a.cq(qid);
  if (!cq) return failed(NVME_INVALID_QID);
  if (cq.sqs.size > 0) return failed(NVME_INVALID_QUEUE_DEL);
  a.deleteCq(qid);
  traceDelCq.emit(qid);
  return ok();
}

function send(c: Command, a: AdminContext, data: Uint8Array): Completion {
  const status = sendToHost(a.dma, c.prp1, c.prp2, data, a.pageSize);
  return status === 0 ? ok() : failed(status);
}

/**
 * CNS 0 namespace, 1 controller, 2 active namespace list, 3 namespace ID
 * descriptors, 6 the NVM command set's controller data (Linux's
 * nvme_init_non_mdts_limits asks for it): what Linux asks of a 1.4 controller.
 */
function identify(c: Command, a: AdminContext): Completion {
  const cns = c.cdw[0] & 0xff;
  traceIdentify.emit(c.cid, cns, c.cdw[0] >>> 16, c.cdw[1] >>> 24);
  switch (cns) {
    case 0x00:
      if (c.nsid !== 1) return failed(NVME_INVALID_NSID);
      return send(c, a, identifyNamespace(a.namespace.blocks));
    case 0x01:
      return send(c, a, identifyController());
    case 0x02:
      if (c.nsid >= 0xfffffffe) return failed(NVME_INVALID_NSID);
      return send(c, a, activeNamespaces(c.nsid));
    case 0x03:
      if (c.nsid !== 1) return failed(NVME_INVALID_NSID);
      return send(c, a, namespaceDescriptors());
    case 0x06:
      // I/O Command Set specific Identify Controller (CSI in cdw11 31:24): NVM only, no limits besides MDTS.
      if (c.cdw[1] >>> 24 !== 0) return failed(NVME_INVALID_FIELD);
      return send(c, a, new Uint8Array(4096));
    default:
      return failed(NVME_INVALID_FIELD);
  }
}

const LOG_ERROR = 0x01;
const LOG_SMART = 0x02;
const LOG_FW_SLOT = 0x03;

function logData(lid: number): Uint8Array | null {
  if (lid === LOG_ERROR) return new Uint8Array(4 * 64); // ELPE + 1 entries, none logged
  if (lid === LOG_SMART) {
    const log = new Uint8Array(512);
    new DataView(log.buffer).setUint16(1, 0x0127, true); // composite temperature 295 K
    log[3] = 100; // available spare %
    log[4] = 10; // available spare threshold %
    return log;
  }
  if (lid === LOG_FW_SLOT) {
    const log = new Uint8Array(512);
    log[0] = 1; // AFI: slot 1 active
    for (let i = 0; i < 8; i++) log[8 + i] = NVME_IDENTITY.firmware.padEnd(8).charCodeAt(i);
    return log;
  }
  return null;
}

/** Get Log Page: NUMDL/NUMDU dwords (0's based) from byte offset LPOL/LPOU. */
function logPage(c: Command, a: AdminContext): Completion {
  const lid = c.cdw[0] & 0xff;
  const dwords = ((c.cdw[0] >>> 16) | ((c.cdw[1] & 0xffff) * 0x10000)) + 1;
  const offset = c.cdw[2] + c.cdw[3] * 2 ** 32;
  traceGetLog.emit(c.cid, lid, (c.cdw[0] >>> 8) & 0x7f, (c.cdw[0] >>> 15) & 1, dwords * 4, offset);
  if (c.nsid !== 0 && c.nsid !== 1 && c.nsid !== NSID_BROADCAST) return failed(NVME_INVALID_NSID);
  const log = logData(lid);
  if (log === null) return failed(NVME_INVALID_LOG_ID);
  if (offset % 4 !== 0 || offset >= log.length) return failed(NVME_INVALID_FIELD);
  const length = Math.min(dwords * 4, log.length - offset);
  return send(c, a, log.subarray(offset, offset + length));
}
