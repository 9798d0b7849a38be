/**
 * Set Features / Get Features (NVMe 1.4 section 5.21): the features Linux's
 * driver and nvme-cli touch, with their defaults, the current values a Set
 * leaves, and the Number of Queues negotiation. Nothing is saveable.
 */
import { NVME_MAX_IO_QUEUES } from './identity.js';
import { type Completion, failed, NVME_FEAT_NOT_SAVEABLE, NVME_INVALID_FIELD, ok } from './status.js';

export const FEAT_ARBITRATION = 0x01;
export const FEAT_POWER_MGMT = 0x02;
export const FEAT_TEMP_THRESHOLD = 0x04;
export const FEAT_ERROR_RECOVERY = 0x05;
export const FEAT_VOLATILE_WC = 0x06;
export const FEAT_NUM_QUEUES = 0x07;
export const FEAT_IRQ_COALESCING = 0x08;
export const FEAT_IRQ_CONFIG = 0x09;
export const FEAT_WRITE_ATOMICITY = 0x0a;
export const FEAT_ASYNC_EVENT = 0x0b;

/** Default values by feature (the temperature threshold by its TMPSEL/THSEL selector). */
function defaults(): Map<string, number> {
  const q = NVME_MAX_IO_QUEUES - 1;
  return new Map([
    [`${FEAT_ARBITRATION}`, 0],
    [`${FEAT_POWER_MGMT}`, 0],
    [`${FEAT_TEMP_THRESHOLD}:0`, 0x0157], // over-temperature, composite: 343 K
    [`${FEAT_TEMP_THRESHOLD}:16`, 0], // under-temperature
    [`${FEAT_ERROR_RECOVERY}`, 0],
    [`${FEAT_VOLATILE_WC}`, 1],
    [`${FEAT_NUM_QUEUES}`, q | (q << 16)],
    [`${FEAT_IRQ_COALESCING}`, 0],
    [`${FEAT_WRITE_ATOMICITY}`, 0],
    [`${FEAT_ASYNC_EVENT}`, 0],
  ]);
}

export class Features {
  #current = defaults();
  readonly #vectors: number;

  /** `vectors`: the interrupt vectors Interrupt Vector Configuration may name. */
  constructor(vectors: number) {
    this.#vectors = vectors;
  }

  reset(): void {
    this.#current = defaults();
  }

  /** I/O queue pairs granted (Number of Queues: NSQA, NCQA are 0's based; the smaller decides). */
  get ioQueues(): number {
    const v = this.#current.get(`${FEAT_NUM_QUEUES}`)!;
    return Math.min(v & 0xffff, v >>> 16) + 1;
  }

  set(cdw10: number, cdw11: number): Completion {
    if (cdw10 & 0x8000_0000) return failed(NVME_FEAT_NOT_SAVEABLE);
    const fid = cdw10 & 0xff;
    if (fid === FEAT_NUM_QUEUES) {
      const nsqr = cdw11 & 0xffff;
      const ncqr = cdw11 >>> 16;
      if (nsqr === 0xffff || ncqr === 0xffff) return failed(NVME_INVALID_FIELD);
      const max = NVME_MAX_IO_QUEUES - 1;
      const granted = Math.min(nsqr, max) | (Math.min(ncqr, max) << 16);
      this.#current.set(`${fid}`, granted);
      return ok(granted);
    }
    if (fid === FEAT_IRQ_CONFIG) {
      if ((cdw11 & 0xffff) >= this.#vectors) return failed(NVME_INVALID_FIELD);
      this.#current.set(`${fid}:${cdw11 & 0xffff}`, cdw11 & 0x1ffff);
      return ok();
    }
    const key = this.#key(fid, cdw11);
    if (key === null) return failed(NVME_INVALID_FIELD);
    this.#current.set(
      key,
      fid === FEAT_TEMP_THRESHOLD ? cdw11 & 0xffff : fid === FEAT_VOLATILE_WC ? cdw11 & 1 : cdw11,
    );
    return ok();
  }

  /** SEL (cdw10 10:8): 0 current, 1 default, 2 saved (= current: nothing is saved), 3 supported capabilities. */
  get(cdw10: number, cdw11: number): Completion {
    const fid = cdw10 & 0xff;
    const sel = (cdw10 >>> 8) & 7;
    if (sel > 3) return failed(NVME_INVALID_FIELD);
    if (fid === FEAT_IRQ_CONFIG) {
      const iv = cdw11 & 0xffff;
      if (iv >= this.#vectors) return failed(NVME_INVALID_FIELD);
      if (sel === 3) return ok(0b100);
      return ok(sel === 1 ? iv : (this.#current.get(`${fid}:${iv}`) ?? iv));
    }
    const key = this.#key(fid, cdw11);
    if (key === null) return failed(NVME_INVALID_FIELD);
    if (sel === 3) return ok(0b100); // changeable, not saveable, not namespace specific
    return ok(sel === 1 ? defaults().get(key)! : this.#current.get(key)!);
  }

  #key(fid: number, cdw11: number): string | null {
    if (fid === FEAT_TEMP_THRESHOLD) {
      const tmpsel = (cdw11 >>> 16) & 0xf;
      const thsel = (cdw11 >>> 20) & 3;
      // Only the composite temperature (TMPSEL 0), over (0) or under (1) threshold.
      return tmpsel === 0 && thsel < 2 ? `${fid}:${thsel << 4}` : null;
    }
    const key = `${fid}`;
    return this.#current.has(key) ? key : null;
  }
}
