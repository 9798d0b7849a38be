/**
 * x-vga: the legacy VGA ranges (memory 0xa0000-0xbffff, I/O 0x3b0-0x3bb and
 * 0x3c0-0x3df) served through the device's VGA region (vfio_populate_vga,
 * pci_register_vga), and the VGA quirks hung in the 0x3c0 window
 * (vfio_vga_quirk_setup). The device owns one of these and tears it down
 * with the BARs.
 */
import { type AddressSpace, MemoryRegion } from '@vfio-ts/memory-core';
import { VfioRegion } from '@vfio-ts/vfio-region';
import type { VfioDeviceIo } from '@vfio-ts/vfio-sys';
import { VFIO_PCI_VGA_REGION_INDEX } from '@vfio-ts/vfio-sys/uapi';
import { VfioPciError } from './errors.js';
import type { PciSpaces } from './mappings.js';
import type { Quirk, QuirkHost } from './quirks/types.js';
import { probeVgaQuirks } from './quirks/vga.js';
import type { TeardownSteps } from './teardown.js';

interface VgaWindow {
  readonly as: AddressSpace;
  readonly mr: MemoryRegion;
}

const IO_HI = 0x3c0;
const IO_HI_WINDOW = 'vfio-vga-io@0x3c0';

export class VgaWindows {
  readonly region: VfioRegion;
  readonly #windows: VgaWindow[];
  #quirks: Quirk[] = [];

  private constructor(region: VfioRegion, windows: VgaWindow[]) {
    this.region = region;
    this.#windows = windows;
  }

  /** vfio_populate_vga + pci_register_vga: fails when the device has no VGA region. */
  static populate(device: VfioDeviceIo, name: string, spaces: PciSpaces): VgaWindows {
    let size: number;
    try {
      size = device.regionInfo(VFIO_PCI_VGA_REGION_INDEX).size;
    } catch {
      size = 0;
    }
    if (size === 0) {
      throw new VfioPciError(
        'ERR_VFIO_PCI_NO_VGA',
        name,
        'x-vga=on but the device has no VGA region',
        'drop x-vga, or assign a VGA device',
      );
    }
    const region = VfioRegion.setup(device, VFIO_PCI_VGA_REGION_INDEX, `${name} VGA`, {
      noMmap: true,
      deviceName: name,
    });
    const windows: VgaWindow[] = [];
    const window = (as: AddressSpace, mrName: string, base: number, length: number) => {
      const mr = MemoryRegion.io(mrName, length, {
        read: (o, n) => region.read(base + o, n),
        write: (o, v, n) => region.write(base + o, v, n),
      });
      as.root.addSubregionOverlap(base, mr, 1);
      windows.push({ as, mr });
    };
    window(spaces.memory, 'vfio-vga-mmio@0xa0000', 0xa0000, 0x20000);
    window(spaces.io, 'vfio-vga-io@0x3b0', 0x3b0, 0xc);
    window(spaces.io, IO_HI_WINDOW, IO_HI, 0x20);
    return new VgaWindows(region, windows);
  }

  /** The VGA quirks applied (regions relative to the 0x3c0 window). */
  get quirks(): readonly Quirk[] {
    return this.#quirks;
  }

  /** vfio_vga_quirk_setup: the quirks hang in the 0x3c0 I/O window (priority 0, over the window's own ops). */
  setupQuirks(host: QuirkHost): void {
    const window = this.#windows.find((w) => w.mr.name === IO_HI_WINDOW)!.mr;
    this.#quirks = probeVgaQuirks(host, {
      read: (o, n) => Number(this.region.read(IO_HI + o, n)),
      write: (o, v, n) => this.region.write(IO_HI + o, v, n),
    });
    for (const q of this.#quirks)
      for (const { offset, region } of q.regions) window.addSubregion(offset, region);
  }

  /** vfio_vga_quirk_exit + pci_unregister_vga: quirks out of the window, windows out of the spaces. */
  exit(steps: TeardownSteps): void {
    for (const q of this.#quirks)
      for (const { region } of q.regions) steps.run(() => region.container?.removeSubregion(region));
    for (const w of this.#windows) steps.run(() => w.as.root.removeSubregion(w.mr));
  }

  /** vfio_vga_quirk_finalize, then the windows and the VGA region released. */
  finalize(steps: TeardownSteps): void {
    for (const q of this.#quirks) for (const { region } of q.regions) steps.run(() => region.destroy());
    for (const w of this.#windows) steps.run(() => w.mr.destroy());
    steps.run(() => this.region.finalize());
  }
}
