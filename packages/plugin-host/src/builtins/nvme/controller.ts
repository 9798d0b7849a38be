/**
 * The NVMe controller behind sim:nvme's BAR0. A client maps BAR0 and writes
 * CC, AQA/ASQ/ACQ and the doorbells straight into its memory, so the
 * controller polls that memory (as SPDK's vfio-user NVMe target polls its
 * mapped doorbells): `poll()` acts on a changed CC (enable, disable,
 * shutdown, as QEMU's nvme_write_bar does), takes the host's completion queue
 * heads, runs what the submission queues hold, and signals each completion
 * queue with new entries the host has not consumed. Slow-path writes to CC
 * and the doorbells call it at once.
 *
 * Failures stay inside: a command whose data cannot be reached completes
 * with an error status; a queue that cannot be reached makes the controller
 * fatal (CSTS.CFS) until the host disables it.
 */
import { memoryRead, memoryWrite, type RamDeviceMemory } from '@vfio-ts/memory-core';
import {
  findPciCapability,
  PCI_CAP_ID_MSIX,
  PCI_MSIX_FLAGS,
  PCI_MSIX_FLAGS_ENABLE,
  PCI_MSIX_FLAGS_QSIZE,
} from '@vfio-ts/vfio-sys/uapi';
import type { ModelContext } from '../../model.js';
import { type AdminContext, executeAdmin } from './admin.js';
import { contextDma, type NvmeDma, NvmeDmaFault } from './dma.js';
import { checkEnable } from './enable.js';
import { Features } from './features.js';
import { NVME_MAX_IO_QUEUES, NVME_MDTS } from './identity.js';
import { executeIo } from './io.js';
import type { RamNamespace } from './namespace.js';
import { CompletionQueue, decodeCommand, SQE_BYTES, SubmissionQueue } from './queues.js';
import {
  CC_EN,
  CSTS_CFS,
  CSTS_RDY,
  CSTS_SHST_COMPLETE,
  CSTS_SHST_MASK,
  ccShn,
  doorbellCqHead,
  doorbellSqTail,
  NVME_ACQ,
  NVME_AQA,
  NVME_ASQ,
  NVME_CAP,
  NVME_CAP_VALUE,
  NVME_CC,
  NVME_CSTS,
  NVME_DOORBELLS,
  NVME_DOORBELLS_END,
  NVME_VS,
  NVME_VS_VALUE,
} from './registers.js';
import { type Completion, NVME_DATA_TRANSFER_ERROR, NVME_DNR, NVME_INTERNAL_DEV_ERROR } from './status.js';
import {
  adminOpName,
  ioOpName,
  traceAdminCmd,
  traceBadCqHead,
  traceBadSqTail,
  traceDoorbellCq,
  traceDoorbellSq,
  traceEnqueueCompletion,
  traceErrAddrRead,
  traceErrAddrWrite,
  traceErrCfs,
  traceErrReqStatus,
  traceErrStartfail,
  traceIoCmd,
  traceIrqMsix,
  traceIrqPin,
  traceMmioCfg,
  traceShutdownCleared,
  traceShutdownSet,
  traceStartSuccess,
  traceStopped,
} from './trace.js';

/** Commands taken from one submission queue per poll, so a busy queue cannot hold the event loop. */
const BATCH = 64;
const CAP_LO = Number(NVME_CAP_VALUE & 0xffffffffn);
const CAP_HI = Number(NVME_CAP_VALUE >> 32n);

/** The standard configuration space as the device sees it, for the shared capability walk. */
function standardConfig(ctx: ModelContext): Uint8Array {
  const bytes = new Uint8Array(256);
  const view = new DataView(bytes.buffer);
  for (let at = 0; at < bytes.length; at += 4) view.setUint32(at, ctx.configRead(at, 4), true);
  return bytes;
}

export interface NvmeControllerState {
  readonly enabled: boolean;
  readonly fatal: boolean;
  readonly csts: number;
  readonly sqs: number[];
  readonly cqs: number[];
  readonly heldAsyncEvents: number;
}

