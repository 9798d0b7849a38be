/**
 * A host driver for sim:nvme in tests: host memory is a RAM array behind a
 * DmaHost (addresses outside it fail as a vfio-user server's DMA map check
 * does), BAR0 is written through a mapping as QEMU's guest writes it, and the
 * controller's poll runs when the test advances vitest's fake timers.
 */
import type { MappedArea } from '@vfio-ts/vfio-sys';
import { EventFd } from '@vfio-ts/vfio-sys';
import { vi } from 'vitest';
import { type DmaHost, ModelError, type NvmeModelOptions, nvmeModel, SimDevice } from '../src/index.js';

export const HOST_BASE = 0x1_0000_0000n;
export const HOST_BYTES = 4 * 1024 * 1024;
const PAGE = 4096;
const COMMAND = 0x04;
const MSIX_CAP = 0x40;

export interface Sqe {
  opcode: number;
  cid?: number;
  nsid?: number;
  prp1?: bigint;
  prp2?: bigint;
  cdw10?: number;
  cdw11?: number;
  cdw12?: number;
  cdw13?: number;
}

export interface Cqe {
  result: number;
  sqHead: number;
  sqid: number;
  cid: number;
  /** Status without the phase bit (SC | SCT << 8 | DNR 0x4000). */
  status: number;
  phase: number;
}

interface HostQueue {
  base: bigint;
  size: number;
  index: number;
  phase: number;
}

export class NvmeTestHost implements Disposable {
  readonly dev: SimDevice;
  readonly ram = new Uint8Array(HOST_BYTES);
  readonly bar: MappedArea;
  readonly vectors: EventFd[] = [];
  dmaCalls = 0;
  #next = PAGE; // page 0 of host memory stays unused
  readonly #sqs = new Map<number, HostQueue>();
  readonly #cqs = new Map<number, HostQueue>();
  #cid = 0;

