/**
 * Builds configuration space bytes for a model written in code: the type 0
 * header from IDs and BARs, then a capability list (PM, MSI, MSI-X, PCI
 * Express, vendor-specific) and extended capabilities from 0x100.
 */
import {
  PCI_BASE_ADDRESS_0,
  PCI_CAP_ID_EXP,
  PCI_CAP_ID_MSI,
  PCI_CAP_ID_MSIX,
  PCI_CAP_ID_PM,
  PCI_CAP_ID_VNDR,
  PCI_CAPABILITY_LIST,
  PCI_CFG_SPACE_EXP_SIZE,
  PCI_CFG_SPACE_SIZE,
  PCI_CLASS_DEVICE,
  PCI_CLASS_PROG,
  PCI_COMMAND,
  PCI_INTERRUPT_PIN,
  PCI_MSI_FLAGS_64BIT,
  PCI_MSI_FLAGS_MASKBIT,
  PCI_REVISION_ID,
  PCI_STATUS,
  PCI_STATUS_CAP_LIST,
  PCI_SUBSYSTEM_ID,
  PCI_SUBSYSTEM_VENDOR_ID,
} from '@vfio-ts/vfio-sys/uapi';
import { type BarLayout, barTypeBits } from './config-space.js';
import { ModelError } from './errors.js';

export interface PciIds {
  readonly vendor: number;
  readonly device: number;
  readonly subsystemVendor?: number;
  readonly subsystem?: number;
  readonly revision?: number;
  /** 24-bit class code: base class, subclass, programming interface (0x030000 = VGA). */
  readonly classCode: number;
}

export interface MsixPlacement {
  readonly vectors: number;
  readonly tableBar: number;
  readonly tableOffset: number;
  readonly pbaBar: number;
  readonly pbaOffset: number;
}

export interface MsiOptions {
  /** 1, 2, 4, 8, 16 or 32. */
  readonly vectors: number;
  readonly is64?: boolean;
  readonly perVectorMask?: boolean;
}

type CapWriter = (bytes: Uint8Array, offset: number) => void;

export class ConfigBuilder {
  readonly #std: { id: number; length: number; write: CapWriter }[] = [];
  readonly #ext: { id: number; version: number; body: Uint8Array }[] = [];
  #pcie = false;

  pm(): this {
    this.#std.push({ id: PCI_CAP_ID_PM, length: 8, write: (b, o) => put(b, o + 2, 0x0003, 2) });
    return this;
  }

