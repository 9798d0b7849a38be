/**
 * The built-in quirks, with QEMU's names and probe conditions
 * (hw/vfio/pci-quirks.c). Probes run per BAR in QEMU's order.
 */

import { MemoryRegion } from '@vfio-ts/memory-core';
import { PCI_CFG_SPACE_SIZE, PCI_MSI_FLAGS } from '@vfio-ts/vfio-sys/uapi';
import {
  PCI_CLASS_DISPLAY_VGA,
  PCI_VENDOR_ID_ATI,
  PCI_VENDOR_ID_NVIDIA,
  PCI_VENDOR_ID_REALTEK,
} from '../pci-ids.js';
import {
  traceAtiBar2Probe,
  traceAtiBar4Probe,
  traceNvidiaBar0MsiAck,
  traceNvidiaBar0Probe,
  traceNvidiaBar5Probe,
  traceNvidiaBar5State,
  traceRtl8168FakeLatch,
  traceRtl8168MsixRead,
  traceRtl8168MsixWrite,
  traceRtl8168Probe,
} from '../trace.js';
import { configMirrorQuirk, configWindowQuirk } from './generic.js';
import type { QuirkHost, QuirkProbe } from './types.js';

const isVgaClass = (host: QuirkHost) => host.classCode >> 8 === PCI_CLASS_DISPLAY_VGA;

/** ATI BAR4: an address/data window onto config space at 0x4000 (used by legacy VGA code). */
export const atiBar4Quirk: QuirkProbe = {
  name: 'ati-bar4',
  probe(host, bar) {
    if (host.vendorId !== PCI_VENDOR_ID_ATI || !host.vga || bar !== 4) return null;
    const window = configWindowQuirk(
      host,
      bar,
      { address: 'vfio-ati-bar4-window-address-quirk', data: 'vfio-ati-bar4-window-data-quirk' },
      { addressOffset: 0, dataOffset: 4, matches: [{ match: 0x4000, mask: host.configSize - 1 }] },
    );
    traceAtiBar4Probe.emit(host.name);
    return { name: this.name, regions: window.regions };
  },
};

/** ATI BAR2 (64-bit): config space mirrored at 0x4000. */
export const atiBar2Quirk: QuirkProbe = {
  name: 'ati-bar2',
  probe(host, bar) {
    if (host.vendorId !== PCI_VENDOR_ID_ATI || !host.vga || bar !== 2 || host.bar(2)?.kind !== 'mem64')
      return null;
    const mirror = configMirrorQuirk(host, bar, 'vfio-ati-bar2-4000-quirk', 0x4000, PCI_CFG_SPACE_SIZE);
    traceAtiBar2Probe.emit(host.name);
    return { name: this.name, regions: [mirror] };
  },
};

/**
 * NVIDIA BAR5 (I/O): master and enable registers gate an address/data
 * window onto config space at 0x1800 and 0x88000; the window regions are
 * enabled only while master & enable & 1.
 */
export const nvidiaBar5Quirk: QuirkProbe = {
  name: 'nvidia-bar5',
  probe(host, bar) {
    if (
      host.noGeforceQuirks ||
      host.vendorId !== PCI_VENDOR_ID_NVIDIA ||
      !host.vga ||
      bar !== 5 ||
      host.bar(5)?.kind !== 'io'
    ) {
      return null;
    }
    const region = host.bar(5)!.region;
    const window = configWindowQuirk(
      host,
      bar,
      { address: 'vfio-nvidia-bar5-window-address-quirk', data: 'vfio-nvidia-bar5-window-data-quirk' },
      {
        addressOffset: 0x8,
        dataOffset: 0xc,
        matches: [
          { match: 0x1800, mask: PCI_CFG_SPACE_SIZE - 1 },
          { match: 0x88000, mask: host.configSize - 1 },
        ],
      },
    );
    window.addressRegion.setEnabled(false);
    window.dataRegion.setEnabled(false);
    let master = 0;
    let enable = 0;
    let enabled = false;
    const update = () => {
      if ((master & enable & 1) === (enabled ? 1 : 0)) return;
      enabled = !enabled;
      traceNvidiaBar5State.emit(host.name, enabled ? 'Enable' : 'Disable');
      window.addressRegion.setEnabled(enabled);
      window.dataRegion.setEnabled(enabled);
    };
    const masterRegion = MemoryRegion.io('vfio-nvidia-bar5-master-quirk', 4, {
      read: (addr, size) => region.read(addr, size),
      write: (addr, data, size) => {
        region.write(addr, data, size);
        master = Number(data);
        update();
      },
    });
    const enableRegion = MemoryRegion.io('vfio-nvidia-bar5-enable-quirk', 4, {
      read: (addr, size) => region.read(addr + 4, size),
      write: (addr, data, size) => {
        region.write(addr + 4, data, size);
        enable = Number(data);
        update();
      },
    });
    traceNvidiaBar5Probe.emit(host.name);
    return {
      name: this.name,
      regions: [...window.regions, { offset: 0, region: masterRegion }, { offset: 4, region: enableRegion }],
    };
  },
};

