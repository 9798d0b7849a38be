/**
 * `vfio-ts config <device>`: config space as `lspci -vv -xxx` shows it, as
 * the driver of the realized device sees it (vfio-ts's emulated fields laid
 * over the device's): the header, the decoded capability and extended
 * capability lists, the bytes vfio-ts virtualizes (emulates instead of
 * passing through), and a hex dump in lspci's format (`-x`: the 256 standard
 * bytes; `--extended`: the whole space, as `-xxxx`).
 */
import type { VfioPciDevice } from '@vfio-ts/pci-vfio';
import {
  PCI_BASE_ADDRESS_0,
  PCI_BASE_ADDRESS_5,
  PCI_CAP_FLAGS,
  PCI_CAP_ID_AF,
  PCI_CAP_ID_AGP,
  PCI_CAP_ID_AGP3,
  PCI_CAP_ID_CCRC,
  PCI_CAP_ID_CHSWP,
  PCI_CAP_ID_DBG,
  PCI_CAP_ID_EA,
  PCI_CAP_ID_EXP,
  PCI_CAP_ID_HT,
  PCI_CAP_ID_MSI,
  PCI_CAP_ID_MSIX,
  PCI_CAP_ID_PCIX,
  PCI_CAP_ID_PM,
  PCI_CAP_ID_SATA,
  PCI_CAP_ID_SECDEV,
  PCI_CAP_ID_SHPC,
  PCI_CAP_ID_SLOTID,
  PCI_CAP_ID_SSVID,
  PCI_CAP_ID_VNDR,
  PCI_CAP_ID_VPD,
  PCI_CFG_SPACE_SIZE,
  PCI_COMMAND,
  PCI_COMMAND_INTX_DISABLE,
  PCI_COMMAND_IO,
  PCI_COMMAND_MASTER,
  PCI_COMMAND_MEMORY,
  PCI_EXP_FLAGS,
  PCI_EXP_FLAGS_TYPE,
  PCI_EXP_FLAGS_VERS,
  PCI_EXP_TYPE_ENDPOINT,
  PCI_EXP_TYPE_LEG_END,
  PCI_EXP_TYPE_RC_END,
  PCI_EXT_CAP_ID_ACS,
  PCI_EXT_CAP_ID_ARI,
  PCI_EXT_CAP_ID_ATS,
  PCI_EXT_CAP_ID_DLF,
  PCI_EXT_CAP_ID_DOE,
  PCI_EXT_CAP_ID_DPC,
  PCI_EXT_CAP_ID_DSN,
  PCI_EXT_CAP_ID_DVSEC,
  PCI_EXT_CAP_ID_ERR,
  PCI_EXT_CAP_ID_L1SS,
  PCI_EXT_CAP_ID_LTR,
  PCI_EXT_CAP_ID_MCAST,
  PCI_EXT_CAP_ID_PASID,
  PCI_EXT_CAP_ID_PL_16GT,
  PCI_EXT_CAP_ID_PRI,
  PCI_EXT_CAP_ID_PTM,
  PCI_EXT_CAP_ID_PWR,
  PCI_EXT_CAP_ID_REBAR,
  PCI_EXT_CAP_ID_SECPCI,
  PCI_EXT_CAP_ID_SRIOV,
  PCI_EXT_CAP_ID_TPH,
  PCI_EXT_CAP_ID_VC,
  PCI_EXT_CAP_ID_VC9,
  PCI_EXT_CAP_ID_VNDR,
  PCI_INTERRUPT_PIN,
  PCI_MSI_FLAGS,
  PCI_MSI_FLAGS_64BIT,
  PCI_MSI_FLAGS_ENABLE,
  PCI_MSI_FLAGS_MASKBIT,
  PCI_MSI_FLAGS_QMASK,
  PCI_MSI_FLAGS_QSIZE,
  PCI_MSIX_FLAGS,
  PCI_MSIX_FLAGS_ENABLE,
  PCI_MSIX_FLAGS_MASKALL,
  PCI_MSIX_FLAGS_QSIZE,
  PCI_MSIX_PBA,
  PCI_MSIX_TABLE,
  PCI_MSIX_TABLE_BIR,
  PCI_MSIX_TABLE_OFFSET,
  PCI_REVISION_ID,
  PCI_ROM_ADDRESS,
  PCI_STATUS,
  PCI_STATUS_CAP_LIST,
  PCI_STATUS_INTERRUPT,
  pciCapabilities,
  pciExtCapabilities,
} from '@vfio-ts/vfio-sys/uapi';
import type { DeviceArg } from '../device-arg.js';
import { hex } from '../numbers.js';
import type { Output } from '../output.js';

