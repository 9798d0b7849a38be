import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  findPciCapability,
  findPciExtCapability,
  PCI_CAP_ID_EXP,
  PCI_CAP_ID_MSI,
  PCI_CAP_ID_MSIX,
  PCI_CAP_ID_PM,
  PCI_CAPABILITY_LIST,
  PCI_EXT_CAP_ID_DSN,
  PCI_EXT_CAP_ID_ERR,
  PCI_STATUS,
  PCI_STATUS_CAP_LIST,
  pciCapabilities,
  pciExtCapabilities,
} from '../src/uapi/index.js';

/** A config space with the capability list bit and entries at the given offsets (id, next). */
function configWith(entries: [offset: number, id: number, next: number][], first: number): Uint8Array {
  const c = new Uint8Array(256);
  c[PCI_STATUS] = PCI_STATUS_CAP_LIST;
  c[PCI_CAPABILITY_LIST] = first;
  for (const [offset, id, next] of entries) {
    c[offset] = id;
    c[offset + 1] = next;
  }
  return c;
}

describe('the standard capability list', () => {
  it('is walked in list order, the low two bits of each pointer ignored', () => {
    const c = configWith(
      [
        [0x40, PCI_CAP_ID_PM, 0x50 | 3],
        [0x50, PCI_CAP_ID_MSI, 0x70],
        [0x70, PCI_CAP_ID_MSIX, 0],
      ],
      0x40,
    );
    expect(pciCapabilities(c)).toEqual([
      { id: PCI_CAP_ID_PM, offset: 0x40 },
      { id: PCI_CAP_ID_MSI, offset: 0x50 },
      { id: PCI_CAP_ID_MSIX, offset: 0x70 },
    ]);
    expect(findPciCapability(c, PCI_CAP_ID_MSIX)).toBe(0x70);
    expect(findPciCapability(c, PCI_CAP_ID_EXP)).toBeUndefined();
  });

  it('is empty when the status register has no capability list', () => {
    const c = configWith([[0x40, PCI_CAP_ID_PM, 0]], 0x40);
    c[PCI_STATUS] = 0;
    expect(pciCapabilities(c)).toEqual([]);
  });

  it('ends at a loop, at a pointer into the header and at the end of the given bytes', () => {
    const loop = configWith(
      [
        [0x40, PCI_CAP_ID_PM, 0x50],
        [0x50, PCI_CAP_ID_MSI, 0x40],
      ],
      0x40,
    );
    expect(pciCapabilities(loop).map((x) => x.offset)).toEqual([0x40, 0x50]);
    const intoHeader = configWith([[0x40, PCI_CAP_ID_PM, 0x10]], 0x40);
    expect(pciCapabilities(intoHeader)).toHaveLength(1);
    expect(pciCapabilities(intoHeader.subarray(0, 0x41))).toEqual([]);
  });

  it('never reads out of bounds, throws or runs long on any bytes (fuzz)', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 0, maxLength: 4096 }), (bytes) => {
        const caps = pciCapabilities(bytes);
        expect(caps.length).toBeLessThanOrEqual(48);
        for (const cap of caps) expect(cap.offset + 1).toBeLessThan(Math.min(bytes.length, 256));
        const ext = pciExtCapabilities(bytes);
        expect(ext.length).toBeLessThanOrEqual(480);
        for (const cap of ext) expect(cap.offset + 4).toBeLessThanOrEqual(4096);
      }),
      { numRuns: 2000 },
    );
  });
});

describe('the extended capability list', () => {
  it('walks e1000e as Linux vfio-pci presents it: AER then DSN (capture from /work/shared/reference)', () => {
    // The same bytes the plugin-host's e1000e model is tested against: AER v2 at 0x100, DSN at 0x140.
    const c = new Uint8Array(4096);
    new DataView(c.buffer).setUint32(0x100, (0x140 << 20) | (2 << 16) | PCI_EXT_CAP_ID_ERR, true);
    new DataView(c.buffer).setUint32(0x140, (1 << 16) | PCI_EXT_CAP_ID_DSN, true);
    expect(pciExtCapabilities(c)).toEqual([
      { id: PCI_EXT_CAP_ID_ERR, version: 2, offset: 0x100 },
      { id: PCI_EXT_CAP_ID_DSN, version: 1, offset: 0x140 },
    ]);
    expect(findPciExtCapability(c, PCI_EXT_CAP_ID_DSN)).toBe(0x140);
  });

  it('is empty on a 256-byte space, on a zero header and on all ones (a device that is gone)', () => {
    expect(pciExtCapabilities(new Uint8Array(256))).toEqual([]);
    expect(pciExtCapabilities(new Uint8Array(4096))).toEqual([]);
    expect(pciExtCapabilities(new Uint8Array(4096).fill(0xff))).toEqual([]);
  });

  it('ends at a loop and at a next pointer below 0x100', () => {
    const c = new Uint8Array(4096);
    const dv = new DataView(c.buffer);
    dv.setUint32(0x100, (0x200 << 20) | (1 << 16) | PCI_EXT_CAP_ID_ERR, true);
    dv.setUint32(0x200, (0x100 << 20) | (1 << 16) | PCI_EXT_CAP_ID_DSN, true);
    expect(pciExtCapabilities(c).map((x) => x.offset)).toEqual([0x100, 0x200]);
    dv.setUint32(0x200, (0x40 << 20) | (1 << 16) | PCI_EXT_CAP_ID_DSN, true);
    expect(pciExtCapabilities(c).map((x) => x.offset)).toEqual([0x100, 0x200]);
  });
});
