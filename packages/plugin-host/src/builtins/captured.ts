/**
 * Models whose identity comes from a real capture: configuration space bytes
 * and region layout exactly as Linux vfio-pci presented the QEMU device.
 */
import { PCI_BASE_ADDRESS_0 } from '@vfio-ts/vfio-sys/uapi';
import type { BarKind } from '../config-space.js';
import type { DeviceModel, ModelBar, ModelContext, ModelHooks } from '../model.js';
import type { CapturedDevice } from './captures.js';
import { bytesFromHex } from './registers.js';

export function barsFromCapture(capture: CapturedDevice, config: Uint8Array): ModelBar[] {
  const bars: ModelBar[] = [];
  for (const region of capture.regions) {
    if (region.index > 5 || region.size === 0) continue;
    const reg = PCI_BASE_ADDRESS_0 + region.index * 4;
    const low = config[reg]!;
    const kind: BarKind = low & 1 ? 'io' : (low & 6) === 4 ? 'mem64' : 'mem32';
    bars.push({
      index: region.index,
      size: region.size,
      kind,
      prefetchable: (low & 8) !== 0 && kind !== 'io',
      mappable: (region.flags & 4) !== 0,
    });
  }
  return bars;
}

/** An option ROM image of `size` bytes with the 0x55AA signature and its length in 512-byte blocks. */
export function optionRom(size: number): Uint8Array {
  const rom = new Uint8Array(size);
  rom[0] = 0x55;
  rom[1] = 0xaa;
  rom[2] = Math.min(0xff, size / 512);
  return rom;
}

export function capturedModel(
  name: string,
  capture: CapturedDevice,
  setup: (context: ModelContext) => ModelHooks | undefined,
): DeviceModel {
  const config = bytesFromHex(capture.configHex);
  const rom = capture.regions.find((r) => r.index === 6 && r.size > 0);
  return {
    name,
    config,
    bars: barsFromCapture(capture, config),
    ...(rom ? { rom: optionRom(rom.size) } : {}),
    setup,
  };
}