  constructor(options?: NvmeModelOptions) {
    this.dev = new SimDevice(nvmeModel(options), 'sim:nvme');
    const host: DmaHost = {
      read: (address, length) => {
        this.dmaCalls++;
        const at = this.#offset(address, length);
        return this.ram.slice(at, at + length);
      },
      write: (address, data) => {
        this.dmaCalls++;
        this.ram.set(data, this.#offset(address, data.length));
      },
    };
    this.dev.attachDmaHost(host);
    this.bar = this.dev.regionMmap(0, 0, 0x4000, { read: true, write: true });
    this.command(0x6); // memory decode and bus mastering
  }

  /** Config space command register. */
  command(value: number): void {
    this.dev.regionWrite(7, COMMAND, value, 2);
  }

  /** Eventfds on the first `count` MSI-X vectors, and MSI-X enabled in config space. */
  useMsix(count: number): void {
    for (let i = 0; i < count; i++) this.vectors.push(EventFd.create());
    this.dev.setIrqs({
      index: 2,
      action: 'trigger',
      start: 0,
      count,
      data: { type: 'eventfd', eventfds: this.vectors },
    });
    this.dev.regionWrite(7, MSIX_CAP + 2, this.dev.regionRead(7, MSIX_CAP + 2, 2) | 0x8000, 2);
  }

  /** Interrupts signalled on each vector since the last call. */
  interrupts(): number[] {
    return this.vectors.map((e) => Number(e.consume()));
  }

  /** Page-aligned host memory (a bus address). */
  alloc(bytes: number): bigint {
    const at = this.#next;
    this.#next += Math.ceil(bytes / PAGE) * PAGE;
    if (this.#next > HOST_BYTES) throw new Error('test host memory exhausted');
    return HOST_BASE + BigInt(at);
  }

  view(address: bigint, length: number): Uint8Array {
    const at = this.#offset(address, length);
    return this.ram.subarray(at, at + length);
  }

  reg(offset: number): number {
    return this.bar.read(offset, 4) as number;
  }

  write(offset: number, value: number): void {
    this.bar.write(offset, value, 4);
  }

  /** Lets the controller's poll run (fake timers). */
  poll(ms = 25): void {
    vi.advanceTimersByTime(ms);
  }

  /** Admin queues of `entries` and CC.EN, as Linux's nvme_pci_configure_admin_queue and nvme_enable_ctrl write them. */
  enable(entries = 32, cc = 0x00460001): number {
    const asq = this.alloc(entries * 64);
    const acq = this.alloc(entries * 16);
    this.write(0x24, (entries - 1) | ((entries - 1) << 16));
    this.write(0x28, Number(asq & 0xffffffffn));
    this.write(0x2c, Number(asq >> 32n));
    this.write(0x30, Number(acq & 0xffffffffn));
    this.write(0x34, Number(acq >> 32n));
    this.write(0x14, cc);
    this.#sqs.set(0, { base: asq, size: entries, index: 0, phase: 1 });
    this.#cqs.set(0, { base: acq, size: entries, index: 0, phase: 1 });
    this.poll();
    return this.reg(0x1c);
  }

  disable(): void {
    this.write(0x14, this.reg(0x14) & ~1);
    this.poll();
    this.#sqs.clear();
    this.#cqs.clear();
  }

  /** Puts a command in submission queue `qid` (no doorbell). */
  queue(qid: number, c: Sqe): number {
    const sq = this.#sqs.get(qid)!;
    const cid = c.cid ?? ++this.#cid & 0xffff;
    const e = new DataView(this.ram.buffer, this.#offset(sq.base + BigInt(sq.index * 64), 64), 64);
    for (let i = 0; i < 64; i += 4) e.setUint32(i, 0, true);
    e.setUint8(0, c.opcode);
    e.setUint16(2, cid, true);
    e.setUint32(4, c.nsid ?? 0, true);
    e.setBigUint64(24, c.prp1 ?? 0n, true);
    e.setBigUint64(32, c.prp2 ?? 0n, true);
    e.setUint32(40, c.cdw10 ?? 0, true);
    e.setUint32(44, c.cdw11 ?? 0, true);
    e.setUint32(48, c.cdw12 ?? 0, true);
    e.setUint32(52, c.cdw13 ?? 0, true);
    sq.index = (sq.index + 1) % sq.size;
    return cid;
  }

  /** Rings submission queue `qid`'s tail doorbell through the mapping. */
  ring(qid: number): void {
    this.write(0x1000 + 8 * qid, this.#sqs.get(qid)!.index);
  }

  /** The next completion of CQ `qid` if its phase says it is new; consumes it (no doorbell). */
  reap(qid: number): Cqe | null {
    const cq = this.#cqs.get(qid)!;
    const e = new DataView(this.ram.buffer, this.#offset(cq.base + BigInt(cq.index * 16), 16), 16);
    const raw = e.getUint16(14, true);
    if ((raw & 1) !== cq.phase) return null;
    cq.index = (cq.index + 1) % cq.size;
    if (cq.index === 0) cq.phase ^= 1;
    return {
      result: e.getUint32(0, true),
      sqHead: e.getUint16(8, true),
      sqid: e.getUint16(10, true),
      cid: e.getUint16(12, true),
      status: raw >> 1,
      phase: raw & 1,
    };
  }

  /** Writes CQ `qid`'s head doorbell. */
  release(qid: number): void {
    this.write(0x1000 + 8 * qid + 4, this.#cqs.get(qid)!.index);
  }

  /** Submits one command to `sqid`, lets the controller poll, and reaps its completion from `cqid`. */
  run(sqid: number, c: Sqe, cqid = sqid): Cqe {
    const cid = this.queue(sqid, c);
    this.ring(sqid);
    this.poll(2);
    const done = this.reap(cqid);
    if (!done) throw new Error(`no completion for opcode 0x${c.opcode.toString(16)} on SQ ${sqid}`);
    if (done.cid !== cid) throw new Error(`completion for cid ${done.cid}, expected ${cid}`);
    this.release(cqid);
    return done;
  }

  /** Admin command with a 4 KiB data buffer; returns the completion and the buffer. */
  adminData(c: Sqe, bytes = 4096): { cqe: Cqe; data: Uint8Array } {
    const buffer = this.alloc(bytes);
    const cqe = this.run(0, { ...c, prp1: buffer });
    return { cqe, data: this.view(buffer, bytes) };
  }

  /** Creates I/O CQ and SQ `qid` of `entries` with interrupts on `vector` (null: none). */
  createIoQueues(qid: number, entries: number, vector: number | null = qid): [Cqe, Cqe] {
    const cqBase = this.alloc(entries * 16);
    const sqBase = this.alloc(entries * 64);
    const cq = this.run(0, {
      opcode: 0x05,
      prp1: cqBase,
      cdw10: qid | ((entries - 1) << 16),
      cdw11: 1 | (vector === null ? 0 : 2 | (vector << 16)),
    });
    if (cq.status === 0) this.#cqs.set(qid, { base: cqBase, size: entries, index: 0, phase: 1 });
    const sq = this.run(0, {
      opcode: 0x01,
      prp1: sqBase,
      cdw10: qid | ((entries - 1) << 16),
      cdw11: 1 | (qid << 16),
    });
    if (sq.status === 0) this.#sqs.set(qid, { base: sqBase, size: entries, index: 0, phase: 1 });
    return [cq, sq];
  }

  [Symbol.dispose](): void {
    this.bar.unmap();
    this.dev.close();
    for (const e of this.vectors) e.close();
  }

  #offset(address: bigint, length: number): number {
    const at = address - HOST_BASE;
    if (at < 0n || at + BigInt(length) > BigInt(HOST_BYTES)) {
      throw new ModelError(
        'ERR_TEST_DMA',
        `0x${address.toString(16)}+${length} is outside the test host's memory`,
      );
    }
    return Number(at);
  }
}

export function ascii(data: Uint8Array, at: number, length: number): string {
  return String.fromCharCode(...data.subarray(at, at + length)).trimEnd();
}
