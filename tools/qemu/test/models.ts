/** What each built-in model declares, read from plugin-host (the oracle the QEMU tests compare with). */
import { builtinModels, type DeviceModel, openSimDevice, type SimDevice } from '@vfio-ts/plugin-host';

export const MODEL_NAMES = Object.keys(builtinModels);

export interface DeclaredBar {
  readonly index: number;
  readonly size: number;
  readonly kind: 'mem32' | 'mem64' | 'io';
  readonly prefetchable: boolean;
}

export interface DeclaredModel {
  readonly name: string;
  readonly vendor: number;
  readonly device: number;
  readonly subsystemVendor: number;
  readonly subsystem: number;
  /** Base class and subclass, as QEMU's query-pci reports `class` (config 0x0a-0x0b). */
  readonly pciClass: number;
  readonly interruptPin: number;
  readonly configSize: number;
  readonly bars: readonly DeclaredBar[];
  readonly romSize: number;
  readonly model: DeviceModel;
}

const u16 = (b: Uint8Array, o: number) => b[o]! | (b[o + 1]! << 8);

export function declared(name: string): DeclaredModel {
  const model = builtinModels[name]!();
  const c = model.config;
  return {
    name,
    vendor: u16(c, 0x00),
    device: u16(c, 0x02),
    subsystemVendor: u16(c, 0x2c),
    subsystem: u16(c, 0x2e),
    pciClass: u16(c, 0x0a),
    interruptPin: c[0x3d]!,
    configSize: c.length,
    bars: model.bars.map((b) => ({
      index: b.index,
      size: b.size,
      kind: b.kind,
      prefetchable: b.prefetchable,
    })),
    romSize: model.rom?.length ?? 0,
    model,
  };
}

/** The in-process device (the same model vfio-ts serve serves), with decode on; the caller closes it. */
export function inProcess(name: string): SimDevice {
  const dev = openSimDevice(`sim:${name}`);
  dev.regionWrite(7, 0x04, dev.regionRead(7, 0x04, 2) | 0x3, 2);
  return dev;
}
