/**
 * Emulated PCI configuration space: the bytes a driver reads, and write
 * behaviour like hardware's: read-only bits, write-1-to-clear status bits,
 * BAR and ROM sizing (all ones reads back the size mask, type bits kept).
 * Capabilities are found by walking the list, bounded and loop-checked.
 */
import {
  PCI_BASE_ADDRESS_0,
  PCI_BASE_ADDRESS_MEM_PREFETCH,
  PCI_BASE_ADDRESS_MEM_TYPE_64,
  PCI_BASE_ADDRESS_SPACE_IO,
  PCI_CACHE_LINE_SIZE,
  PCI_CAP_ID_EXP,
  PCI_CAP_ID_MSI,
  PCI_CAP_ID_MSIX,
  PCI_CAP_ID_PM,
  PCI_COMMAND,
  PCI_INTERRUPT_LINE,
  PCI_LATENCY_TIMER,
  PCI_MSI_FLAGS_64BIT,
  PCI_MSI_FLAGS_MASKBIT,
  PCI_ROM_ADDRESS,
  PCI_STATUS,
  type PciCapability,
  pciCapabilities,
} from '@vfio-ts/vfio-sys/uapi';
import { ModelError } from './errors.js';

export type BarKind = 'mem32' | 'mem64' | 'io';

/** One BAR as the device implements it. */
export interface BarLayout {
  readonly index: number;
  readonly size: number;
  readonly kind: BarKind;
  readonly prefetchable: boolean;
}

/** Type bits of a BAR register (the low bits hardware keeps whatever is written). */
export function barTypeBits(bar: BarLayout): number {
  if (bar.kind === 'io') return PCI_BASE_ADDRESS_SPACE_IO;
  return (
    (bar.kind === 'mem64' ? PCI_BASE_ADDRESS_MEM_TYPE_64 : 0) |
    (bar.prefetchable ? PCI_BASE_ADDRESS_MEM_PREFETCH : 0)
  );
}

export class ConfigSpace {
  readonly bytes: Uint8Array;
  /** Bits software may change. */
  readonly wmask: Uint8Array;
  /** Bits a 1 written clears. */
  readonly w1cmask: Uint8Array;
  readonly bars: readonly (BarLayout | undefined)[];
  readonly romSize: number;
  readonly capabilities: readonly PciCapability[];
  readonly #initial: Uint8Array;

  constructor(bytes: Uint8Array, bars: readonly BarLayout[], romSize: number) {
    if (bytes.length !== 0x100 && bytes.length !== 0x1000) {
      throw new ModelError('ERR_MODEL_CONFIG', `config space must be 256 or 4096 bytes, not ${bytes.length}`);
    }
    this.bytes = Uint8Array.from(bytes);
    this.#initial = Uint8Array.from(bytes);
    this.wmask = new Uint8Array(bytes.length);
    this.w1cmask = new Uint8Array(bytes.length);
    const byIndex: (BarLayout | undefined)[] = [];
    for (const bar of bars) byIndex[bar.index] = bar;
    this.bars = byIndex;
    this.romSize = romSize;
    this.capabilities = pciCapabilities(this.bytes);
    this.#buildMasks();
  }

  get size(): number {
    return this.bytes.length;
  }

  capability(id: number): number | undefined {
    return this.capabilities.find((c) => c.id === id)?.offset;
  }

  read(offset: number, size: number): number {
    let v = 0;
    for (let i = size - 1; i >= 0; i--) v = v * 256 + this.bytes[offset + i]!;
    return v;
  }

  readBlock(offset: number, length: number): Uint8Array {
    return this.bytes.slice(offset, offset + length);
  }

  write(offset: number, value: number, size: number): void {
    const data = new Uint8Array(size);
    for (let i = 0; i < size; i++) data[i] = Math.floor(value / 2 ** (8 * i)) & 0xff;
    this.writeBlock(offset, data);
  }

  writeBlock(offset: number, data: Uint8Array): void {
    for (let i = 0; i < data.length; i++) {
      const at = offset + i;
      const v = data[i]!;
      const old = this.bytes[at]!;
      let next = (old & ~this.wmask[at]!) | (v & this.wmask[at]!);
      next &= ~(v & this.w1cmask[at]!);
      this.bytes[at] = next & 0xff;
    }
    // BAR and ROM registers: what was written is masked to the decoded bits, as sizing requires.
    for (let reg = PCI_BASE_ADDRESS_0; reg <= PCI_ROM_ADDRESS; reg += 4) {
      if (reg + 4 > offset && reg < offset + data.length && (reg < 0x28 || reg === PCI_ROM_ADDRESS))
        this.#fixupAddressRegister(reg);
    }
  }

