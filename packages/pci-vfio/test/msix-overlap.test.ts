// msix_init's sanity test: an MSI-X table and PBA that share bytes of one BAR
// are refused for any backend (here a model that reports such a layout, as a
// broken device or a vfio-user server could), with nothing left behind.
import { ConfigBuilder, type DeviceModel, type ModelBar, SimDevice } from '@vfio-ts/plugin-host';
import { resourceCounts, settle } from '@vfio-ts/test-support';
import { describe, expect, it } from 'vitest';
import { VfioPciDevice, type VfioPciOptions } from '../src/index.js';

const BDF = '0000:00:05.0';
const BARS: ModelBar[] = [
  { index: 0, size: 0x4000, kind: 'mem32', prefetchable: false },
  { index: 1, size: 0x1000, kind: 'mem32', prefetchable: false },
];

/** A device whose MSI-X capability places `vectors` (16 bytes of table and a PBA bit each) as given. */
function msixDevice(
  tableBar: number,
  tableOffset: number,
  pbaBar: number,
  pbaOffset: number,
  vectors = 8,
): SimDevice {
  const model: DeviceModel = {
    name: 'msix-layout',
    config: new ConfigBuilder()
      .msix({ vectors, tableBar, tableOffset, pbaBar, pbaOffset })
      .build({ vendor: 0x1234, device: 0x0004, classCode: 0xff0000 }, BARS),
    bars: BARS,
  };
  return new SimDevice(model, 'sim:msix-layout');
}

const realize = (dev: SimDevice, options: VfioPciOptions = {}) => VfioPciDevice.realize(dev, BDF, options);

describe('MSI-X table and PBA overlap (msix_init)', () => {
  it.each([
    ['the PBA inside the table', 0x1000, 0x1040, 8],
    ['the PBA on the table’s last bytes', 0x1000, 0x1078, 8],
    ['the table starting inside the PBA (128 vectors: 16 bytes of PBA)', 0x1008, 0x1000, 128],
    ['both at the same offset', 0x2000, 0x2000, 8],
  ])('refuses %s, naming both extents, and leaks nothing', async (_what, tableOffset, pbaOffset, vectors) => {
    const before = resourceCounts();
    const dev = msixDevice(0, tableOffset, 0, pbaOffset, vectors);
    const hex = (n: number) => `0x${n.toString(16)}`;
    expect(() => realize(dev)).toThrow(
      expect.objectContaining({
        code: 'ERR_VFIO_PCI_MSIX_LAYOUT',
        message: expect.stringMatching(
          new RegExp(
            `^${BDF}: MSI-X table \\(${vectors} entries, ${hex(vectors * 16)} bytes at ${hex(tableOffset)}\\) and PBA \\(${hex(Math.ceil(vectors / 64) * 8)} bytes at ${hex(pbaOffset)}\\) overlap in BAR 0`,
          ),
        ),
      }),
    );
    dev.close();
    await settle();
    expect(resourceCounts()).toEqual(before);
  });

  it.each([
    ['the PBA right after the table', 0, 0x1000, 0, 0x1080],
    ['the PBA right before the table', 0, 0x1008, 0, 0x1000],
    ['the same offsets in different BARs', 0, 0x0, 1, 0x0],
  ])('accepts %s', (_what, tableBar, tableOffset, pbaBar, pbaOffset) => {
    using pci = realize(msixDevice(tableBar, tableOffset, pbaBar, pbaOffset));
    expect(pci.msix).toMatchObject({ tableBar, tableOffset, pbaBar, pbaOffset, entries: 8 });
  });

  it('checks the layout msix_init is given: relocated structures are apart, so relocation is accepted (as in QEMU)', () => {
    using pci = realize(msixDevice(0, 0x1000, 0, 0x1040), { 'x-msix-relocation': 'bar2' });
    expect(pci.msix).toMatchObject({ tableBar: 2, tableOffset: 0, pbaBar: 2, pbaOffset: 0x80 });
  });
});
