/**
 * QEMU's two generic quirk shapes. A window is an address register and a
 * data register: writing an address that matches opens the window, and the
 * data register then reaches config space instead of the device. A mirror is
 * a range of a BAR that shows config space (reads touch the device first, in
 * case the hardware cares).
 */
import { MemoryRegion } from '@vfio-ts/memory-core';
import {
  traceMirrorRead,
  traceMirrorWrite,
  traceWindowAddressWrite,
  traceWindowDataRead,
  traceWindowDataWrite,
} from '../trace.js';
import type { QuirkHost, QuirkRegion } from './types.js';

export interface WindowMatch {
  readonly match: number;
  readonly mask: number;
}

export interface ConfigWindow {
  readonly addressRegion: MemoryRegion;
  readonly dataRegion: MemoryRegion;
  readonly regions: QuirkRegion[];
}

/** vfio_generic_window_address_quirk + vfio_generic_window_data_quirk. */
export function configWindowQuirk(
  host: QuirkHost,
  bar: number,
  names: { address: string; data: string },
  layout: { addressOffset: number; dataOffset: number; matches: readonly WindowMatch[] },
): ConfigWindow {
  const region = host.bar(bar)!.region;
  let enabled = false;
  let addressVal = 0;
  const addressRegion: MemoryRegion = MemoryRegion.io(names.address, 4, {
    read: (addr, size) => region.read(addr + layout.addressOffset, size),
    write: (addr, data, size) => {
      enabled = false;
      region.write(addr + layout.addressOffset, data, size);
      const value = Number(data);
      for (const m of layout.matches) {
        if ((value & ~m.mask) >>> 0 === m.match) {
          enabled = true;
          addressVal = value & m.mask;
          traceWindowAddressWrite.emit(host.name, addressRegion.name, value);
          break;
        }
      }
    },
  });
  const dataRegion: MemoryRegion = MemoryRegion.io(names.data, 4, {
    read: (addr, size) => {
      let data = region.read(addr + layout.dataOffset, size);
      if (enabled) {
        data = host.configRead(addressVal, size);
        traceWindowDataRead.emit(host.name, dataRegion.name, data);
      }
      return data;
    },
    write: (addr, data, size) => {
      if (enabled) {
        host.configWrite(addressVal, Number(data), size);
        traceWindowDataWrite.emit(host.name, dataRegion.name, data);
        return;
      }
      region.write(addr + layout.dataOffset, data, size);
    },
  });
  return {
    addressRegion,
    dataRegion,
    regions: [
      { offset: layout.addressOffset, region: addressRegion },
      { offset: layout.dataOffset, region: dataRegion },
    ],
  };
}

/** vfio_generic_mirror_quirk: `size` bytes at `offset` of BAR `bar` mirror config space. */
export function configMirrorQuirk(
  host: QuirkHost,
  bar: number,
  name: string,
  offset: number,
  size: number,
  onWrite?: (addr: number, data: number, size: number) => void,
): QuirkRegion {
  const region = host.bar(bar)!.region;
  const mirror: MemoryRegion = MemoryRegion.io(name, size, {
    read: (addr, n) => {
      region.read(addr + offset, n); // read and discard in case the hardware cares
      const data = host.configRead(addr, n);
      traceMirrorRead.emit(host.name, mirror.name, addr, data);
      return data;
    },
    write: (addr, data, n) => {
      host.configWrite(addr, Number(data), n);
      traceMirrorWrite.emit(host.name, mirror.name, addr, data);
      onWrite?.(addr, Number(data), n);
    },
  });
  return { offset, region: mirror };
}
