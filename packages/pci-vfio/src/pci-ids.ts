/**
 * Vendor and class IDs from the kernel's include/linux/pci_ids.h, which is
 * not UAPI (config-space registers and bits are vfio-sys's, from
 * <linux/pci_regs.h>): the IDs the quirks and VGA support probe for.
 */
export const PCI_CLASS_DISPLAY_VGA = 0x0300;
export const PCI_VENDOR_ID_ATI = 0x1002;
export const PCI_VENDOR_ID_NVIDIA = 0x10de;
export const PCI_VENDOR_ID_REALTEK = 0x10ec;