export class NvmeController {
  readonly #ctx: ModelContext;
  readonly #memory: RamDeviceMemory;
  readonly #dma: NvmeDma;
  readonly #namespace: RamNamespace;
  readonly #features: Features;
  readonly #msixCap: number | null;
  /** The CC value last acted on. */
  #cc = 0;
  #csts = 0;
  #pageSize = 4096;
  #sqs: (SubmissionQueue | undefined)[] = [];
  #cqs: (CompletionQueue | undefined)[] = [];
  #heldAsyncEvents = 0;
  /** The reason the controller went fatal, for messages and tests. */
  #fatalReason: string | null = null;
  readonly #admin: AdminContext;

  constructor(ctx: ModelContext, memory: RamDeviceMemory, namespace: RamNamespace) {
    this.#ctx = ctx;
    this.#memory = memory;
    this.#dma = contextDma(ctx);
    this.#namespace = namespace;
    this.#msixCap = findPciCapability(standardConfig(ctx), PCI_CAP_ID_MSIX) ?? null;
    // The vectors a completion queue may name: the MSI-X table's (QSIZE is 0's based), else INTx's one.
    const vectors =
      this.#msixCap === null
        ? 1
        : (ctx.configRead(this.#msixCap + PCI_MSIX_FLAGS, 2) & PCI_MSIX_FLAGS_QSIZE) + 1;
    this.#features = new Features(vectors);
    const self = this;
    this.#admin = {
      dma: this.#dma,
      get pageSize() {
        return self.#pageSize;
      },
      namespace,
      features: this.#features,
      vectors,
      sq: (qid) => this.#sqs[qid],
      cq: (qid) => this.#cqs[qid],
      // A new queue's doorbell starts at 0: what memory holds from a queue of the same id before is stale.
      createSq: (qid, base, size, cqid) => {
        memoryWrite(this.#memory, doorbellSqTail(qid), 0, 4);
        this.#sqs[qid] = new SubmissionQueue(qid, base, size, cqid);
        this.#cqs[cqid]!.sqs.add(qid);
      },
      createCq: (qid, base, size, vector, interrupts) => {
        memoryWrite(this.#memory, doorbellCqHead(qid), 0, 4);
        this.#cqs[qid] = new CompletionQueue(qid, base, size, vector, interrupts);
      },
      deleteSq: (qid) => {
        const sq = this.#sqs[qid]!;
        this.#cqs[sq.cqid]?.sqs.delete(qid);
        this.#sqs[qid] = undefined;
      },
      deleteCq: (qid) => {
        this.#cqs[qid] = undefined;
      },
      holdAsyncEvent: () => {
        if (this.#heldAsyncEvents > 3) return false;
        this.#heldAsyncEvents++;
        return true;
      },
    };
    this.powerOn();
  }

  get enabled(): boolean {
    return (this.#csts & CSTS_RDY) !== 0;
  }

  get fatalReason(): string | null {
    return this.#fatalReason;
  }

  state(): NvmeControllerState {
    const ids = (qs: ({ id: number } | undefined)[]) => qs.filter((q) => q !== undefined).map((q) => q.id);
    return {
      enabled: this.enabled,
      fatal: (this.#csts & CSTS_CFS) !== 0,
      csts: this.#csts,
      sqs: ids(this.#sqs),
      cqs: ids(this.#cqs),
      heldAsyncEvents: this.#heldAsyncEvents,
    };
  }

  /** Power-on state (device reset; BAR memory was zeroed before): registers as QEMU's controller starts. */
  powerOn(): void {
    this.#dropQueues();
    this.#cc = 0;
    this.#csts = 0;
    memoryWrite(this.#memory, NVME_CC, 0, 4);
    this.#restoreRegisters();
  }

  /** CC as the slow path wrote it: acted on at once. */
  writeCc(value: number): void {
    memoryWrite(this.#memory, NVME_CC, value >>> 0, 4);
    this.syncCc();
  }

  /** Acts on a CC the host changed through its mapping; returns CSTS. */
  syncCc(): number {
    const cc = this.#reg(NVME_CC);
    if (cc !== this.#cc) this.#applyCc(cc);
    this.#restoreRegisters();
    return this.#csts;
  }

  /**
   * One pass: CC, completion queue heads, submission queues, interrupts.
   * Returns whether anything happened (the caller polls faster while busy).
   */
  poll(): boolean {
    try {
      return this.#pass();
    } catch (err) {
      // A fault of ours (commands have their own catch): the controller goes fatal, the poll and the server go on.
      this.#fatal('internal error', err);
      return false;
    }
  }

  #pass(): boolean {
    this.syncCc();
    if (!this.enabled || this.#csts & CSTS_CFS) return false;
    let busy = false;
    for (const cq of this.#cqs) {
      if (!cq) continue;
      const head = this.#reg(doorbellCqHead(cq.id));
      if (head === cq.doorbell) continue;
      cq.doorbell = head; // acted on once per value the host writes
      busy = true;
      if (head >= cq.size)
        traceBadCqHead.emit(cq.id, head); // ignored, as QEMU ignores it
      else {
        traceDoorbellCq.emit(cq.id, head);
        cq.head = head;
      }
    }
    for (const sq of this.#sqs) {
      if (!sq) continue;
      const tail = this.#reg(doorbellSqTail(sq.id));
      if (tail !== sq.doorbell) {
        sq.doorbell = tail;
        busy = true;
        if (tail >= sq.size) traceBadSqTail.emit(sq.id, tail);
        else {
          traceDoorbellSq.emit(sq.id, tail);
          sq.tail = tail;
        }
      }
      if (sq.pending > 0) {
        busy = true;
        if (!this.#run(sq)) return true; // fatal
      }
    }
    this.#signal();
    return busy;
  }

  /** Runs up to BATCH commands of `sq`; false if a queue was unreachable (the controller is fatal then). */
  #run(sq: SubmissionQueue): boolean {
    for (let left = BATCH; left > 0 && sq.pending > 0; ) {
      const cq = this.#cqs[sq.cqid];
      if (!cq) return true;
      let fetched: { raw: Uint8Array; count: number };
      try {
        fetched = sq.fetch(this.#dma, left);
      } catch (err) {
        const at = sq.base + BigInt(sq.head * SQE_BYTES);
        traceErrAddrRead.emit(at);
        return this.#fatal(`SQ ${sq.id} entry at 0x${at.toString(16)}`, err);
      }
      for (let i = 0; i < fetched.count; i++) {
        if (cq.full) return true; // wait for the host to free entries (its CQ head doorbell)
        const command = decodeCommand(fetched.raw, i * SQE_BYTES);
        sq.head = (sq.head + 1) % sq.size;
        left--;
        if (sq.id === 0) traceAdminCmd.emit(command.cid, 0, command.opcode, adminOpName(command.opcode));
        else traceIoCmd.emit(command.cid, command.nsid, sq.id, command.opcode, ioOpName(command.opcode));
        const done = this.#execute(sq.id, command);
        if (done === null) continue; // held (an Asynchronous Event Request)
        const result = done.result ?? 0;
        if (done.status !== 0) traceErrReqStatus.emit(command.cid, command.nsid, done.status, command.opcode);
        traceEnqueueCompletion.emit(command.cid, cq.id, result >>> 0, 0, done.status);
        try {
          cq.post(this.#dma, { sqid: sq.id, sqHead: sq.head, cid: command.cid, status: done.status, result });
        } catch (err) {
          const at = cq.base + BigInt(cq.tail * 16);
          traceErrAddrWrite.emit(at);
          return this.#fatal(`CQ ${cq.id} entry at 0x${at.toString(16)}`, err);
        }
        // A command may have deleted its own queue, or the controller may have gone.
        if (this.#sqs[sq.id] !== sq || !this.enabled) return true;
      }
    }
    return true;
  }

  #execute(sqid: number, command: ReturnType<typeof decodeCommand>): Completion | null {
    try {
      if (sqid === 0) return executeAdmin(command, this.#admin);
      return executeIo(command, {
        dma: this.#dma,
        pageSize: this.#pageSize,
        namespace: this.#namespace,
        maxTransfer: this.#pageSize * 2 ** NVME_MDTS,
      });
    } catch (err) {
      // A fault of ours must not take the server down: the command fails, the controller goes on.
      if (err instanceof NvmeDmaFault) return { status: NVME_DATA_TRANSFER_ERROR | NVME_DNR };
      return { status: NVME_INTERNAL_DEV_ERROR | NVME_DNR };
    }
  }

  /** Interrupts for completion queues with new entries the host has not consumed. */
  #signal(): void {
    for (const cq of this.#cqs) {
      if (!cq?.posted) continue;
      cq.posted = false;
      if (!cq.interrupts || !cq.unconsumed) continue;
      if (this.#msixEnabled()) {
        traceIrqMsix.emit(cq.vector);
        this.#ctx.raise('msix', cq.vector);
      } else {
        traceIrqPin.emit();
        this.#ctx.raise('intx');
      }
    }
  }

  #msixEnabled(): boolean {
    if (this.#msixCap === null) return false;
    return (this.#ctx.configRead(this.#msixCap + PCI_MSIX_FLAGS, 2) & PCI_MSIX_FLAGS_ENABLE) !== 0;
  }

  #fatal(what: string, err: unknown): false {
    const why = err instanceof Error ? err.message : String(err);
    this.#fatalReason = `${what}: ${why}`;
    traceErrCfs.emit();
    this.#csts = CSTS_CFS; // as QEMU's controller: failed, no longer ready
    this.#restoreRegisters();
    return false;
  }

  /** CC written: shutdown notifications and enable/disable edges, in QEMU's order. */
  #applyCc(cc: number): void {
    const old = this.#cc;
    this.#cc = cc;
    traceMmioCfg.emit(cc);
    if (cc & CC_EN && !(old & CC_EN)) {
      const started = this.#start(cc);
      if (started) traceStartSuccess.emit();
      else traceErrStartfail.emit();
      this.#csts = started ? CSTS_RDY : CSTS_CFS;
    } else if (!(cc & CC_EN) && old & CC_EN) {
      traceStopped.emit();
      this.#dropQueues(); // controller reset: queues, held events, features
      this.#csts = 0;
    }
    if (ccShn(cc) !== 0 && ccShn(old) === 0) {
      traceShutdownSet.emit();
      this.#csts = (this.#csts & ~CSTS_SHST_MASK) | CSTS_SHST_COMPLETE; // nothing to write back: RAM
    } else if (ccShn(cc) === 0 && ccShn(old) !== 0) {
      traceShutdownCleared.emit();
      this.#csts &= ~CSTS_SHST_MASK;
    }
  }

  /** CC.EN 0 -> 1: the checks of QEMU's nvme_start_ctrl, then the admin queues. */
  #start(cc: number): boolean {
    const setup = checkEnable(cc, this.#reg(NVME_AQA), this.#reg64(NVME_ASQ), this.#reg64(NVME_ACQ));
    if ('refused' in setup) {
      this.#fatalReason = `enable refused: ${setup.refused}`;
      return false;
    }
    this.#fatalReason = null;
    this.#pageSize = setup.pageSize;
    this.#memory.u8.fill(0, NVME_DOORBELLS, NVME_DOORBELLS_END); // what a host rang while disabled means nothing
    this.#cqs[0] = new CompletionQueue(0, setup.acq, setup.acqSize, 0, true);
    this.#sqs[0] = new SubmissionQueue(0, setup.asq, setup.asqSize, 0);
    this.#cqs[0].sqs.add(0);
    return true;
  }

  /** Queues, held events and features gone; the doorbells (memory here, registers on hardware) back to 0. */
  #dropQueues(): void {
    this.#memory.u8.fill(0, NVME_DOORBELLS, NVME_DOORBELLS_END);
    this.#sqs = new Array(NVME_MAX_IO_QUEUES + 1);
    this.#cqs = new Array(NVME_MAX_IO_QUEUES + 1);
    this.#heldAsyncEvents = 0;
    this.#features.reset();
  }

  /** CAP, VS and CSTS are read-only; a host writing them through its mapping gets them back. */
  #restoreRegisters(): void {
    this.#put(NVME_CAP, CAP_LO);
    this.#put(NVME_CAP + 4, CAP_HI);
    this.#put(NVME_VS, NVME_VS_VALUE);
    this.#put(NVME_CSTS, this.#csts);
  }

  #put(offset: number, value: number): void {
    if (this.#reg(offset) !== value >>> 0) memoryWrite(this.#memory, offset, value >>> 0, 4);
  }

  #reg(offset: number): number {
    return memoryRead(this.#memory, offset, 4) as number;
  }

  #reg64(offset: number): bigint {
    return BigInt(this.#reg(offset)) | (BigInt(this.#reg(offset + 4)) << 32n);
  }
}
