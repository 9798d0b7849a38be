/** `vfio-ts inspect <device>`: what the kernel (or model) reports, and what realizing it did. */
import type { VfioPciDevice } from '@vfio-ts/pci-vfio';
import { type RegionCapability, SysError } from '@vfio-ts/vfio-sys';
import {
  deviceFlagNames,
  irqFlagNames,
  irqIndexName,
  regionCapabilityName,
  regionFlagNames,
  regionIndexName,
} from '@vfio-ts/vfio-sys/uapi';
import type { DeviceArg } from '../device-arg.js';
import { hex } from '../numbers.js';
import type { Output } from '../output.js';

export interface InspectReport {
  device: string;
  backend: 'kernel' | 'sim' | 'vfio-user';
  /** Kernel devices only: the VFIO interface used (group or cdev), the node opened and why. */
  iommu?: { interface: 'group' | 'cdev'; path: string; reason: string };
  vendor: number;
  deviceId: number;
  class: number;
  flags: string[];
  regions: {
    index: number;
    name: string;
    flags: string[];
    size: number;
    offset: number;
    caps: ({ id: number; name: string; version: number } & Record<string, unknown>)[];
    mmaps: { offset: number; size: number }[];
  }[];
  irqs: { index: number; name: string; count: number; flags: string[] }[];
  msix: null | {
    cap: number;
    tableBar: number;
    tableOffset: number;
    pbaBar: number;
    pbaOffset: number;
    entries: number;
    mappable: boolean;
    fixup: { offset: number; size: number }[] | null;
    relocatedFrom: { tableBar: number; tableOffset: number; pbaBar: number; pbaOffset: number } | null;
  };
  /** `address` is null for a BAR that is not mapped (never 0, which would look like an address). */
  bars: {
    index: number;
    type: 'io' | 'mem32' | 'mem64';
    prefetch: boolean;
    size: number;
    address: number | null;
  }[];
  quirks: { bar: number; name: string }[];
}

function capJson(c: RegionCapability): InspectReport['regions'][number]['caps'][number] {
  const base = { id: c.id, name: regionCapabilityName(c.id), version: c.version };
  if (c.kind === 'sparse-mmap')
    return { ...base, areas: c.areas.map((a) => ({ offset: a.offset, size: a.size })) };
  if (c.kind === 'type') return { ...base, type: c.type, subtype: c.subtype };
  if (c.kind === 'unknown') return { ...base, bytes: Buffer.from(c.bytes).toString('hex') };
  return base;
}

/** A region or IRQ index the device does not implement answers EINVAL: leave it out. */
function unlessInvalid<T>(fn: () => T): T | undefined {
  try {
    return fn();
  } catch (err) {
    if (err instanceof SysError && err.errnoName === 'EINVAL') return undefined;
    throw err;
  }
}

export function inspectReport(dev: VfioPciDevice, arg: DeviceArg): InspectReport {
  const io = dev.device;
  const info = io.deviceInfo();
  const regions: InspectReport['regions'] = [];
  for (let index = 0; index < info.numRegions; index++) {
    const r = unlessInvalid(() => io.regionInfo(index));
    if (!r) continue;
    const bar = index < 6 ? dev.bar(index) : undefined;
    regions.push({
      index,
      name: regionIndexName(index),
      flags: regionFlagNames(r.flags),
      size: r.size,
      offset: r.fdOffset ?? 0,
      caps: r.capabilities.map(capJson),
      mmaps: bar
        ? bar.region.mmaps.filter((a) => a.mapping !== null).map((a) => ({ offset: a.offset, size: a.size }))
        : [],
    });
  }
  const irqs: InspectReport['irqs'] = [];
  for (let index = 0; index < info.numIrqs; index++) {
    const q = unlessInvalid(() => io.irqInfo(index));
    if (q) irqs.push({ index, name: irqIndexName(index), count: q.count, flags: irqFlagNames(q.flags) });
  }
  const m = dev.msix;
  const iommu = arg.iommu?.() ?? null;
  return {
    device: arg.name,
    backend: arg.backend,
    ...(iommu ? { iommu: { ...iommu } } : {}),
    vendor: dev.vendorId,
    deviceId: dev.deviceId,
    class: dev.classCode,
    flags: deviceFlagNames(info.flags),
    regions,
    irqs,
    msix: m
      ? {
          cap: m.cap,
          tableBar: m.tableBar,
          tableOffset: m.tableOffset,
          pbaBar: m.pbaBar,
          pbaOffset: m.pbaOffset,
          entries: m.entries,
          mappable: m.mappable,
          fixup: m.fixup ? m.fixup.map((a) => ({ offset: a.offset, size: a.size })) : null,
          relocatedFrom: m.relocatedFrom ? { ...m.relocatedFrom } : null,
        }
      : null,
    bars: dev.bars.map((b) => ({
      index: b.index,
      type: b.kind,
      prefetch: b.prefetchable,
      size: b.size,
      address: b.address,
    })),
    quirks: dev.bars.flatMap((b) =>
      b.quirks.flatMap((q) => q.regions.map((r) => ({ bar: b.index, name: r.region.name }))),
    ),
  };
}

