/**
 * msix_init's sanity test that vfio-pci relies on: a table and PBA in the
 * same BAR must not overlap (QEMU: "table & pba overlap, or they don't fit in
 * BARs, or don't align"). It holds for any backend, since a vfio-user server
 * or a broken device can report such a layout as easily as a real one.
 */
import { PCI_MSIX_ENTRY_SIZE } from '@vfio-ts/vfio-sys/uapi';
import { VfioPciError } from './errors.js';

export interface MsixExtent {
  readonly tableBar: number;
  readonly tableOffset: number;
  readonly pbaBar: number;
  readonly pbaOffset: number;
}

/** QEMU's pba_size: one bit per vector, in whole 64-bit words. */
export function msixPbaBytes(entries: number): number {
  return Math.ceil(entries / 64) * 8;
}

/** ranges_overlap: [a, a + aLength) and [b, b + bLength) share a byte. */
function rangesOverlap(a: number, aLength: number, b: number, bLength: number): boolean {
  return a < b + bLength && b < a + aLength;
}

/** Throws ERR_VFIO_PCI_MSIX_LAYOUT when the table and PBA share bytes of one BAR. */
export function checkMsixOverlap(name: string, msix: MsixExtent, entries: number): void {
  const tableBytes = entries * PCI_MSIX_ENTRY_SIZE;
  const pbaBytes = msixPbaBytes(entries);
  if (msix.tableBar !== msix.pbaBar || !rangesOverlap(msix.tableOffset, tableBytes, msix.pbaOffset, pbaBytes))
    return;
  const hex = (n: number) => `0x${n.toString(16)}`;
  throw new VfioPciError(
    'ERR_VFIO_PCI_MSIX_LAYOUT',
    name,
    `MSI-X table (${entries} entries, ${hex(tableBytes)} bytes at ${hex(msix.tableOffset)}) and PBA (${hex(pbaBytes)} bytes at ${hex(msix.pbaOffset)}) overlap in BAR ${msix.tableBar}`,
    "the device reports an invalid MSI-X configuration (QEMU's msix_init refuses it too); x-msix-relocation=barN moves the emulated structures apart",
  );
}