/** Capability names as lspci prints them (ls-caps.c, ls-ecaps.c). */
const CAP_NAMES: Readonly<Record<number, string>> = {
  [PCI_CAP_ID_PM]: 'Power Management',
  [PCI_CAP_ID_AGP]: 'AGP',
  [PCI_CAP_ID_VPD]: 'Vital Product Data',
  [PCI_CAP_ID_SLOTID]: 'Slot ID',
  [PCI_CAP_ID_MSI]: 'MSI',
  [PCI_CAP_ID_CHSWP]: 'CompactPCI hot-swap',
  [PCI_CAP_ID_PCIX]: 'PCI-X',
  [PCI_CAP_ID_HT]: 'HyperTransport',
  [PCI_CAP_ID_VNDR]: 'Vendor Specific Information',
  [PCI_CAP_ID_DBG]: 'Debug port',
  [PCI_CAP_ID_CCRC]: 'CompactPCI central resource control',
  [PCI_CAP_ID_SHPC]: 'Hot-plug capable',
  [PCI_CAP_ID_SSVID]: 'Subsystem',
  [PCI_CAP_ID_AGP3]: 'AGP3',
  [PCI_CAP_ID_SECDEV]: 'Secure device',
  [PCI_CAP_ID_EXP]: 'Express',
  [PCI_CAP_ID_MSIX]: 'MSI-X',
  [PCI_CAP_ID_SATA]: 'SATA HBA',
  [PCI_CAP_ID_AF]: 'PCI Advanced Features',
  [PCI_CAP_ID_EA]: 'Enhanced Allocation',
};

const EXT_CAP_NAMES: Readonly<Record<number, string>> = {
  [PCI_EXT_CAP_ID_ERR]: 'Advanced Error Reporting',
  [PCI_EXT_CAP_ID_VC]: 'Virtual Channel',
  [PCI_EXT_CAP_ID_DSN]: 'Device Serial Number',
  [PCI_EXT_CAP_ID_PWR]: 'Power Budgeting',
  [PCI_EXT_CAP_ID_VC9]: 'Virtual Channel',
  [PCI_EXT_CAP_ID_VNDR]: 'Vendor Specific Information',
  [PCI_EXT_CAP_ID_ACS]: 'Access Control Services',
  [PCI_EXT_CAP_ID_ARI]: 'Alternative Routing-ID Interpretation (ARI)',
  [PCI_EXT_CAP_ID_ATS]: 'Address Translation Service (ATS)',
  [PCI_EXT_CAP_ID_SRIOV]: 'Single Root I/O Virtualization (SR-IOV)',
  [PCI_EXT_CAP_ID_MCAST]: 'Multicast',
  [PCI_EXT_CAP_ID_PRI]: 'Page Request Interface (PRI)',
  [PCI_EXT_CAP_ID_REBAR]: 'Physical Resizable BAR',
  [PCI_EXT_CAP_ID_TPH]: 'Transaction Processing Hints',
  [PCI_EXT_CAP_ID_LTR]: 'Latency Tolerance Reporting',
  [PCI_EXT_CAP_ID_SECPCI]: 'Secondary PCI Express',
  [PCI_EXT_CAP_ID_PASID]: 'Process Address Space ID (PASID)',
  [PCI_EXT_CAP_ID_DPC]: 'Downstream Port Containment',
  [PCI_EXT_CAP_ID_L1SS]: 'L1 PM Substates',
  [PCI_EXT_CAP_ID_PTM]: 'Precision Time Measurement',
  [PCI_EXT_CAP_ID_DVSEC]: 'Designated Vendor-Specific',
  [PCI_EXT_CAP_ID_DLF]: 'Data Link Feature',
  [PCI_EXT_CAP_ID_PL_16GT]: 'Physical Layer 16.0 GT/s',
  [PCI_EXT_CAP_ID_DOE]: 'Data Object Exchange',
};

