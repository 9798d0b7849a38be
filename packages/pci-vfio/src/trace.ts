/** QEMU's trace events for VFIO PCI devices and quirks (hw/vfio/trace-events). */
import { defineTraceEvent } from '@vfio-ts/trace';

export const traceMsixEarlySetup = defineTraceEvent(
  'vfio_msix_early_setup',
  '%s PCI MSI-X CAP @0x%x, BAR %d, offset 0x%x, entries %d',
);
export const traceMsixFixup = defineTraceEvent(
  'vfio_msix_fixup',
  ' (%s) MSI-X region %d mmap fixup [0x%lx - 0x%lx]',
);
export const traceMsixRelo = defineTraceEvent('vfio_msix_relo', ' (%s) BAR %d offset 0x%lx');
export const traceMsixEnable = defineTraceEvent('vfio_msix_enable', ' (%s)');
export const traceMsixDisable = defineTraceEvent('vfio_msix_disable', ' (%s)');
export const traceMsixVectorUse = defineTraceEvent('vfio_msix_vector_do_use', ' (%s) vector %d used');
export const traceMsixVectorRelease = defineTraceEvent(
  'vfio_msix_vector_release',
  ' (%s) vector %d released',
);
export const tracePciReadConfig = defineTraceEvent('vfio_pci_read_config', ' (%s, @0x%x, len=0x%x) 0x%x');
export const tracePciWriteConfig = defineTraceEvent('vfio_pci_write_config', ' (%s, @0x%x, 0x%x, len=0x%x)');
export const traceRomRead = defineTraceEvent('vfio_rom_read', ' (%s, 0x%lx, 0x%x) = 0x%lx');

export const traceWindowAddressWrite = defineTraceEvent(
  'vfio_quirk_generic_window_address_write',
  '%s %s 0x%lx',
);
export const traceWindowDataRead = defineTraceEvent('vfio_quirk_generic_window_data_read', '%s %s 0x%lx');
export const traceWindowDataWrite = defineTraceEvent('vfio_quirk_generic_window_data_write', '%s %s 0x%lx');
export const traceMirrorRead = defineTraceEvent('vfio_quirk_generic_mirror_read', '%s %s 0x%lx: 0x%lx');
export const traceMirrorWrite = defineTraceEvent('vfio_quirk_generic_mirror_write', '%s %s 0x%lx: 0x%lx');
export const traceAtiBar4Probe = defineTraceEvent('vfio_quirk_ati_bar4_probe', '%s');
export const traceAtiBar2Probe = defineTraceEvent('vfio_quirk_ati_bar2_probe', '%s');
export const traceNvidiaBar5State = defineTraceEvent('vfio_quirk_nvidia_bar5_state', '%s %s');
export const traceNvidiaBar5Probe = defineTraceEvent('vfio_quirk_nvidia_bar5_probe', '%s');
export const traceNvidiaBar0MsiAck = defineTraceEvent('vfio_quirk_nvidia_bar0_msi_ack', '%s');
export const traceNvidiaBar0Probe = defineTraceEvent('vfio_quirk_nvidia_bar0_probe', '%s');
export const traceRtl8168FakeLatch = defineTraceEvent('vfio_quirk_rtl8168_fake_latch', '%s 0x%lx');
export const traceRtl8168MsixWrite = defineTraceEvent(
  'vfio_quirk_rtl8168_msix_write',
  '%s MSI-X table write[0x%x]: 0x%lx',
);
export const traceRtl8168MsixRead = defineTraceEvent(
  'vfio_quirk_rtl8168_msix_read',
  '%s MSI-X table read[0x%x]: 0x%lx',
);
export const traceRtl8168Probe = defineTraceEvent('vfio_quirk_rtl8168_probe', '%s');
export const traceAti3c3Read = defineTraceEvent('vfio_quirk_ati_3c3_read', '%s 0x%lx');
export const traceAti3c3Probe = defineTraceEvent('vfio_quirk_ati_3c3_probe', '%s');
export const traceNvidia3d0State = defineTraceEvent('vfio_quirk_nvidia_3d0_state', '%s %s');
export const traceNvidia3d0Read = defineTraceEvent(
  'vfio_quirk_nvidia_3d0_read',
  ' (%s, @0x%x, len=0x%x) 0x%lx',
);
export const traceNvidia3d0Write = defineTraceEvent(
  'vfio_quirk_nvidia_3d0_write',
  '(%s, @0x%x, 0x%lx, len=0x%x)',
);
export const traceNvidia3d0Probe = defineTraceEvent('vfio_quirk_nvidia_3d0_probe', '%s');
export const traceMsixPbaEnable = defineTraceEvent('vfio_msix_pba_enable', ' (%s)');
export const traceMsixPbaDisable = defineTraceEvent('vfio_msix_pba_disable', ' (%s)');
export const traceMsiSetup = defineTraceEvent('vfio_msi_setup', '%s PCI MSI CAP @0x%x');
export const traceMsiEnable = defineTraceEvent('vfio_msi_enable', ' (%s) Enabled %d MSI vectors');
export const traceMsiDisable = defineTraceEvent('vfio_msi_disable', ' (%s)');
export const traceIntxEnable = defineTraceEvent('vfio_intx_enable', ' (%s)');
export const traceIntxDisable = defineTraceEvent('vfio_intx_disable', ' (%s)');
export const traceIntxEoi = defineTraceEvent('vfio_intx_eoi', ' (%s) EOI');
