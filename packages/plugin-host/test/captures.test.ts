/**
 * Every built-in model with a capture presents config space, device, region
 * and IRQ info exactly as the real Linux 6.1 vfio-pci did (fixtures/).
 */
import { readFileSync } from 'node:fs';
import { regionIndexName } from '@vfio-ts/vfio-sys';
import { describe, expect, it } from 'vitest';
import { openSimDevice } from '../src/index.js';

interface CaptureJson {
  info: { flags: string; num_regions: number; num_irqs: number };
  regions: {
    index: number;
    flags?: string;
    flags_raw: number;
    size: number;
    offset?: string;
    caps: { id: number }[];
    error?: string;
  }[];
  irqs: { index: number; flags?: string; count?: number; error?: string }[];
}

const flagBits: Record<string, number> = {
  READ: 1,
  WRITE: 2,
  MMAP: 4,
  CAPS: 8,
  EVENTFD: 1,
  MASKABLE: 2,
  AUTOMASKED: 4,
  NORESIZE: 8,
  RESET: 1,
  PCI: 2,
};
const bits = (text: string) => (text === '0' ? 0 : text.split('|').reduce((a, f) => a | flagBits[f]!, 0));

describe.each(['nvme', 'e1000e', 'virtio-net'])('sim:%s against its capture', (name) => {
  const fixture = new URL(`./fixtures/${name}/`, import.meta.url);
  const capture = JSON.parse(readFileSync(new URL('vfio.json', fixture), 'utf8')) as CaptureJson;
  const config = readFileSync(new URL('vfio-config.bin', fixture));

  it('has the captured config space byte for byte', () => {
    using dev = openSimDevice(`sim:${name}`);
    expect(Buffer.from(dev.regionReadBlock(7, 0, config.length)).equals(config)).toBe(true);
  });

  it('has the captured device info', () => {
    using dev = openSimDevice(`sim:${name}`);
    expect(dev.deviceInfo()).toEqual({
      flags: bits(capture.info.flags),
      numRegions: capture.info.num_regions,
      numIrqs: capture.info.num_irqs,
    });
  });

  it('has the captured region info for every index (VGA failing with EINVAL)', () => {
    using dev = openSimDevice(`sim:${name}`);
    for (const r of capture.regions) {
      if (r.error) {
        expect(() => dev.regionInfo(r.index), regionIndexName(r.index)).toThrow(
          expect.objectContaining({ code: 'EINVAL' }),
        );
        continue;
      }
      const info = dev.regionInfo(r.index);
      expect(info.flags, regionIndexName(r.index)).toBe(r.flags_raw);
      expect(info.size, regionIndexName(r.index)).toBe(r.size);
      expect(info.fdOffset, regionIndexName(r.index)).toBe(Number(r.offset));
      expect(info.capabilities.map((c) => c.id)).toEqual(r.caps.map((c) => c.id));
    }
  });

  it('has the captured IRQ info (ERR failing with EINVAL on non-PCIe devices)', () => {
    using dev = openSimDevice(`sim:${name}`);
    for (const irq of capture.irqs) {
      if (irq.error)
        expect(() => dev.irqInfo(irq.index)).toThrow(expect.objectContaining({ code: 'EINVAL', errno: 22 }));
      else
        expect(dev.irqInfo(irq.index)).toEqual({
          index: irq.index,
          flags: bits(irq.flags!),
          count: irq.count,
        });
    }
  });
});
