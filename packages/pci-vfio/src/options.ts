import type { AddressSpace } from '@vfio-ts/memory-core';
import type { MsixRelocation } from './msix-setup.js';
import type { QuirkRegistry } from './quirks/registry.js';

/** How a VfioPciDevice is realized: QEMU's vfio-pci property names where one exists. */
export interface VfioPciOptions {
  /** QEMU `x-no-mmap`: every BAR access takes the slow path. */
  readonly 'x-no-mmap'?: boolean;
  /** QEMU `x-vga`: expose the device's VGA region (it must have one) and apply the VGA quirks. */
  readonly 'x-vga'?: boolean;
  /** QEMU `x-no-geforce-quirks`. */
  readonly 'x-no-geforce-quirks'?: boolean;
  /** Testing: ignore MSIX_MAPPABLE so the MSI-X fixup runs (as on kernels before 4.16). */
  readonly 'x-msix-ignore-mappable'?: boolean;
  /**
   * QEMU `x-msix-relocation`: move the emulated MSI-X table and PBA to BAR n,
   * doubling it (the structures go in the upper half) or, if absent, adding it
   * (64-bit when the next BAR is free, prefetchable). `auto` has no known
   * devices (as in QEMU) and is an error.
   */
  readonly 'x-msix-relocation'?: MsixRelocation;
  /** Host page size for the MSI-X fixup (default: the real one; 65536 to test 64 KiB hosts). */
  readonly pageSize?: number;
  /** BAR addresses to use instead of firmware-like assignment (index -> address). */
  readonly barAddresses?: Readonly<Record<number, number>>;
  /** The quirks to probe (default: the built-ins). */
  readonly quirks?: QuirkRegistry;
  /** Address spaces to register in (default: new "memory" and "I/O" spaces owned by the device). */
  readonly memory?: AddressSpace;
  readonly io?: AddressSpace;
  /** Close the VfioDeviceIo on teardown (default true: the device owns it, as QEMU's vfio_put_device). */
  readonly closeDevice?: boolean;
}
