// Masked MSI-X vectors keep their interrupts: pending in the PBA, re-asserted on unmask.
import { openSimDevice, type SimDevice } from '@vfio-ts/plugin-host';
import { resourceCounts, settle, traceLines } from '@vfio-ts/test-support';
import { describe, expect, it } from 'vitest';
import { VfioPciDevice } from '../src/index.js';

const BDF = '0000:00:03.0';

/** nvme with MSI-X enabled and vectors 0 and 1 unmasked (in our table and in the model's own). */
function enabled() {
  const dev = VfioPciDevice.realize(openSimDevice('sim:nvme'), BDF);
  const sim = dev.device as SimDevice;
  const a = dev.bar(0)!.address!;
  dev.configWrite(0x04, dev.configRead(0x04, 2) | 4, 2);
  dev.memory.write(a + 0x200c, 0, 4);
  dev.memory.write(a + 0x201c, 0, 4);
  const cap = dev.msix!.cap;
  dev.configWrite(cap + 2, 0x8000 | dev.configRead(cap + 2, 2), 2);
  const map = sim.regionMmap(0, 0, 0x4000, { read: true, write: true });
  map.write(0x200c, 0, 4); // a real device has these written by the kernel
  map.write(0x201c, 0, 4);
  map.unmap();
  return {
    dev,
    sim,
    mask: (on: boolean, vector = 0) => dev.memory.write(a + 0x200c + 16 * vector, on ? 1 : 0, 4),
    pba: () => dev.memory.read(a + 0x3000, 4),
  };
}

describe('MSI-X pending bits', () => {
  it('an interrupt on a masked vector is pending in the PBA and delivered on unmask, on the same eventfd', () => {
    const { dev, sim, mask, pba } = enabled();
    try {
      const efd = dev.msixEventfd(0);
      mask(true);
      expect(dev.msixEventfd(0)).toBeNull();
      expect(dev.msixMaskedEventfds()).toHaveLength(1); // vector 1 is still in use
      sim.raise('msix', 0);
      expect(efd!.consume()).toBe(0n); // masked: not delivered
      let fresh = 0;
      const on = traceLines('vfio_msix_pba_*', () => {
        fresh = dev.serviceMsix();
      });
      expect(fresh).toBe(1);
      expect(on).toEqual([`vfio_msix_pba_enable  (${BDF})`]);
      expect(dev.bar(0)!.base.subregions.find((r) => r.name === 'msix-pba')!.enabled).toBe(true);
      expect(pba()).toBe(1);
      const off = traceLines('vfio_msix_*', () => mask(false));
      expect(off).toEqual([
        `vfio_msix_vector_do_use  (${BDF}) vector 0 used`,
        `vfio_msix_pba_disable  (${BDF})`,
      ]);
      expect(dev.msixEventfd(0)).toBe(efd);
      expect(efd!.consume()).toBe(1n); // re-asserted
      expect(pba()).toBe(0);
    } finally {
      dev.teardown();
    }
  });

  it('nothing is lost without servicing: unmasking alone delivers what fired while masked', () => {
    const { dev, sim, mask } = enabled();
    try {
      const efd = dev.msixEventfd(0);
      mask(true);
      sim.raise('msix', 0);
      sim.raise('msix', 0);
      mask(false);
      expect(efd!.consume()).toBe(1n); // one re-assertion, like a pending bit
      sim.raise('msix', 0);
      expect(efd!.consume()).toBe(1n); // and delivered directly again
      mask(true);
      mask(false);
      expect(efd!.consume()).toBe(0n); // nothing fired: nothing re-asserted
    } finally {
      dev.teardown();
    }
  });

  it('a PBA read services the masked vectors itself once the region is enabled', () => {
    const { dev, sim, mask, pba } = enabled();
    try {
      mask(true, 0);
      mask(true, 1);
      sim.raise('msix', 0);
      expect(dev.serviceMsix()).toBe(1); // vector 0 pending, the PBA region enabled
      sim.raise('msix', 1); // not serviced by anyone...
      expect(pba()).toBe(0b11); // ...but the read services it
      expect(dev.serviceMsix()).toBe(0);
    } finally {
      dev.teardown();
    }
  });

  it('disabling MSI-X clears pending state and releases every eventfd', async () => {
    await settle();
    const before = resourceCounts();
    {
      const { dev, sim, mask } = enabled();
      mask(true);
      sim.raise('msix', 0);
      dev.serviceMsix();
      const cap = dev.msix!.cap;
      dev.configWrite(cap + 2, dev.configRead(cap + 2, 2) & ~0x8000, 2);
      expect(dev.msixMaskedEventfds()).toEqual([]);
      expect(dev.bar(0)!.base.subregions.find((r) => r.name === 'msix-pba')!.enabled).toBe(false);
      dev.teardown();
    }
    await settle();
    expect(resourceCounts()).toEqual(before);
  });
});