/**
 * NVIDIA BAR0: config space mirrored at 0x88000 (and its first 256 bytes at
 * 0x1800 with x-vga). NVIDIA acknowledges MSI by writing the MSI capability's
 * ID/next bytes, so writes covering them also reach the device.
 */
export const nvidiaBar0Quirk: QuirkProbe = {
  name: 'nvidia-bar0',
  probe(host, bar) {
    if (host.noGeforceQuirks || host.vendorId !== PCI_VENDOR_ID_NVIDIA || !isVgaClass(host) || bar !== 0)
      return null;
    const region = host.bar(0)!.region;
    const msiAck = (offset: number) => (addr: number, data: number, size: number) => {
      if (host.msiCap !== 0 && addr >= host.msiCap && addr + size <= host.msiCap + PCI_MSI_FLAGS) {
        region.write(addr + offset, data, size);
        traceNvidiaBar0MsiAck.emit(host.name);
      }
    };
    const regions = [
      configMirrorQuirk(
        host,
        bar,
        'vfio-nvidia-bar0-88000-mirror-quirk',
        0x88000,
        host.configSize,
        msiAck(0x88000),
      ),
    ];
    if (host.vga) {
      regions.push(
        configMirrorQuirk(
          host,
          bar,
          'vfio-nvidia-bar0-1800-mirror-quirk',
          0x1800,
          PCI_CFG_SPACE_SIZE,
          msiAck(0x1800),
        ),
      );
    }
    traceNvidiaBar0Probe.emit(host.name);
    return { name: this.name, regions };
  },
};

/**
 * RTL8168 BAR2: a backdoor to the MSI-X table through address (0x74) and
 * data (0x70) registers; served from our emulated table, never the device's.
 */
export const rtl8168Bar2Quirk: QuirkProbe = {
  name: 'rtl8168-bar2',
  probe(host, bar) {
    if (host.vendorId !== PCI_VENDOR_ID_REALTEK || host.deviceId !== 0x8168 || bar !== 2) return null;
    const region = host.bar(2)!.region;
    let enabled = false;
    let latched = 0;
    let data = 0;
    const valid = { min: 4, max: 4, unaligned: false };
    const address = MemoryRegion.io('vfio-rtl8168-window-address-quirk', 4, {
      read: (addr, size) => {
        let value = Number(region.read(addr + 0x74, size));
        if (enabled) {
          value = (latched ^ 0x80000000) >>> 0; // latch/complete
          traceRtl8168FakeLatch.emit(host.name, value);
        }
        return value;
      },
      write: (addr, value, size) => {
        const v = Number(value) >>> 0;
        enabled = false;
        if ((v & 0x7fff0000) === 0x10000) {
          enabled = true;
          latched = v;
          if (v & 0x80000000) {
            if (host.hasMsix) {
              const offset = v & 0xfff;
              traceRtl8168MsixWrite.emit(host.name, offset, data);
              host.msixTableWrite(offset, data, size);
            }
            return; // never write guest MSI-X data to hardware
          }
        }
        region.write(addr + 0x74, v, size);
      },
      valid,
    });
    const dataRegion = MemoryRegion.io('vfio-rtl8168-window-data-quirk', 4, {
      read: (addr, size) => {
        let value = Number(region.read(addr + 0x70, size));
        if (enabled && host.hasMsix) {
          const offset = latched & 0xfff;
          value = host.msixTableRead(offset, size);
          traceRtl8168MsixRead.emit(host.name, offset, value);
        }
        return value;
      },
      write: (addr, value, size) => {
        data = Number(value) >>> 0;
        region.write(addr + 0x70, value, size);
      },
      valid,
    });
    traceRtl8168Probe.emit(host.name);
    return {
      name: this.name,
      regions: [
        { offset: 0x74, region: address },
        { offset: 0x70, region: dataRegion },
      ],
    };
  },
};

/** QEMU's probe order (vfio_bar_quirk_setup). */
export const builtinQuirkProbes: readonly QuirkProbe[] = [
  atiBar4Quirk,
  atiBar2Quirk,
  nvidiaBar5Quirk,
  nvidiaBar0Quirk,
  rtl8168Bar2Quirk,
];
