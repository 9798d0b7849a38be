/**
 * The configuration space a driver of a VfioPciDevice sees: physical bytes
 * read through the CONFIG region, with the fields QEMU emulates laid over
 * them (BARs and ROM BAR, the MSI-X capability): vfio_pci_read_config and
 * vfio_pci_write_config. Writes always go to the device too, which filters
 * what it cannot take.
 */
import type { VfioDeviceIo } from '@vfio-ts/vfio-sys';
import { VFIO_PCI_CONFIG_REGION_INDEX } from '@vfio-ts/vfio-sys/uapi';
import { tracePciReadConfig, tracePciWriteConfig } from './trace.js';

export class EmulatedConfig {
  readonly size: number;
  /** Which bits are ours rather than the device's. */
  readonly emulatedBits: Uint8Array;
  /** Our values of the emulated bits. */
  readonly emulated: Uint8Array;
  /** Which emulated bits software may change. */
  readonly writable: Uint8Array;
  readonly #device: VfioDeviceIo;

  constructor(device: VfioDeviceIo, size: number) {
    this.#device = device;
    this.size = size;
    this.emulatedBits = new Uint8Array(size);
    this.emulated = new Uint8Array(size);
    this.writable = new Uint8Array(size);
  }

  /** Takes `length` bytes at `offset` over: `value` as initial contents, `writable` as the write mask. */
  emulate(offset: number, length: number, value: number | Uint8Array, writable: number | Uint8Array): void {
    for (let i = 0; i < length; i++) {
      this.emulatedBits[offset + i] = 0xff;
      this.emulated[offset + i] = typeof value === 'number' ? (value >>> (8 * i)) & 0xff : value[i]!;
      this.writable[offset + i] = typeof writable === 'number' ? (writable >>> (8 * i)) & 0xff : writable[i]!;
    }
  }

  read(offset: number, size: number, name: string): number {
    let physical: Uint8Array | null = null;
    for (let i = 0; i < size; i++) {
      if (this.emulatedBits[offset + i] !== 0xff) {
        physical = this.#device.regionReadBlock(VFIO_PCI_CONFIG_REGION_INDEX, offset, size);
        break;
      }
    }
    let value = 0;
    for (let i = size - 1; i >= 0; i--) {
      const bits = this.emulatedBits[offset + i]!;
      const byte = (this.emulated[offset + i]! & bits) | ((physical?.[i] ?? 0) & ~bits & 0xff);
      value = value * 256 + byte;
    }
    tracePciReadConfig.emit(name, offset, size, value);
    return value;
  }

  /** Writes to the device, then updates the emulated bits through their write mask. */
  write(offset: number, value: number, size: number, name: string): void {
    tracePciWriteConfig.emit(name, offset, value, size);
    const bytes = new Uint8Array(size);
    for (let i = 0; i < size; i++) bytes[i] = Math.floor(value / 2 ** (8 * i)) & 0xff;
    this.#device.regionWriteBlock(VFIO_PCI_CONFIG_REGION_INDEX, offset, bytes);
    for (let i = 0; i < size; i++) {
      const at = offset + i;
      const mask = this.writable[at]!;
      this.emulated[at] = (this.emulated[at]! & ~mask) | (bytes[i]! & mask);
    }
  }

  emulatedValue(offset: number, size: number): number {
    let v = 0;
    for (let i = size - 1; i >= 0; i--) v = v * 256 + this.emulated[offset + i]!;
    return v;
  }

  setEmulatedValue(offset: number, size: number, value: number): void {
    for (let i = 0; i < size; i++) this.emulated[offset + i] = Math.floor(value / 2 ** (8 * i)) & 0xff;
  }
}
