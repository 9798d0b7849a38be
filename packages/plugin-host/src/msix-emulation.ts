/**
 * The device side of MSI-X: where the table and PBA are (from the
 * capability), their state after reset, the mask a vector fires against, the
 * pending bits a masked vector sets, and the mmap-able areas around the table
 * that kernels reporting SPARSE_MMAP give.
 */
import { memoryRead, memoryWrite } from '@vfio-ts/memory-core';
import {
  PCI_CAP_ID_MSIX,
  PCI_MSIX_ENTRY_SIZE,
  PCI_MSIX_FLAGS,
  PCI_MSIX_FLAGS_MASKALL,
  PCI_MSIX_FLAGS_QSIZE,
  PCI_MSIX_PBA,
  PCI_MSIX_TABLE,
} from '@vfio-ts/vfio-sys/uapi';
import { alignUp, type BarBacking } from './bar-backing.js';
import type { ConfigSpace } from './config-space.js';
import { ModelError } from './errors.js';

export interface MsixLayout {
  readonly vectors: number;
  readonly tableBar: number;
  readonly tableOffset: number;
  readonly pbaBar: number;
  readonly pbaOffset: number;
}

/** Vector control is the last dword of a 16-byte entry; bit 0 masks the vector. */
const VECTOR_CTRL = 12;

export function msixLayoutOf(config: ConfigSpace): MsixLayout | null {
  const cap = config.capability(PCI_CAP_ID_MSIX);
  if (cap === undefined) return null;
  const table = config.read(cap + PCI_MSIX_TABLE, 4);
  const pba = config.read(cap + PCI_MSIX_PBA, 4);
  return {
    vectors: (config.read(cap + PCI_MSIX_FLAGS, 2) & PCI_MSIX_FLAGS_QSIZE) + 1,
    tableBar: table & 7,
    tableOffset: (table & ~7) >>> 0,
    pbaBar: pba & 7,
    pbaOffset: (pba & ~7) >>> 0,
  };
}

/** Bytes of the table: one 16-byte entry per vector. */
export function msixTableBytes(m: MsixLayout): number {
  return m.vectors * PCI_MSIX_ENTRY_SIZE;
}

/** Checks the table and PBA fit their BARs, then masks every vector, as PCI requires after reset (and the captures show). */
export function initMsixTable(
  device: string,
  m: MsixLayout,
  bars: readonly (BarBacking | undefined)[],
): void {
  const table = bars[m.tableBar];
  const pba = bars[m.pbaBar];
  if (!table || !pba || m.tableOffset + msixTableBytes(m) > table.layout.size) {
    throw new ModelError('ERR_MODEL_MSIX', `MSI-X table of ${device} does not fit in BAR ${m.tableBar}`);
  }
  if (m.pbaOffset + Math.ceil(m.vectors / 64) * 8 > pba.layout.size) {
    throw new ModelError('ERR_MODEL_MSIX', `MSI-X PBA of ${device} does not fit in BAR ${m.pbaBar}`);
  }
  // memoryWrite reaches any offset of a large BAR (the views are windows).
  for (let v = 0; v < m.vectors; v++) {
    memoryWrite(table.memory, m.tableOffset + v * PCI_MSIX_ENTRY_SIZE + VECTOR_CTRL, 1, 4);
  }
}

/** True when `vector` may not signal: the function mask, its entry's mask bit, or no such vector. */
export function msixMasked(
  m: MsixLayout | null,
  config: ConfigSpace,
  bars: readonly (BarBacking | undefined)[],
  vector: number,
): boolean {
  if (!m || vector >= m.vectors) return true;
  const cap = config.capability(PCI_CAP_ID_MSIX)!;
  if (config.read(cap + PCI_MSIX_FLAGS, 2) & PCI_MSIX_FLAGS_MASKALL) return true;
  const ctrl = memoryRead(
    bars[m.tableBar]!.memory,
    m.tableOffset + vector * PCI_MSIX_ENTRY_SIZE + VECTOR_CTRL,
    4,
  );
  return ((ctrl as number) & 1) !== 0;
}

export function setMsixPending(
  m: MsixLayout,
  bars: readonly (BarBacking | undefined)[],
  vector: number,
  pending: boolean,
): void {
  const memory = bars[m.pbaBar]!.memory;
  const at = m.pbaOffset + Math.floor(vector / 32) * 4;
  const word = memoryRead(memory, at, 4) as number;
  const bit = 1 << (vector % 32);
  memoryWrite(memory, at, pending ? (word | bit) >>> 0 : (word & ~bit) >>> 0, 4);
}

/**
 * A vector's mask bit in the device's own table, as the host kernel writes it
 * when a user attaches an eventfd (request_irq unmasks) or detaches it
 * (free_irq masks). The user's table is emulated above the seam (QEMU, our
 * pci-vfio), so without this no client's vector would ever be unmasked here.
 */
export function setMsixVectorMask(
  m: MsixLayout,
  bars: readonly (BarBacking | undefined)[],
  vector: number,
  masked: boolean,
): void {
  memoryWrite(
    bars[m.tableBar]!.memory,
    m.tableOffset + vector * PCI_MSIX_ENTRY_SIZE + VECTOR_CTRL,
    masked ? 1 : 0,
    4,
  );
}

/** The SPARSE_MMAP areas of the table's BAR: everything but the pages the table touches. */
export function msixSparseAreas(
  m: MsixLayout,
  barSize: number,
  pageSize: number,
): { offset: number; size: number }[] {
  const start = Math.floor(m.tableOffset / pageSize) * pageSize;
  const end = alignUp(m.tableOffset + msixTableBytes(m), pageSize);
  const areas: { offset: number; size: number }[] = [];
  if (start > 0) areas.push({ offset: 0, size: start });
  if (end < barSize) areas.push({ offset: end, size: barSize - end });
  return areas;
}

/** Whether an access touches the table (which vfio-pci keeps from read/write). */
export function touchesMsixTable(m: MsixLayout | null, index: number, offset: number, size: number): boolean {
  return (
    m !== null &&
    m.tableBar === index &&
    offset < m.tableOffset + msixTableBytes(m) &&
    offset + size > m.tableOffset
  );
}
