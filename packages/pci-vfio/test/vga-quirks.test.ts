// The VGA quirks of x-vga (vfio_vga_quirk_setup): ATI's 0x3c3 and NVIDIA's
// 0x3d4/0x3d0 window, on the simulated GPUs that implement those ports.
import { openSimDevice } from '@vfio-ts/plugin-host';
import { resourceCounts, settle, traceLines } from '@vfio-ts/test-support';
import { describe, expect, it } from 'vitest';
import { VfioPciDevice, type VfioPciOptions } from '../src/index.js';

const BDF = '0000:01:00.0';
const realize = (spec: string, options: VfioPciOptions = {}) =>
  VfioPciDevice.realize(openSimDevice(spec), BDF, { 'x-vga': true, ...options });

describe('ATI 0x3c3', () => {
  it('reads the upper byte of the virtual I/O BAR instead of the physical one', () => {
    let dev!: VfioPciDevice;
    const probes = traceLines('vfio_quirk_*_probe', () => {
      dev = realize('sim:ati-gpu');
    });
    try {
      // QEMU probes the VGA quirks before the BAR quirks.
      expect(probes).toEqual([
        `vfio_quirk_ati_3c3_probe ${BDF}`,
        `vfio_quirk_ati_bar2_probe ${BDF}`,
        `vfio_quirk_ati_bar4_probe ${BDF}`,
      ]);
      expect(dev.vgaQuirks.map((q) => q.name)).toEqual(['ati-3c3']);
      const virtualByte = (dev.bar(4)!.address! >> 8) & 0xff; // where we placed BAR4
      const physical = dev.device.regionRead(8, 0x3c3, 1); // what the device says
      expect(physical).not.toBe(virtualByte);
      let value = 0;
      const reads = traceLines('vfio_quirk_ati_3c3_read', () => {
        value = dev.io.read(0x3c3, 1) as number;
      });
      expect(value).toBe(virtualByte);
      expect(reads).toEqual([`vfio_quirk_ati_3c3_read ${BDF} 0x${virtualByte.toString(16)}`]);
      // The rest of the window still reaches the device.
      expect(dev.io.flatView().lookup(0x3c2)!.region.name).toBe('vfio-vga-io@0x3c0');
    } finally {
      dev.teardown();
    }
  });
});

describe('NVIDIA 0x3d4/0x3d0', () => {
  const window = (dev: VfioPciDevice, offset: number, mode: 0x538 | 0x738) => {
    dev.io.write(0x3d4, 0x338, 2);
    dev.io.write(0x3d0, offset, 2);
    dev.io.write(0x3d4, mode, 2);
  };

  it('reads of the config mirror (BAR0 0x1800) give the virtualized config space, with the state traced', () => {
    using dev = realize('sim:nvidia-gpu');
    expect(dev.vgaQuirks.map((q) => q.name)).toEqual(['nvidia-3d0']);
    let value = 0;
    const lines = traceLines('vfio_quirk_nvidia_3d0_*', () => {
      window(dev, 0x1812, 0x538); // the upper half of BAR0's register
      value = dev.io.read(0x3d0, 2) as number;
    });
    expect(value).toBe(dev.configRead(0x12, 2)); // our BAR0 address, not the device's
    expect(value).not.toBe(dev.device.regionRead(7, 0x12, 2));
    expect(lines).toEqual([
      `vfio_quirk_nvidia_3d0_state ${BDF} SELECT`,
      `vfio_quirk_nvidia_3d0_state ${BDF} WINDOW`,
      `vfio_quirk_nvidia_3d0_state ${BDF} READ`,
      `vfio_quirk_nvidia_3d0_read  (${BDF}, @0x12, len=0x2) 0x${value.toString(16)}`,
    ]);
  });

  it('other BAR0 offsets reach the device; writes to the mirror go to the virtualized config space', () => {
    using dev = realize('sim:nvidia-gpu');
    const sim = dev.device;
    sim.regionWrite(0, 0x100, 0x1234, 2); // a device register
    window(dev, 0x100, 0x538);
    expect(dev.io.read(0x3d0, 2)).toBe(0x1234);
    const command = dev.configRead(0x04, 2);
    const lines = traceLines('vfio_quirk_nvidia_3d0_write', () => {
      window(dev, 0x1804, 0x738);
      dev.io.write(0x3d0, command & ~2, 2); // memory decode off, through the legacy window
    });
    expect(lines).toEqual([
      `vfio_quirk_nvidia_3d0_write (${BDF}, @0x4, 0x${(command & ~2).toString(16)}, len=0x2)`,
    ]);
    expect(dev.configRead(0x04, 2)).toBe(command & ~2);
    expect(dev.bar(0)!.address).toBeNull(); // the emulated command register unmapped the BAR
    // An access out of sequence resets the state machine: this read is plain.
    window(dev, 0x1810, 0x538);
    dev.io.read(0x3d4, 2);
    expect(dev.io.read(0x3d0, 2)).toBe(0);
  });

  it('is not applied with x-no-geforce-quirks', () => {
    using dev = realize('sim:nvidia-gpu', { 'x-no-geforce-quirks': true });
    expect(dev.vgaQuirks).toEqual([]);
  });

  it('realize/teardown with the VGA quirks leaves nothing behind', async () => {
    await settle();
    const before = resourceCounts();
    for (let i = 0; i < 20; i++) realize(i % 2 ? 'sim:nvidia-gpu' : 'sim:ati-gpu').teardown();
    await settle();
    expect(resourceCounts()).toEqual(before);
  });
});
