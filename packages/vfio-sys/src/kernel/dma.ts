/**
 * DMA mappings above both kernel interfaces: map memory you own at an IOVA,
 * unmap it, list what is mapped. The same calls work over a type1 container
 * (VFIO_IOMMU_MAP_DMA) and over an iommufd IOAS (IOMMU_IOAS_MAP), so callers
 * do not care which one is underneath. Without an IOVA, iommufd lets the
 * kernel choose; over type1 the first free page-aligned gap of the usable
 * ranges is taken (above page 0, as iommufd does).
 */
import { VfioArgumentError, VfioError } from '../errors.js';
import { hostPageSize } from '../libc.js';

export type IommuInterface = 'group' | 'cdev';

/** What a DMA space maps over: a container or an IOAS, as a few primitives. */
export interface DmaBackend {
  readonly interface: IommuInterface;
  /** For messages: `/dev/vfio/vfio (type1v2)`, `/dev/iommu IOAS 2`. */
  readonly label: string;
  /** Maps and returns the IOVA used; `iova` undefined asks the backend to choose (null: it cannot). */
  map(address: bigint, iova: bigint | undefined, size: bigint, read: boolean, write: boolean): bigint;
  unmap(iova: bigint, size: bigint): void;
  /** Usable IOVA ranges, `last` inclusive. */
  ranges(): readonly { readonly start: bigint; readonly last: bigint }[];
  /** True when the backend picks IOVAs itself (iommufd). */
  readonly choosesIova: boolean;
}

/** Memory the caller owns and keeps mapped while the device may reach it (a MappedArea fits). */
export interface DmaMemory {
  readonly address: bigint;
  readonly size: number;
}

export interface DmaMapping {
  readonly iova: number;
  readonly size: number;
  readonly address: bigint;
  readonly read: boolean;
  readonly write: boolean;
}

export interface DmaMapOptions {
  /** Where the device sees the memory; omitted: chosen (see the module comment). */
  readonly iova?: number;
  /** Device may read the memory / write it (default both). */
  readonly read?: boolean;
  readonly write?: boolean;
}

function checkSafe(value: number, what: string): void {
  if (!Number.isSafeInteger(value) || value < 0)
    throw new VfioArgumentError(`${what} ${String(value).slice(0, 30)} is not a byte offset below 2^53`);
}

export class DmaSpace implements Disposable {
  readonly #backend: DmaBackend;
  readonly #mappings = new Map<number, DmaMapping>();
  #closed = false;

  constructor(backend: DmaBackend) {
    this.#backend = backend;
  }

  get interface(): IommuInterface {
    return this.#backend.interface;
  }

  /** Usable IOVA ranges as numbers (ends inclusive; a range beyond 2^53 is clipped there). */
  iovaRanges(): { start: number; last: number }[] {
    const max = BigInt(Number.MAX_SAFE_INTEGER);
    return this.#backend
      .ranges()
      .filter((r) => r.start <= max)
      .map((r) => ({ start: Number(r.start), last: Number(r.last > max ? max : r.last) }));
  }

  /** Maps `memory` (whole, page-aligned) for the device; returns where it is. */
  map(memory: DmaMemory, options: DmaMapOptions = {}): DmaMapping {
    if (this.#closed)
      throw new VfioError('ERR_VFIO_CLOSED', `DMA space over ${this.#backend.label} is closed`);
    const page = hostPageSize();
    const { address, size } = memory;
    checkSafe(size, 'DMA size');
    if (size === 0 || size % page !== 0 || address % BigInt(page) !== 0n)
      throw new VfioArgumentError(
        `DMA memory at 0x${address.toString(16)} of 0x${size.toString(16)} bytes is not whole pages`,
        `map page-aligned memory in multiples of ${page} bytes (a MappedArea of a memfd is)`,
      );
    const read = options.read ?? true;
    const write = options.write ?? true;
    if (!read && !write) throw new VfioArgumentError('a DMA mapping must let the device read or write');
    let iova: bigint | undefined;
    if (options.iova !== undefined) {
      checkSafe(options.iova, 'IOVA');
      if (options.iova % page !== 0)
        throw new VfioArgumentError(`IOVA 0x${options.iova.toString(16)} is not page-aligned`);
      const clash = this.#overlapping(options.iova, size);
      if (clash)
        throw new VfioArgumentError(
          `IOVA [0x${options.iova.toString(16)}, +0x${size.toString(16)}) overlaps the mapping at 0x${clash.iova.toString(16)}`,
          'unmap it first or choose another IOVA',
        );
      iova = BigInt(options.iova);
    } else if (!this.#backend.choosesIova) {
      iova = BigInt(this.#firstFit(size, page));
    }
    const used = this.#backend.map(address, iova, BigInt(size), read, write);
    const mapping: DmaMapping = { iova: Number(used), size, address, read, write };
    this.#mappings.set(mapping.iova, mapping);
    return mapping;
  }

  /** Unmaps a mapping made here (by the mapping or its IOVA). */
  unmap(mapping: DmaMapping | number): void {
    const iova = typeof mapping === 'number' ? mapping : mapping.iova;
    const known = this.#mappings.get(iova);
    if (!known)
      throw new VfioArgumentError(
        `no DMA mapping at IOVA 0x${Number(iova).toString(16)} in ${this.#backend.label}`,
      );
    this.#backend.unmap(BigInt(known.iova), BigInt(known.size));
    this.#mappings.delete(iova);
  }

  /** The mappings made here, by IOVA. */
  mappings(): DmaMapping[] {
    return [...this.#mappings.values()].sort((a, b) => a.iova - b.iova);
  }

  /** Unmaps whatever is still mapped (best effort: the container or IOAS may already be gone). Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const m of this.#mappings.values()) {
      try {
        this.#backend.unmap(BigInt(m.iova), BigInt(m.size));
      } catch {
        // Closing the container or iommufd drops the mapping anyway.
      }
    }
    this.#mappings.clear();
  }

  [Symbol.dispose](): void {
    this.close();
  }

  #overlapping(iova: number, size: number): DmaMapping | undefined {
    for (const m of this.#mappings.values()) if (iova < m.iova + m.size && m.iova < iova + size) return m;
    return undefined;
  }

  #firstFit(size: number, page: number): number {
    const taken = this.mappings();
    for (const r of this.iovaRanges()) {
      let at = Math.max(Math.ceil(r.start / page) * page, page);
      for (const m of taken) {
        if (m.iova + m.size <= at || m.iova > r.last) continue;
        if (m.iova >= at + size) break;
        at = m.iova + m.size;
      }
      if (at + size - 1 <= r.last) return at;
    }
    throw new VfioError(
      'ERR_VFIO_IOVA_SPACE',
      `no free IOVA range of 0x${size.toString(16)} bytes in ${this.#backend.label}`,
      {
        hint: 'unmap something, or give an IOVA',
      },
    );
  }
}