  msi(options: MsiOptions): this {
    const log2 = Math.log2(options.vectors);
    if (!Number.isInteger(log2) || log2 < 0 || log2 > 5) {
      throw new ModelError(
        'ERR_MODEL_MSI',
        `MSI vectors must be 1, 2, 4, 8, 16 or 32, not ${options.vectors}`,
      );
    }
    const is64 = options.is64 ?? true;
    const mask = options.perVectorMask ?? false;
    const length = 10 + (is64 ? 4 : 0) + (mask ? 10 : 0);
    const flags = (log2 << 1) | (is64 ? PCI_MSI_FLAGS_64BIT : 0) | (mask ? PCI_MSI_FLAGS_MASKBIT : 0);
    this.#std.push({
      id: PCI_CAP_ID_MSI,
      length: (length + 3) & ~3,
      write: (b, o) => put(b, o + 2, flags, 2),
    });
    return this;
  }

  msix(placement: MsixPlacement): this {
    if (!Number.isInteger(placement.vectors) || placement.vectors < 1 || placement.vectors > 2048) {
      throw new ModelError('ERR_MODEL_MSIX', `MSI-X vectors must be 1..2048, not ${placement.vectors}`);
    }
    this.#std.push({
      id: PCI_CAP_ID_MSIX,
      length: 12,
      write: (b, o) => {
        put(b, o + 2, placement.vectors - 1, 2);
        put(b, o + 4, (placement.tableOffset | placement.tableBar) >>> 0, 4);
        put(b, o + 8, (placement.pbaOffset | placement.pbaBar) >>> 0, 4);
      },
    });
    return this;
  }

  /** A PCI Express capability (endpoint by default); makes config space 4 KiB. */
  pcie(portType = 0): this {
    this.#pcie = true;
    this.#std.push({
      id: PCI_CAP_ID_EXP,
      length: 0x3c,
      write: (b, o) => {
        put(b, o + 2, 0x0002 | (portType << 4), 2); // version 2
        put(b, o + 4, 0x00008000, 4); // device capabilities: role-based error reporting
        put(b, o + 0x0c, 0x00000011, 4); // link capabilities: 2.5 GT/s x1
        put(b, o + 0x12, 0x0011, 2); // link status
      },
    });
    return this;
  }

  vendor(body: Uint8Array): this {
    this.#std.push({
      id: PCI_CAP_ID_VNDR,
      length: (body.length + 3 + 3) & ~3,
      write: (b, o) => {
        b[o + 2] = body.length + 3;
        b.set(body, o + 3);
      },
    });
    return this;
  }

  /** An extended capability (id, version, body after the 4-byte header); needs PCI Express. */
  extended(id: number, version: number, body: Uint8Array): this {
    this.#ext.push({ id, version, body });
    return this;
  }

  build(
    ids: PciIds,
    bars: readonly BarLayout[],
    options: { romSize?: number; interruptPin?: number } = {},
  ): Uint8Array {
    if (this.#ext.length > 0 && !this.#pcie) {
      throw new ModelError(
        'ERR_MODEL_CONFIG',
        'extended capabilities need a PCI Express capability (config space of 4 KiB)',
      );
    }
    const b = new Uint8Array(this.#pcie ? PCI_CFG_SPACE_EXP_SIZE : PCI_CFG_SPACE_SIZE);
    put(b, 0x00, ids.vendor, 2);
    put(b, 0x02, ids.device, 2);
    // Firmware leaves decode enabled for the BAR kinds the device has.
    put(
      b,
      PCI_COMMAND,
      (bars.some((x) => x.kind === 'io') ? 1 : 0) | (bars.some((x) => x.kind !== 'io') ? 2 : 0),
      2,
    );
    b[PCI_REVISION_ID] = ids.revision ?? 0;
    b[PCI_CLASS_PROG] = ids.classCode & 0xff;
    put(b, PCI_CLASS_DEVICE, (ids.classCode >> 8) & 0xffff, 2);
    put(b, PCI_SUBSYSTEM_VENDOR_ID, ids.subsystemVendor ?? ids.vendor, 2);
    put(b, PCI_SUBSYSTEM_ID, ids.subsystem ?? 0, 2);
    for (const bar of bars) {
      put(b, PCI_BASE_ADDRESS_0 + bar.index * 4, barTypeBits(bar), 4);
    }
    b[PCI_INTERRUPT_PIN] = options.interruptPin ?? 1;
    let at = 0x40;
    let link = PCI_CAPABILITY_LIST;
    for (const cap of this.#std) {
      if (at + cap.length > PCI_CFG_SPACE_SIZE) {
        throw new ModelError('ERR_MODEL_CONFIG', 'capabilities do not fit in the 192 bytes after the header');
      }
      b[link] = at;
      b[at] = cap.id;
      cap.write(b, at);
      link = at + 1;
      at += cap.length;
    }
    if (this.#std.length > 0) put(b, PCI_STATUS, PCI_STATUS_CAP_LIST, 2);
    let ext = 0x100;
    this.#ext.forEach((cap, i) => {
      const last = i === this.#ext.length - 1;
      const length = (4 + cap.body.length + 3) & ~3;
      if (ext + length > PCI_CFG_SPACE_EXP_SIZE)
        throw new ModelError('ERR_MODEL_CONFIG', 'extended capabilities do not fit');
      const next = last ? 0 : ext + length;
      put(b, ext, (cap.id | (cap.version << 16) | (next << 20)) >>> 0, 4);
      b.set(cap.body, ext + 4);
      ext += length;
    });
    return b;
  }
}

function put(b: Uint8Array, offset: number, value: number, size: number): void {
  for (let i = 0; i < size; i++) b[offset + i] = (value >>> (8 * i)) & 0xff;
}
