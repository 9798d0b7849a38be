/**
 * Submission and completion queues in host memory: where the next entry is,
 * what the host has consumed (its doorbells), and completion entries with the
 * phase tag that flips on every wrap (NVMe 1.4 section 4.6).
 */
import type { NvmeDma } from './dma.js';

export const SQE_BYTES = 64;
export const CQE_BYTES = 16;

/** A submission queue entry, decoded as far as every command needs. */
export interface Command {
  readonly opcode: number;
  readonly cid: number;
  readonly nsid: number;
  readonly prp1: bigint;
  readonly prp2: bigint;
  /** Command dwords 10..15. */
  readonly cdw: readonly [number, number, number, number, number, number];
}

export function decodeCommand(raw: Uint8Array, at: number): Command {
  const v = new DataView(raw.buffer, raw.byteOffset + at, SQE_BYTES);
  const d = (i: number) => v.getUint32(40 + 4 * (i - 10), true);
  return {
    opcode: v.getUint8(0),
    cid: v.getUint16(2, true),
    nsid: v.getUint32(4, true),
    prp1: v.getBigUint64(24, true),
    prp2: v.getBigUint64(32, true),
    cdw: [d(10), d(11), d(12), d(13), d(14), d(15)],
  };
}

export class CompletionQueue {
  readonly id: number;
  readonly base: bigint;
  readonly size: number;
  readonly vector: number;
  readonly interrupts: boolean;
  /** Submission queues completing here (a CQ with any cannot be deleted). */
  readonly sqs = new Set<number>();
  tail = 0;
  head = 0;
  /** The head doorbell value last acted on (a poll acts on each value the host writes once). */
  doorbell = 0;
  phase = 1;
  /** Entries were posted since the last interrupt. */
  posted = false;

  constructor(id: number, base: bigint, size: number, vector: number, interrupts: boolean) {
    this.id = id;
    this.base = base;
    this.size = size;
    this.vector = vector;
    this.interrupts = interrupts;
  }

  get full(): boolean {
    return (this.tail + 1) % this.size === this.head;
  }

  /** Entries the host has not consumed yet. */
  get unconsumed(): boolean {
    return this.tail !== this.head;
  }

  /** Writes one completion entry at the tail (a DMA fault propagates: the queue is unreachable). */
  post(dma: NvmeDma, e: { sqid: number; sqHead: number; cid: number; status: number; result: number }): void {
    const entry = new Uint8Array(CQE_BYTES);
    const v = new DataView(entry.buffer);
    v.setUint32(0, e.result >>> 0, true);
    v.setUint16(8, e.sqHead, true);
    v.setUint16(10, e.sqid, true);
    v.setUint16(12, e.cid, true);
    v.setUint16(14, ((e.status << 1) | this.phase) & 0xffff, true);
    dma.write(this.base + BigInt(this.tail * CQE_BYTES), entry);
    this.tail++;
    if (this.tail === this.size) {
      this.tail = 0;
      this.phase ^= 1;
    }
    this.posted = true;
  }
}

export class SubmissionQueue {
  readonly id: number;
  readonly base: bigint;
  readonly size: number;
  readonly cqid: number;
  head = 0;
  tail = 0;
  /** The tail doorbell value last acted on. */
  doorbell = 0;

  constructor(id: number, base: bigint, size: number, cqid: number) {
    this.id = id;
    this.base = base;
    this.size = size;
    this.cqid = cqid;
  }

  /** Entries the host submitted that we have not fetched. */
  get pending(): number {
    return (this.tail - this.head + this.size) % this.size;
  }

  /** Fetches up to `max` entries from the head, in one DMA read up to the wrap (the caller advances the head per command). */
  fetch(dma: NvmeDma, max: number): { raw: Uint8Array; count: number } {
    const count = Math.min(max, this.pending, this.size - this.head);
    const raw = dma.read(this.base + BigInt(this.head * SQE_BYTES), count * SQE_BYTES);
    return { raw, count };
  }
}
