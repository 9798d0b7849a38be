/**
 * Where the BARs go and which decoding is turned on: a stand-in for the
 * guest firmware (SeaBIOS's pci_setup), not part of QEMU's vfio, which
 * leaves this to the guest. With no guest here, the device places its own
 * BARs at realize so they are reachable; `barAddresses` overrides the policy.
 */

import { errorReport } from '@vfio-ts/vfio-region';
import { PCI_BASE_ADDRESS_0, PCI_COMMAND_IO, PCI_COMMAND_MEMORY } from '@vfio-ts/vfio-sys/uapi';
import type { PciBar } from './bars.js';
import type { EmulatedConfig } from './config.js';
import { VfioPciError } from './errors.js';
import type { BarKind } from './quirks/types.js';

/**
 * The windows firmware assigns from (SeaBIOS on QEMU's PC machines): I/O
 * ports from 0xc000, 32-bit memory from 0xc000_0000 up to the IOAPIC at
 * 0xfec0_0000 (never above 4 GiB), 64-bit memory from 512 GiB. Ends are
 * exclusive.
 */
const WINDOWS = {
  io: { start: 0xc000, end: 0x1_0000, what: 'I/O port' },
  mem32: { start: 0xc000_0000, end: 0xfec0_0000, what: '32-bit memory' },
  mem64: { start: 0x80_0000_0000, end: 2 ** 53, what: '64-bit memory' },
} as const;
type WindowName = keyof typeof WINDOWS;
/** Like SeaBIOS: 64-bit BARs up to this size go below 4 GiB too; only larger ones go high. */
const LOW_WINDOW_MAX = 256 * 1024 * 1024;
/** The highest address a BAR of each kind can decode (plus one). */
const DECODE_LIMIT = { io: 0x1_0000, mem32: 2 ** 32, mem64: 2 ** 53 } as const;

export interface BarToPlace {
  readonly index: number;
  readonly kind: BarKind;
  readonly size: number;
}

export interface BarPlacement<B extends BarToPlace = BarToPlace> {
  readonly bar: B;
  /** Where the BAR goes, or null when no window has room for it (it stays unmapped). */
  readonly address: number | null;
  /** Why it stays unmapped, as a warning to print (set when `address` is null). */
  readonly unplaced?: string;
}

/**
 * Largest first (ties by index), each naturally aligned from the start of
 * its window; a small 64-bit BAR that no longer fits below 4 GiB goes high,
 * as SeaBIOS migrates 64-bit entries when the 32-bit window is full. A BAR no
 * window has room for is left unmapped (address null, like Linux's "no space
 * for" BARs) rather than placed where its kind cannot decode: 32-bit BARs
 * are never put above 4 GiB. A given address is used as is after checking
 * its alignment and that the BAR's kind can decode it.
 */
export function placeBars<B extends BarToPlace>(
  bars: readonly B[],
  given: Readonly<Record<number, number>>,
  deviceName: string,
): BarPlacement<B>[] {
  const cursors: Record<WindowName, number> = {
    io: WINDOWS.io.start,
    mem32: WINDOWS.mem32.start,
    mem64: WINDOWS.mem64.start,
  };
  const candidates = (bar: B): WindowName[] =>
    bar.kind === 'io'
      ? ['io']
      : bar.kind === 'mem32'
        ? ['mem32']
        : bar.size > LOW_WINDOW_MAX
          ? ['mem64']
          : ['mem32', 'mem64'];
  const placements: BarPlacement<B>[] = [];
  for (const bar of [...bars].sort((a, b) => b.size - a.size || a.index - b.index)) {
    const address = given[bar.index];
    if (address !== undefined) {
      checkGivenAddress(bar, address, deviceName);
      placements.push({ bar, address });
      continue;
    }
    const windows = candidates(bar);
    const w = windows.find((name) => alignedIn(cursors[name], bar.size) + bar.size <= WINDOWS[name].end);
    if (w === undefined) {
      const full = WINDOWS[windows[0]!];
      placements.push({
        bar,
        address: null,
        unplaced: `warning: ${deviceName}: no space for ${bar.kind} BAR ${bar.index} of 0x${bar.size.toString(16)} bytes in the ${full.what} window [0x${full.start.toString(16)}-0x${(full.end - 1).toString(16)}]; BAR ${bar.index} is left unmapped`,
      });
      continue;
    }
    const at = alignedIn(cursors[w], bar.size);
    cursors[w] = at + bar.size;
    placements.push({ bar, address: at });
  }
  return placements;
}

function alignedIn(cursor: number, size: number): number {
  return Math.ceil(cursor / size) * size;
}

function checkGivenAddress(bar: BarToPlace, address: number, deviceName: string): void {
  if (!Number.isSafeInteger(address) || address <= 0 || address % bar.size !== 0) {
    throw new VfioPciError(
      'ERR_VFIO_PCI_BAR_ADDRESS',
      deviceName,
      `BAR ${bar.index} address 0x${address.toString(16)} is not aligned to its size 0x${bar.size.toString(16)}`,
    );
  }
  const limit = DECODE_LIMIT[bar.kind];
  if (address + bar.size > limit) {
    throw new VfioPciError(
      'ERR_VFIO_PCI_BAR_ADDRESS',
      deviceName,
      `BAR ${bar.index} (${bar.kind}, 0x${bar.size.toString(16)} bytes) cannot decode address 0x${address.toString(16)}: it must end at or below 0x${limit.toString(16)}`,
      bar.kind === 'mem32' ? 'a 32-bit BAR lives below 4 GiB; give an address there' : undefined,
    );
  }
}

/**
 * Writes each placement into the emulated BAR registers, keeping their type
 * bits. A BAR left unplaced gets address 0 (it does not decode: unmapped),
 * and a warning says why, as Linux's "no space for" message does.
 */
export function writeBarAddresses(config: EmulatedConfig, placements: readonly BarPlacement<PciBar>[]): void {
  for (const { bar, address, unplaced } of placements) {
    if (address === null) errorReport(unplaced!);
    const at = address ?? 0;
    const reg = PCI_BASE_ADDRESS_0 + 4 * bar.index;
    const typeBits = config.emulatedValue(reg, 4) & (bar.kind === 'io' ? 3 : 0xf);
    config.setEmulatedValue(reg, 4, (at % 2 ** 32) + typeBits);
    if (bar.kind === 'mem64') config.setEmulatedValue(reg + 4, 4, Math.floor(at / 2 ** 32));
  }
}

/** The command register bits firmware sets: I/O and memory decoding for the kinds of BAR present. */
export function decodeBits(bars: readonly BarToPlace[]): number {
  return (
    (bars.some((b) => b.kind === 'io') ? PCI_COMMAND_IO : 0) |
    (bars.some((b) => b.kind !== 'io') ? PCI_COMMAND_MEMORY : 0)
  );
}
