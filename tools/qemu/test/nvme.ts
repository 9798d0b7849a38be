/** What the nvme tests read: the guest's "key: value" lines, its /proc/interrupts lines, and what sim:nvme says it is. */

import { NVME_STATUS_DATA_TRANSFER_ERROR } from '@vfio-ts/plugin-host';

/** The values of `key: ...` lines a guest script printed. */
export function guestValues(output: string, key: string): string[] {
  const prefix = `${key}: `;
  return output
    .split('\n')
    .filter((l) => l.startsWith(prefix))
    .map((l) => l.slice(prefix.length).trim());
}

export interface MsixLine {
  readonly line: string;
  readonly irq: number;
  /** Interrupts taken (one vCPU: one count column). */
  readonly count: number;
  /** The MSI-X table entry (the hwirq of Linux's per-device MSI domain). */
  readonly vector: number;
  readonly queue: string;
}

/** Parses /proc/interrupts lines such as `24:  12  PCI-MSIX-0000:00:04.0  0-edge  nvme0q0`. */
export function msixLines(lines: readonly string[]): MsixLine[] {
  return lines.map((line) => {
    const m = line.match(/^(\d+):\s+(\d+)\s+PCI-MSIX-0000:00:04\.0\s+(\d+)-edge\s+(nvme\d+q\d+)$/);
    if (!m) throw new Error(`not an nvme MSI-X line of /proc/interrupts: ${line}`);
    return { line, irq: Number(m[1]), count: Number(m[2]), vector: Number(m[3]), queue: m[4]! };
  });
}

/** What sim:nvme identifies as (model, serial, firmware, LBA size, namespace blocks): the model's own export. */
export { NVME_IDENTITY } from '@vfio-ts/plugin-host';

/**
 * The status a command whose data pointer lies outside the host's memory
 * completes with, as sim:nvme exports it (Data Transfer Error: NVMe base
 * spec, Generic Command Status 0x04, SCT 0), split as the guest prints it.
 */
export const NVME_DMA_ERROR = {
  sct: (NVME_STATUS_DATA_TRANSFER_ERROR >> 8) & 0x7,
  sc: NVME_STATUS_DATA_TRANSFER_ERROR & 0xff,
};

/** QEMU's trace between the guest script's two marks (one-byte config reads at `from` and `to`: guest/nvme.sh's mark). */
export function traceBetweenMarks(trace: string, from: number, to: number): string {
  const mark = (offset: number) =>
    new RegExp(`^vfio_pci_read_config\\s+\\(vfio-user:[^,]*, @0x${offset.toString(16)}, len=0x1\\) `, 'm');
  const start = trace.search(mark(from));
  const end = trace.search(mark(to));
  if (start < 0 || end < start) {
    throw new Error(
      `the trace has no config read at 0x${from.toString(16)} followed by one at 0x${to.toString(16)}`,
    );
  }
  return trace.slice(start, end);
}
