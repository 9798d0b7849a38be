// emulatedConfigBits(): which config-space bits the device's driver sees from
// vfio-ts rather than from the device (QEMU's emulated_config_bits).
import { openSimDevice } from '@vfio-ts/plugin-host';
import { describe, expect, it } from 'vitest';
import { VfioPciDevice } from '../src/index.js';

const runs = (bits: Uint8Array) => {
  const out: [number, number][] = [];
  bits.forEach((b, i) => {
    if (b === 0) return;
    const last = out.at(-1);
    if (last && last[0] + last[1] === i) last[1]++;
    else out.push([i, 1]);
  });
  return out;
};

describe('emulatedConfigBits', () => {
  it('nvme: the six BARs, the ROM BAR and the MSI-X capability, one mask byte per config byte', () => {
    using dev = VfioPciDevice.realize(openSimDevice('sim:nvme'), '0000:00:03.0', {});
    const bits = dev.emulatedConfigBits();
    expect(bits).toHaveLength(dev.configSize);
    expect(runs(bits)).toEqual([
      [0x10, 24],
      [0x30, 4],
      [0x40, 12],
    ]);
    // A copy: changing it changes nothing in the device.
    bits.fill(0);
    expect(runs(dev.emulatedConfigBits())).toHaveLength(3);
  });

  it('e1000e: MSI flags emulated too', () => {
    using dev = VfioPciDevice.realize(openSimDevice('sim:e1000e'), '0000:00:04.0', {});
    expect(runs(dev.emulatedConfigBits())).toContainEqual([0xd2, 2]);
  });

  it('after teardown, it says the device is gone', () => {
    const dev = VfioPciDevice.realize(openSimDevice('sim:nvme'), '0000:00:03.0', {});
    dev.teardown();
    expect(() => dev.emulatedConfigBits()).toThrow(
      expect.objectContaining({ code: 'ERR_VFIO_PCI_TORN_DOWN' }),
    );
  });
});