export interface ConfigSpaceReport {
  device: string;
  /** Bytes of config space the device has (256, or 4096 for PCI Express). */
  size: number;
  /** The whole space as the driver sees it, hex, two digits a byte. */
  bytes: string;
  /** Per byte, which bits vfio-ts emulates instead of passing through (same layout as `bytes`). */
  emulatedBits: string;
  /** Runs of bytes with emulated bits, named by the field they belong to. */
  /** Runs of bytes with emulated bits; `mask` is their emulated bits, hex, two digits a byte. */
  virtualized: { offset: number; length: number; mask: string; field: string }[];
  /** `summary` and `details` are lspci -vv's line and sub-lines for it. */
  capabilities: {
    offset: number;
    id: number;
    name: string;
    summary: string;
    details: string[];
    virtualized: boolean;
  }[];
  extendedCapabilities: { offset: number; id: number; version: number; name: string; virtualized: boolean }[];
}

const u16 = (b: Uint8Array, o: number) => b[o]! | (b[o + 1]! << 8);
const u32 = (b: Uint8Array, o: number) =>
  (b[o]! | (b[o + 1]! << 8) | (b[o + 2]! << 16) | (b[o + 3]! << 24)) >>> 0;
const flag = (on: boolean) => (on ? '+' : '-');

/** Reads config space through the device's emulation, a dword at a time (as a driver would). */
function readConfig(dev: VfioPciDevice): Uint8Array {
  const bytes = new Uint8Array(dev.configSize);
  for (let o = 0; o + 4 <= dev.configSize; o += 4) {
    const v = dev.configRead(o, 4);
    for (let i = 0; i < 4; i++) bytes[o + i] = Math.floor(v / 2 ** (8 * i)) & 0xff;
  }
  return bytes;
}

/** lspci -vv's detail lines for the capabilities it decodes; the rest are named only. */
function capabilityDetails(b: Uint8Array, id: number, at: number): { headline: string; details: string[] } {
  if (id === PCI_CAP_ID_MSIX) {
    const ctl = u16(b, at + PCI_MSIX_FLAGS);
    const table = u32(b, at + PCI_MSIX_TABLE);
    const pba = u32(b, at + PCI_MSIX_PBA);
    return {
      headline: `MSI-X: Enable${flag((ctl & PCI_MSIX_FLAGS_ENABLE) !== 0)} Count=${(ctl & PCI_MSIX_FLAGS_QSIZE) + 1} Masked${flag((ctl & PCI_MSIX_FLAGS_MASKALL) !== 0)}`,
      details: [
        `Vector table: BAR=${table & PCI_MSIX_TABLE_BIR} offset=${((table & PCI_MSIX_TABLE_OFFSET) >>> 0).toString(16).padStart(8, '0')}`,
        `PBA: BAR=${pba & PCI_MSIX_TABLE_BIR} offset=${((pba & PCI_MSIX_TABLE_OFFSET) >>> 0).toString(16).padStart(8, '0')}`,
      ],
    };
  }
  if (id === PCI_CAP_ID_MSI) {
    const ctl = u16(b, at + PCI_MSI_FLAGS);
    const enabled = 1 << ((ctl & PCI_MSI_FLAGS_QSIZE) >> 4);
    const capable = 1 << ((ctl & PCI_MSI_FLAGS_QMASK) >> 1);
    return {
      headline: `MSI: Enable${flag((ctl & PCI_MSI_FLAGS_ENABLE) !== 0)} Count=${enabled}/${capable} Maskable${flag((ctl & PCI_MSI_FLAGS_MASKBIT) !== 0)} 64bit${flag((ctl & PCI_MSI_FLAGS_64BIT) !== 0)}`,
      details: [],
    };
  }
  if (id === PCI_CAP_ID_EXP) {
    const flags = u16(b, at + PCI_EXP_FLAGS);
    const type = (flags & PCI_EXP_FLAGS_TYPE) >> 4;
    const types: Record<number, string> = {
      [PCI_EXP_TYPE_ENDPOINT]: 'Endpoint',
      [PCI_EXP_TYPE_LEG_END]: 'Legacy Endpoint',
      [PCI_EXP_TYPE_RC_END]: 'Root Complex Integrated Endpoint',
    };
    return {
      headline: `Express (v${flags & PCI_EXP_FLAGS_VERS}) ${types[type] ?? `type ${hex(type)}`}`,
      details: [],
    };
  }
  if (id === PCI_CAP_ID_VNDR)
    return {
      headline: `Vendor Specific Information: Len=${hex(b[at + PCI_CAP_FLAGS]!, 2).slice(2)}`,
      details: [],
    };
  return { headline: CAP_NAMES[id] ?? `#${hex(id, 2).slice(2)}`, details: [] };
}

