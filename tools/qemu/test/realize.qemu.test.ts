/**
 * QEMU 11.1 realizes every built-in model served by `vfio-ts serve` (with -S:
 * no firmware runs): query-pci/info pci show the IDs, class and BARs the
 * model declares; QEMU's trace shows the version negotiation, region info of
 * every BAR and of config space, each mappable region mapped through the fd
 * the server passed (`vfio_region_mmap ... mmaps[i]`), and the interrupt
 * set-up; QEMU logs no error or warning.
 */

import { expectNoLeaksInFile } from '@vfio-ts/test-support';
import { VFIO_DEVICE_FLAGS_RESET, VFIO_REGION_INFO_FLAG_MMAP } from '@vfio-ts/vfio-sys/uapi';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEVICE_ID, type QemuRunResult, runQemu } from '../src/index.js';
import { explained } from './explained.js';
import { declared, inProcess, MODEL_NAMES } from './models.js';

expectNoLeaksInFile();

interface PciRegion {
  bar: number;
  type: 'io' | 'memory';
  size: number;
  address: number;
  prefetch?: boolean;
  mem_type_64?: boolean;
}
interface PciDevice {
  qdev_id: string;
  irq_pin: number;
  class_info: { class: number };
  id: { vendor: number; device: number; 'subsystem-vendor': number; subsystem: number };
  regions: PciRegion[];
}

const hex = (n: number, width = 4) => n.toString(16).padStart(width, '0');