export function printInspect(report: InspectReport, out: Output): void {
  const id = `${report.vendor.toString(16).padStart(4, '0')}:${report.deviceId.toString(16).padStart(4, '0')}`;
  out.line(
    `${out.heading('Device')}  ${report.device}  backend ${report.backend}  ${id}  class ${report.class.toString(16).padStart(6, '0')}  flags ${report.flags.join(' ') || '-'}`,
  );
  if (report.iommu)
    out.line(
      `${out.heading('IOMMU')}  ${report.iommu.interface} interface  ${report.iommu.path}  (${report.iommu.reason})`,
    );
  out.line();
  out.line(out.heading('Regions'));
  out.table(
    ['index', 'name', 'flags', 'size', 'offset', 'caps', 'mmaps'],
    report.regions.map((r) => [
      String(r.index),
      r.name,
      r.flags.join(' ') || '-',
      hex(r.size),
      hex(r.offset),
      r.caps.map((c) => c.name).join(' ') || '-',
      r.mmaps.map((a) => `[${hex(a.offset)}-${hex(a.offset + a.size - 1)}]`).join(' ') || '-',
    ]),
  );
  out.line();
  out.line(out.heading('IRQs'));
  out.table(
    ['index', 'name', 'count', 'flags'],
    report.irqs.map((q) => [String(q.index), q.name, String(q.count), q.flags.join(' ')]),
  );
  out.line();
  out.line(out.heading('BARs'));
  out.table(
    ['bar', 'type', 'prefetch', 'size', 'address'],
    report.bars.map((b) => [
      String(b.index),
      b.type,
      b.prefetch ? 'yes' : 'no',
      hex(b.size),
      b.address === null ? 'unmapped' : hex(b.address, 8),
    ]),
  );
  out.line();
  const m = report.msix;
  if (m) {
    out.line(
      `${out.heading('MSI-X')}  cap @${hex(m.cap)}  ${m.entries} entries  table BAR ${m.tableBar} +${hex(m.tableOffset)}  PBA BAR ${m.pbaBar} +${hex(m.pbaOffset)}`,
    );
    const from = m.relocatedFrom;
    if (from)
      out.line(
        `       relocated (x-msix-relocation) from table BAR ${from.tableBar} +${hex(from.tableOffset)}  PBA BAR ${from.pbaBar} +${hex(from.pbaOffset)}`,
      );
    out.line(
      `       BAR ${from?.tableBar ?? m.tableBar} ${m.mappable ? `is MSIX_MAPPABLE: mapped whole${from ? '' : ', table emulated on top'}` : 'is not MSIX_MAPPABLE'}`,
    );
    if (m.fixup)
      out.line(
        `       fixup: ${m.fixup.length === 0 ? 'no mmaps left' : m.fixup.map((a) => `[${hex(a.offset)}-${hex(a.offset + a.size)})`).join(' ')}`,
      );
  } else {
    out.line(`${out.heading('MSI-X')}  none`);
  }
  out.line();
  out.line(`${out.heading('Quirks')}  ${report.quirks.length === 0 ? 'none' : ''}`);
  for (const q of report.quirks) out.line(`  BAR ${q.bar}  ${q.name}`);
}