/** The header field or capability a virtualized byte belongs to. */
function fieldOf(
  offset: number,
  caps: readonly { offset: number; id: number }[],
  ext: readonly { offset: number; id: number }[],
): string {
  if (offset >= PCI_BASE_ADDRESS_0 && offset < PCI_BASE_ADDRESS_5 + 4) return 'Base Address Registers';
  if (offset >= PCI_ROM_ADDRESS && offset < PCI_ROM_ADDRESS + 4) return 'Expansion ROM Base Address';
  const list = offset < PCI_CFG_SPACE_SIZE ? caps : ext;
  const names = offset < PCI_CFG_SPACE_SIZE ? CAP_NAMES : EXT_CAP_NAMES;
  // The capability starting nearest below the byte: lists are not sorted by offset, so look at all.
  const owner = list.filter((c) => c.offset <= offset).sort((a, b) => b.offset - a.offset)[0];
  return owner
    ? `${names[owner.id] ?? `capability ${hex(owner.id)}`} capability @${hex(owner.offset)}`
    : 'header';
}

function virtualizedRuns(
  bits: Uint8Array,
  caps: readonly { offset: number; id: number }[],
  ext: readonly { offset: number; id: number }[],
) {
  const runs: ConfigSpaceReport['virtualized'] = [];
  let start = -1;
  for (let o = 0; o <= bits.length; o++) {
    // A run also ends where the field it belongs to changes (BARs then ROM, one capability then the next).
    const on = o < bits.length && bits[o] !== 0;
    const field = on ? fieldOf(o, caps, ext) : '';
    if (start >= 0 && (!on || field !== runs.at(-1)!.field)) {
      runs.at(-1)!.length = o - start;
      runs.at(-1)!.mask = Buffer.from(bits.subarray(start, o)).toString('hex');
      start = -1;
    }
    if (on && start < 0) {
      start = o;
      runs.push({ offset: o, length: 0, mask: '', field });
    }
  }
  return runs;
}

export function configSpaceReport(dev: VfioPciDevice, arg: DeviceArg): ConfigSpaceReport {
  const b = readConfig(dev);
  const bits = dev.emulatedConfigBits().subarray(0, b.length);
  const touched = (from: number, to: number) => bits.subarray(from, to).some((x) => x !== 0);
  const std = pciCapabilities(b);
  const ext = pciExtCapabilities(b);
  // A capability ends where the next one (by offset) starts, or at the end of its space.
  const endOf = (offset: number, all: readonly { offset: number }[], limit: number) =>
    Math.min(limit, ...all.map((c) => c.offset).filter((o) => o > offset));
  const capabilities = std.map((c) => {
    const { headline, details } = capabilityDetails(b, c.id, c.offset);
    return {
      offset: c.offset,
      id: c.id,
      name: CAP_NAMES[c.id] ?? `Capability ID ${hex(c.id)}`,
      summary: headline,
      details,
      virtualized: touched(c.offset, endOf(c.offset, std, PCI_CFG_SPACE_SIZE)),
    };
  });
  const extendedCapabilities = ext.map((c) => ({
    offset: c.offset,
    id: c.id,
    version: c.version,
    name: EXT_CAP_NAMES[c.id] ?? `Extended Capability ID ${hex(c.id)}`,
    virtualized: touched(c.offset, endOf(c.offset, ext, b.length)),
  }));
  return {
    device: arg.name,
    size: b.length,
    bytes: Buffer.from(b).toString('hex'),
    emulatedBits: Buffer.from(bits).toString('hex'),
    virtualized: virtualizedRuns(bits, std, ext),
    capabilities,
    extendedCapabilities,
  };
}

