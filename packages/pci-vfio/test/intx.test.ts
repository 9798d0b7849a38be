// INTx: on at realize for a device with a pin, automasked, unmasked by EOI,
// handed over to MSI/MSI-X and back as QEMU does.
import { openSimDevice, type SimDevice } from '@vfio-ts/plugin-host';
import { traceLines } from '@vfio-ts/test-support';
import { EventFd } from '@vfio-ts/vfio-sys';
import { describe, expect, it } from 'vitest';
import { VfioPciDevice } from '../src/index.js';

const BDF = '0000:00:03.0';

describe('INTx', () => {
  it('is enabled at realize, fires once until EOI, and is traced', () => {
    let dev!: VfioPciDevice;
    const lines = traceLines('vfio_intx_*', () => {
      dev = VfioPciDevice.realize(openSimDevice('sim:nvme'), BDF);
    });
    try {
      expect(lines).toEqual([`vfio_intx_enable  (${BDF})`]);
      const sim = dev.device as SimDevice;
      const efd = dev.intxEventfd();
      expect(efd).toBeInstanceOf(EventFd);
      sim.raise('intx');
      expect(efd!.consume()).toBe(1n);
      sim.raise('intx');
      expect(efd!.consume()).toBe(0n); // automasked by the kernel until EOI
      expect(traceLines('vfio_intx_*', () => dev.intxEoi())).toEqual([`vfio_intx_eoi  (${BDF}) EOI`]);
      sim.raise('intx');
      expect(efd!.consume()).toBe(1n);
    } finally {
      dev.teardown();
    }
  });

  it('goes off while MSI-X is on and comes back after', () => {
    using dev = VfioPciDevice.realize(openSimDevice('sim:nvme'), BDF);
    const cap = dev.msix!.cap;
    const interrupts = (fn: () => void) =>
      traceLines('vfio_*', fn).filter((l) => /^vfio_(intx|msix)_/.test(l));
    const on = interrupts(() => dev.configWrite(cap + 2, 0x8000 | dev.configRead(cap + 2, 2), 2));
    expect(on).toEqual([`vfio_intx_disable  (${BDF})`, `vfio_msix_enable  (${BDF})`]);
    expect(dev.intxEventfd()).toBeNull();
    const off = interrupts(() => dev.configWrite(cap + 2, dev.configRead(cap + 2, 2) & ~0x8000, 2));
    expect(off).toEqual([`vfio_msix_disable  (${BDF})`, `vfio_intx_enable  (${BDF})`]);
    expect(dev.intxEventfd()).toBeInstanceOf(EventFd);
    // A function-mask change alone does not touch INTx.
    expect(
      traceLines('vfio_intx_*', () => dev.configWrite(cap + 2, dev.configRead(cap + 2, 2) | 0x4000, 2)),
    ).toEqual([]);
  });

  it('goes off while MSI is on (e1000e)', () => {
    using dev = VfioPciDevice.realize(openSimDevice('sim:e1000e'), '0000:00:04.0');
    expect(dev.intxEventfd()).toBeInstanceOf(EventFd);
    dev.configWrite(0xd2, dev.configRead(0xd2, 2) | 1, 2);
    expect(dev.msiEventfd(0)).toBeInstanceOf(EventFd);
    expect(dev.intxEventfd()).toBeNull();
    dev.configWrite(0xd2, dev.configRead(0xd2, 2) & ~1, 2);
    expect(dev.intxEventfd()).toBeInstanceOf(EventFd);
  });
});