  /** Power-on state: the initial bytes (BAR addresses included) come back. */
  reset(): void {
    this.bytes.set(this.#initial);
  }

  /** Where software placed BAR `index` (0 when unassigned). */
  barAddress(index: number): number {
    const bar = this.bars[index];
    if (!bar) return 0;
    const reg = PCI_BASE_ADDRESS_0 + index * 4;
    const low = this.read(reg, 4) & (bar.kind === 'io' ? ~3 : ~0xf);
    const high = bar.kind === 'mem64' ? this.read(reg + 4, 4) : 0;
    return (low >>> 0) + high * 2 ** 32;
  }

  #fixupAddressRegister(reg: number): void {
    if (reg === PCI_ROM_ADDRESS) {
      const v = this.read(reg, 4);
      this.#set32(reg, this.romSize === 0 ? 0 : (v & ~(this.romSize - 1) & 0xfffff800) | (v & 1));
      return;
    }
    const index = (reg - PCI_BASE_ADDRESS_0) / 4;
    const bar = this.bars[index];
    const lower = this.bars[index - 1];
    if (!bar) {
      if (lower?.kind === 'mem64') {
        // The upper half of a 64-bit BAR: its bits above the size are writable.
        const mask =
          lower.size > 2 ** 32 ? Number(BigInt.asUintN(32, ~BigInt(lower.size - 1) >> 32n)) : 0xffffffff;
        this.#set32(reg, this.read(reg, 4) & mask);
      } else {
        this.#set32(reg, 0);
      }
      return;
    }
    const v = this.read(reg, 4);
    const sizeMask = bar.size >= 2 ** 32 ? 0 : ~(bar.size - 1);
    const addressBits = bar.kind === 'io' ? 0xfffffffc : 0xfffffff0;
    this.#set32(reg, ((v & sizeMask & addressBits) | barTypeBits(bar)) >>> 0);
  }

  #set32(reg: number, value: number): void {
    for (let i = 0; i < 4; i++) this.bytes[reg + i] = (value >>> (8 * i)) & 0xff;
  }

  #mask(offset: number, size: number, bits: number, target: Uint8Array = this.wmask): void {
    for (let i = 0; i < size; i++) target[offset + i]! |= (bits >>> (8 * i)) & 0xff;
  }

  #buildMasks(): void {
    // Command: I/O, memory, bus master, parity, SERR, INTx disable. Status: error bits are W1C.
    this.#mask(PCI_COMMAND, 2, 0x0547);
    this.#mask(PCI_STATUS, 2, 0xf900, this.w1cmask);
    this.#mask(PCI_CACHE_LINE_SIZE, 1, 0xff);
    this.#mask(PCI_LATENCY_TIMER, 1, 0xff);
    this.#mask(PCI_INTERRUPT_LINE, 1, 0xff);
    // BAR and ROM registers take every bit; the fixup after a write masks them.
    for (let reg = PCI_BASE_ADDRESS_0; reg < 0x28; reg += 4) this.#mask(reg, 4, 0xffffffff);
    this.#mask(PCI_ROM_ADDRESS, 4, 0xffffffff);
    for (const { id, offset } of this.capabilities) {
      switch (id) {
        case PCI_CAP_ID_PM:
          this.#mask(offset + 4, 2, 0x0103); // PMCSR: power state, PME enable
          this.#mask(offset + 4, 2, 0x8000, this.w1cmask); // PME status
          break;
        case PCI_CAP_ID_MSI: {
          const flags = this.read(offset + 2, 2);
          const is64 = (flags & PCI_MSI_FLAGS_64BIT) !== 0;
          this.#mask(offset + 2, 2, 0x0071); // enable, multiple message enable
          this.#mask(offset + 4, 4, 0xfffffffc); // address
          if (is64) this.#mask(offset + 8, 4, 0xffffffff);
          const data = offset + (is64 ? 12 : 8);
          this.#mask(data, 2, 0xffff);
          if (flags & PCI_MSI_FLAGS_MASKBIT) this.#mask(data + 4, 4, 0xffffffff);
          break;
        }
        case PCI_CAP_ID_MSIX:
          this.#mask(offset + 2, 2, 0xc000); // function mask, enable
          break;
        case PCI_CAP_ID_EXP:
          this.#mask(offset + 8, 2, 0xffff); // device control
          this.#mask(offset + 0x10, 2, 0x0fff); // link control
          break;
      }
    }
  }
}