describe.each(MODEL_NAMES)('sim:%s realized by QEMU 11.1 (-S)', (name) => {
  const d = declared(name);
  let r: QemuRunResult & { cleanup(): void };
  let pci: PciDevice;
  beforeAll(async () => {
    r = await explained(
      runQemu({
        device: `sim:${name}`,
        firmware: 'none',
        hmp: ['info pci'],
        timeoutSeconds: 90,
        monitor: async (qmp) => {
          const buses = (await qmp.execute('query-pci')) as { devices: PciDevice[] }[];
          pci = buses.flatMap((b) => b.devices).find((x) => x.qdev_id === DEVICE_ID)!;
        },
      }),
    );
  }, 120_000);
  afterAll(() => r?.cleanup());

  it('query-pci and info pci show the IDs, class and interrupt pin the model declares', () => {
    expect(pci.id).toEqual({
      vendor: d.vendor,
      device: d.device,
      'subsystem-vendor': d.subsystemVendor,
      subsystem: d.subsystem,
    });
    expect(pci.class_info.class).toBe(d.pciClass);
    expect(pci.irq_pin).toBe(d.interruptPin);
    expect(r.hmp[0]!.output).toContain(`PCI device ${hex(d.vendor)}:${hex(d.device)}`);
  });

  it('query-pci shows exactly the declared BARs (kind, size, 64-bit, prefetchable) and the ROM', () => {
    const bars = pci.regions.filter((x) => x.bar < 6);
    expect(bars.map((x) => x.bar)).toEqual(d.bars.map((b) => b.index));
    for (const b of d.bars) {
      const q = bars.find((x) => x.bar === b.index)!;
      expect(q.size, `BAR${b.index} size`).toBe(b.size);
      expect(q.type).toBe(b.kind === 'io' ? 'io' : 'memory');
      if (b.kind !== 'io') {
        expect(q.mem_type_64, `BAR${b.index} 64-bit`).toBe(b.kind === 'mem64');
        expect(q.prefetch, `BAR${b.index} prefetchable`).toBe(b.prefetchable);
      }
    }
    const rom = pci.regions.find((x) => x.bar === 6);
    expect(rom?.size ?? 0).toBe(d.romSize);
  });

  it('the trace shows version negotiation and region info of every BAR and of config space', () => {
    const versions = r.trace.match(/^vfio_user_version .*$/gm) ?? [];
    expect(versions).toHaveLength(2); // QEMU's proposal, then the server's reply
    expect(versions[1]).toMatch(/major 0 minor 0 caps: \{"capabilities":\{.*"pgsizes":4096/);
    for (const b of d.bars) {
      expect(r.trace).toMatch(
        new RegExp(
          `^vfio_user_get_region_info\\s+index ${b.index} flags 0x[0-9a-f]+ size 0x${b.size.toString(16)}$`,
          'm',
        ),
      );
    }
    expect(r.trace).toMatch(
      new RegExp(`^vfio_user_get_region_info\\s+index 7 flags 0x3 size 0x${d.configSize.toString(16)}$`, 'm'),
    );
    for (const cmd of ['VERSION', 'DEVICE_GET_INFO', 'DEVICE_GET_REGION_INFO', 'REGION_READ']) {
      expect(r.serverOutput).toMatch(new RegExp(`vfio_server_request id 0x[0-9a-f]+ ${cmd} `));
    }
  });

  it('every region the server offers for mmap is mapped by QEMU through the passed fd (mmaps[i])', () => {
    using dev = inProcess(name);
    let mappable = 0;
    for (const b of d.bars) {
      const info = dev.regionInfo(b.index);
      if ((info.flags & VFIO_REGION_INFO_FLAG_MMAP) === 0) {
        expect(r.trace).not.toMatch(new RegExp(`^vfio_region_mmap Region \\S+ BAR ${b.index} `, 'm'));
        continue;
      }
      mappable++;
      const sparse = info.capabilities.find((c) => c.kind === 'sparse-mmap');
      const areas = sparse ? sparse.areas.length : 1;
      const maps = r.trace.match(
        new RegExp(`^vfio_region_mmap Region \\S+ BAR ${b.index} mmaps\\[\\d+\\] .*$`, 'gm'),
      );
      expect(maps?.length, `BAR${b.index}: ${maps?.join(' | ')}`).toBe(areas);
    }
    if (mappable > 0)
      expect(r.serverOutput).toMatch(/DEVICE_GET_REGION_INFO size 0x[0-9a-f]+ flags 0x0 fds 0/);
  });

  it('sets up the interrupts the model has: INTx eventfd, MSI and MSI-X capabilities', () => {
    using dev = inProcess(name);
    if (d.interruptPin !== 0) {
      expect(r.trace).toMatch(/^vfio_user_set_irqs\s+index 0 start 0 count 1 flags 0x24$/m); // EVENTFD|TRIGGER
      expect(r.trace).toMatch(/^vfio_intx_enable /m);
      expect(r.serverOutput).toMatch(/DEVICE_SET_IRQS size 0x[0-9a-f]+ flags 0x0 fds 1/);
    }
    const msix = dev.irqInfo(2).count;
    if (msix > 0) expect(r.trace).toMatch(new RegExp(`^vfio_msix_early_setup .* entries ${msix}, `, 'm'));
    else expect(r.trace).not.toMatch(/^vfio_msix_early_setup /m);
    if (dev.irqInfo(1).count > 0) expect(r.trace).toMatch(/^vfio_msi_setup /m);
    else expect(r.trace).not.toMatch(/^vfio_msi_setup /m);
    // QEMU resets the machine once at start: a device that can reset gets DEVICE_RESET.
    const canReset = (dev.deviceInfo().flags & VFIO_DEVICE_FLAGS_RESET) !== 0;
    expect(/DEVICE_RESET/.test(r.serverOutput)).toBe(canReset);
  });

  it('QEMU logs no error or warning, and QEMU and the server exit 0', () => {
    expect(r.qemuStderr).toBe('');
    // QEMU asks for the ERR index's info; a conventional PCI device has none and,
    // as Linux vfio-pci does, answers EINVAL (QEMU then goes on without it).
    const errors = (r.serverOutput.match(/^vfio_server_error .*$/gm) ?? []).filter(
      (l) => !/DEVICE_GET_IRQ_INFO errno 22: .*ERR index on a non-PCIe device/.test(l),
    );
    expect(errors).toEqual([]);
    expect(r.qemuExit).toEqual({ code: 0, signal: null });
    expect(r.serverExit).toEqual({ code: 0, signal: null });
  });
});
