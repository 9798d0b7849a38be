// MSI through the emulated capability: enable and vector count drive SET_IRQS.
import diagnosticsChannel from 'node:diagnostics_channel';
import { openSimDevice, type SimDevice } from '@vfio-ts/plugin-host';
import { resourceCounts, settle, traceLines } from '@vfio-ts/test-support';
import { EventFd } from '@vfio-ts/vfio-sys';
import { describe, expect, it } from 'vitest';
import { VfioPciDevice } from '../src/index.js';

const BDF = '0000:00:04.0';
const MSI_CAP = 0xd0; // e1000e's, from the capture

describe('MSI', () => {
  it('e1000e: enabling MSI in config space enables it in the device with an eventfd per vector, traced', () => {
    let dev!: VfioPciDevice;
    const setup = traceLines('vfio_msi_*', () => {
      dev = VfioPciDevice.realize(openSimDevice('sim:e1000e'), BDF);
    });
    try {
      expect(setup).toEqual([`vfio_msi_setup ${BDF} PCI MSI CAP @0x${MSI_CAP.toString(16)}`]);
      const sim = dev.device as SimDevice;
      dev.configWrite(0x04, dev.configRead(0x04, 2) | 4, 2); // bus master
      dev.configWrite(MSI_CAP + 4, 0xfee00000, 4); // message address
      const flags = dev.configRead(MSI_CAP + 2, 2);
      const on = traceLines('vfio_msi_*', () => dev.configWrite(MSI_CAP + 2, flags | 1, 2));
      expect(on).toEqual([`vfio_msi_enable  (${BDF}) Enabled 1 MSI vectors`]);
      expect(dev.configRead(MSI_CAP + 2, 2) & 1).toBe(1); // the driver reads back what it wrote
      const efd = dev.msiEventfd(0);
      expect(efd).toBeInstanceOf(EventFd);
      expect(dev.msiEventfd(1)).toBeNull();
      sim.raise('msi', 0);
      expect(efd!.consume()).toBe(1n);
      const off = traceLines('vfio_msi_*', () => dev.configWrite(MSI_CAP + 2, flags & ~1, 2));
      expect(off).toEqual([`vfio_msi_disable  (${BDF})`]);
      expect(dev.msiEventfd(0)).toBeNull();
    } finally {
      dev.teardown();
    }
  });

  it('writes elsewhere in the capability do not toggle it; teardown releases the eventfds', async () => {
    await settle();
    const before = resourceCounts();
    {
      using dev = VfioPciDevice.realize(openSimDevice('sim:e1000e'), BDF);
      dev.configWrite(0x04, dev.configRead(0x04, 2) | 4, 2);
      dev.configWrite(MSI_CAP + 2, dev.configRead(MSI_CAP + 2, 2) | 1, 2);
      const efd = dev.msiEventfd(0);
      dev.configWrite(MSI_CAP + 0xc, 0x4041, 2); // message data
      expect(dev.msiEventfd(0)).toBe(efd);
    }
    await settle();
    expect(resourceCounts()).toEqual(before);
  });

  it('refused by the device (MSI-X is on) it is reported and stays off', () => {
    using dev = VfioPciDevice.realize(openSimDevice('sim:e1000e'), BDF);
    const reports: string[] = [];
    const fn = (m: unknown) => reports.push(String(m));
    diagnosticsChannel.subscribe('vfio-ts:error-report', fn);
    try {
      const msixCap = dev.msix!.cap;
      dev.configWrite(msixCap + 2, dev.configRead(msixCap + 2, 2) | 0x8000, 2); // MSI-X enable
      dev.configWrite(MSI_CAP + 2, dev.configRead(MSI_CAP + 2, 2) | 1, 2);
    } finally {
      diagnosticsChannel.unsubscribe('vfio-ts:error-report', fn);
    }
    expect(dev.msiEventfd(0)).toBeNull();
    expect(reports.join('\n')).toMatch(/Failed to enable MSI on 0000:00:04.0: .*EINVAL/);
  });
});
