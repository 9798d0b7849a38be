/**
 * QEMU's VGA quirks (vfio_vga_quirk_setup in hw/vfio/pci-quirks.c), applied
 * with x-vga: small regions inside the 0x3c0-0x3df VGA I/O window where
 * graphics cards expose their BAR addresses or config space through legacy
 * ports, which must show the virtualized values instead.
 */

import { MemoryRegion } from '@vfio-ts/memory-core';
import { PCI_BASE_ADDRESS_4, PCI_CFG_SPACE_SIZE } from '@vfio-ts/vfio-sys/uapi';
import { PCI_VENDOR_ID_ATI, PCI_VENDOR_ID_NVIDIA } from '../pci-ids.js';
import {
  traceAti3c3Probe,
  traceAti3c3Read,
  traceNvidia3d0Probe,
  traceNvidia3d0Read,
  traceNvidia3d0State,
  traceNvidia3d0Write,
} from '../trace.js';
import type { Quirk, QuirkHost } from './types.js';

/** The device's own VGA I/O window at 0x3c0 (offsets relative to 0x3c0), reached through its VGA region. */
export interface VgaIoHi {
  read(offset: number, size: number): number;
  write(offset: number, value: number, size: number): void;
}

const BYTE_OPS = { valid: { min: 1, max: 4 }, impl: { min: 1, max: 4 } } as const;

/**
 * ATI/AMD: port 0x3c3 reports the upper byte of the I/O BAR (BAR4). It
 * answers with the virtual BAR's byte unconditionally, as QEMU does (users
 * reported more success with that than with matching the physical value).
 */
function ati3c3(host: QuirkHost): Quirk | null {
  const bar4 = host.bar(4);
  if (host.vendorId !== PCI_VENDOR_ID_ATI || bar4?.kind !== 'io' || bar4.region.size < 256) return null;
  const region = MemoryRegion.io('vfio-ati-3c3-quirk', 1, {
    read: (_o, n) => {
      const data = host.configRead(PCI_BASE_ADDRESS_4 + 1, n);
      traceAti3c3Read.emit(host.name, data);
      return data;
    },
    write: () => {}, // a guest error: the register is read-only
    ...BYTE_OPS,
  });
  traceAti3c3Probe.emit(host.name);
  return { name: 'ati-3c3', regions: [{ offset: 3, region }] };
}

type Nvidia3d0State = 'NONE' | 'SELECT' | 'WINDOW' | 'READ' | 'WRITE';

/**
 * NVIDIA: 0x3d4 selects (0x338), then 0x3d0 takes an offset into BAR0; 0x538
 * or 0x738 on 0x3d4 turn the next 0x3d0 access into a read or write of that
 * BAR0 register. Offsets 0x1800-0x18ff mirror config space: those accesses
 * go to the virtualized config space; everything else reaches the device.
 */
function nvidia3d0(host: QuirkHost, vga: VgaIoHi): Quirk | null {
  if (host.noGeforceQuirks || host.vendorId !== PCI_VENDOR_ID_NVIDIA || !host.bar(1)?.region.size)
    return null;
  let state: Nvidia3d0State = 'NONE';
  let offset = 0;
  const enter = (next: Nvidia3d0State) => {
    state = next;
    traceNvidia3d0State.emit(host.name, next);
  };
  const mirrored = () => (offset & ~(PCI_CFG_SPACE_SIZE - 1)) === 0x1800;
  const select = MemoryRegion.io('vfio-nvidia-3d4-quirk', 2, {
    read: (o, n) => {
      state = 'NONE';
      return vga.read(0x14 + o, n);
    },
    write: (o, v, n) => {
      const old = state;
      state = 'NONE';
      const data = Number(v);
      if (data === 0x338 && old === 'NONE') enter('SELECT');
      else if (data === 0x538 && old === 'WINDOW') enter('READ');
      else if (data === 0x738 && old === 'WINDOW') enter('WRITE');
      vga.write(0x14 + o, data, n);
    },
    ...BYTE_OPS,
  });
  const data = MemoryRegion.io('vfio-nvidia-3d0-quirk', 2, {
    read: (o, n) => {
      const old = state;
      let value = vga.read(0x10 + o, n);
      state = 'NONE';
      if (old === 'READ' && mirrored()) {
        const at = offset & (PCI_CFG_SPACE_SIZE - 1);
        value = host.configRead(at, n);
        traceNvidia3d0Read.emit(host.name, at, n, value);
      }
      return value;
    },
    write: (o, v, n) => {
      const old = state;
      const value = Number(v);
      state = 'NONE';
      if (old === 'SELECT') {
        offset = value >>> 0;
        enter('WINDOW');
      } else if (old === 'WRITE' && mirrored()) {
        const at = offset & (PCI_CFG_SPACE_SIZE - 1);
        host.configWrite(at, value, n);
        traceNvidia3d0Write.emit(host.name, at, value, n);
        return;
      }
      vga.write(0x10 + o, value, n);
    },
    ...BYTE_OPS,
  });
  traceNvidia3d0Probe.emit(host.name);
  return {
    name: 'nvidia-3d0',
    regions: [
      { offset: 0x14, region: select },
      { offset: 0x10, region: data },
    ],
  };
}

/** vfio_vga_quirk_setup: the quirks that apply, in QEMU's order (regions relative to 0x3c0). */
export function probeVgaQuirks(host: QuirkHost, vga: VgaIoHi): Quirk[] {
  return [ati3c3(host), nvidia3d0(host, vga)].filter((q): q is Quirk => q !== null);
}
