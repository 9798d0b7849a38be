/**
 * Where the BARs go and which decoding is turned on: a stand-in for the
 * guest firmware (SeaBIOS's pci_setup), not part of QEMU's vfio, which
 * leaves this to the guest. With no guest here, the device places its own
 * BARs at realize so they are reachable; `barAddresses` overrides the policy.
 */
import { PCI_BASE_ADDRESS_0, PCI_COMMAND_IO, PCI_COMMAND_MEMORY } from '@vfio-ts/vfio-sys';
import type { PciBar } from './bars.js';
import type { EmulatedConfig } from './config.js';
import { VfioPciError } from './errors.js';
import type { BarKind } from './quirks/types.js';

const MEM32_START = 0xc000_0000;
const MEM64_START = 0x80_0000_0000;
const IO_START = 0xc000;
/** Like SeaBIOS: 64-bit BARs up to this size go below 4 GiB too; only larger ones go high. */
const LOW_WINDOW_MAX = 256 * 1024 * 1024;

export interface BarToPlace {
  readonly index: number;
  readonly kind: BarKind;
  readonly size: number;
}

export interface BarPlacement<B extends BarToPlace = BarToPlace> {
  readonly bar: B;
  readonly address: number;
}

/**
 * Largest first (ties by index), each naturally aligned from the start of
 * its window; a given address is used as is after checking its alignment.
 */
export function placeBars<B extends BarToPlace>(
  bars: readonly B[],
  given: Readonly<Record<number, number>>,
  deviceName: string,
): BarPlacement<B>[] {
  const cursors = { io: IO_START, mem32: MEM32_START, mem64: MEM64_START };
  const window = (bar: B): 'io' | 'mem32' | 'mem64' =>
    bar.kind === 'mem64' && bar.size > LOW_WINDOW_MAX ? 'mem64' : bar.kind === 'io' ? 'io' : 'mem32';
  const placements: BarPlacement<B>[] = [];
  for (const bar of [...bars].sort((a, b) => b.size - a.size || a.index - b.index)) {
    let address = given[bar.index];
    if (address === undefined) {
      const w = window(bar);
      address = Math.ceil(cursors[w] / bar.size) * bar.size;
      cursors[w] = address + bar.size;
    } else if (!Number.isSafeInteger(address) || address <= 0 || address % bar.size !== 0) {
      throw new VfioPciError(
        'ERR_VFIO_PCI_BAR_ADDRESS',
        deviceName,
        `BAR ${bar.index} address 0x${address.toString(16)} is not aligned to its size 0x${bar.size.toString(16)}`,
      );
    }
    placements.push({ bar, address });
  }
  return placements;
}

/** Writes each placement into the emulated BAR registers, keeping their type bits. */
export function writeBarAddresses(config: EmulatedConfig, placements: readonly BarPlacement<PciBar>[]): void {
  for (const { bar, address } of placements) {
    const reg = PCI_BASE_ADDRESS_0 + 4 * bar.index;
    const typeBits = config.emulatedValue(reg, 4) & (bar.kind === 'io' ? 3 : 0xf);
    config.setEmulatedValue(reg, 4, ((address % 2 ** 32) | typeBits) >>> 0);
    if (bar.kind === 'mem64') config.setEmulatedValue(reg + 4, 4, Math.floor(address / 2 ** 32));
  }
}

/** The command register bits firmware sets: I/O and memory decoding for the kinds of BAR present. */
export function decodeBits(bars: readonly BarToPlace[]): number {
  return (
    (bars.some((b) => b.kind === 'io') ? PCI_COMMAND_IO : 0) |
    (bars.some((b) => b.kind !== 'io') ? PCI_COMMAND_MEMORY : 0)
  );
}