const sizeText = (n: number) =>
  n >= 2 ** 30 && n % 2 ** 30 === 0
    ? `${n / 2 ** 30}G`
    : n >= 2 ** 20 && n % 2 ** 20 === 0
      ? `${n / 2 ** 20}M`
      : n >= 1024 && n % 1024 === 0
        ? `${n / 1024}K`
        : String(n);

export function printConfigSpace(
  report: ConfigSpaceReport,
  dev: VfioPciDevice,
  out: Output,
  options: { extended: boolean },
): void {
  const b = Buffer.from(report.bytes, 'hex');
  const cmd = u16(b, PCI_COMMAND);
  const status = u16(b, PCI_STATUS);
  const id = `${dev.vendorId.toString(16).padStart(4, '0')}:${dev.deviceId.toString(16).padStart(4, '0')}`;
  out.line(
    `${out.heading(report.device)}  ${id}  class ${dev.classCode.toString(16).padStart(6, '0')}  (rev ${hex(b[PCI_REVISION_ID]!, 2).slice(2)})`,
  );
  out.line(
    `\tControl: I/O${flag((cmd & PCI_COMMAND_IO) !== 0)} Mem${flag((cmd & PCI_COMMAND_MEMORY) !== 0)} BusMaster${flag((cmd & PCI_COMMAND_MASTER) !== 0)} DisINTx${flag((cmd & PCI_COMMAND_INTX_DISABLE) !== 0)}`,
  );
  out.line(
    `\tStatus: Cap${flag((status & PCI_STATUS_CAP_LIST) !== 0)} INTx${flag((status & PCI_STATUS_INTERRUPT) !== 0)}`,
  );
  const pin = b[PCI_INTERRUPT_PIN]!;
  if (pin !== 0) out.line(`\tInterrupt: pin ${pin <= 4 ? 'ABCD'[pin - 1] : `?${pin}`}`);
  for (const bar of dev.bars) {
    // lspci's widths: %04x for ports, at least %08x for memory.
    const where =
      bar.address === null
        ? '<unassigned>'
        : bar.address.toString(16).padStart(bar.kind === 'io' ? 4 : 8, '0');
    out.line(
      bar.kind === 'io'
        ? `\tRegion ${bar.index}: I/O ports at ${where} [size=${sizeText(bar.size)}]`
        : `\tRegion ${bar.index}: Memory at ${where} (${bar.kind === 'mem64' ? '64' : '32'}-bit, ${bar.prefetchable ? '' : 'non-'}prefetchable) [size=${sizeText(bar.size)}]`,
    );
  }
  const tag = (v: boolean) => (v ? '  (virtualized by vfio-ts)' : '');
  for (const c of report.capabilities) {
    out.line(`\tCapabilities: [${c.offset.toString(16)}] ${c.summary}${tag(c.virtualized)}`);
    for (const d of c.details) out.line(`\t\t${d}`);
  }
  for (const c of report.extendedCapabilities)
    out.line(`\tCapabilities: [${c.offset.toString(16)} v${c.version}] ${c.name}${tag(c.virtualized)}`);
  out.line();
  out.line('Virtualized by vfio-ts (emulated, not passed through from the device):');
  if (report.virtualized.length === 0) out.line('\tnothing');
  for (const r of report.virtualized) {
    const range = `[${r.offset.toString(16)}-${(r.offset + r.length - 1).toString(16)}]`;
    const partial = /^(ff)+$/.test(r.mask) ? '' : ` bits ${r.mask.match(/../g)!.join(' ')}`;
    out.line(`\t${range} ${r.field}${partial}`);
  }
  out.line();
  // lspci -xxx: "00: 36 1b ..." 16 bytes a line; -xxxx the whole space. On a colour terminal
  // the virtualized bytes are underlined (plain text stays exactly lspci's, for tools that parse it).
  const bits = Buffer.from(report.emulatedBits, 'hex');
  const end = options.extended ? b.length : Math.min(b.length, PCI_CFG_SPACE_SIZE);
  for (let o = 0; o < end; o += 16) {
    const cells = [...b.subarray(o, o + 16)].map((x, i) => {
      const cell = x.toString(16).padStart(2, '0');
      return bits[o + i] ? out.marked(cell) : cell;
    });
    out.line(`${o.toString(16).padStart(o >= 0x100 ? 3 : 2, '0')}: ${cells.join(' ')}`);
  }
}
