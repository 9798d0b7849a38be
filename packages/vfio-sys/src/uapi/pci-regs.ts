/**
 * PCI configuration space, as <linux/pci_regs.h> names it: the register
 * offsets, bits and capability IDs that vfio-sys, plugin-host, pci-vfio,
 * vfio-user and the CLI share. Kernel UAPI like <linux/vfio.h>: every name
 * here is the header's, with the header's value, and the layout test checks
 * each against the system header. Names the header does not have (vendor
 * IDs, class codes from pci_ids.h, QEMU's own) live with their users.
 */

// Header sizes
export const PCI_CFG_SPACE_SIZE = 256;
export const PCI_CFG_SPACE_EXP_SIZE = 4096;
export const PCI_STD_HEADER_SIZEOF = 64;
export const PCI_STD_NUM_BARS = 6;

// Type 0 header
export const PCI_VENDOR_ID = 0;
export const PCI_DEVICE_ID = 2;
export const PCI_COMMAND = 4;
export const PCI_STATUS = 6;
export const PCI_CLASS_REVISION = 8;
export const PCI_REVISION_ID = 8;
export const PCI_CLASS_PROG = 9;
export const PCI_CLASS_DEVICE = 0xa;
export const PCI_CACHE_LINE_SIZE = 0xc;
export const PCI_LATENCY_TIMER = 0xd;
export const PCI_HEADER_TYPE = 0xe;
export const PCI_BIST = 0xf;
export const PCI_BASE_ADDRESS_0 = 0x10;
export const PCI_BASE_ADDRESS_1 = 0x14;
export const PCI_BASE_ADDRESS_2 = 0x18;
export const PCI_BASE_ADDRESS_3 = 0x1c;
export const PCI_BASE_ADDRESS_4 = 0x20;
export const PCI_BASE_ADDRESS_5 = 0x24;
export const PCI_CARDBUS_CIS = 0x28;
export const PCI_SUBSYSTEM_VENDOR_ID = 0x2c;
export const PCI_SUBSYSTEM_ID = 0x2e;
export const PCI_ROM_ADDRESS = 0x30;
export const PCI_CAPABILITY_LIST = 0x34;
export const PCI_INTERRUPT_LINE = 0x3c;
export const PCI_INTERRUPT_PIN = 0x3d;
export const PCI_MIN_GNT = 0x3e;
export const PCI_MAX_LAT = 0x3f;

// Command register
export const PCI_COMMAND_IO = 1;
export const PCI_COMMAND_MEMORY = 2;
export const PCI_COMMAND_MASTER = 4;
export const PCI_COMMAND_SPECIAL = 8;
export const PCI_COMMAND_INVALIDATE = 0x10;
export const PCI_COMMAND_VGA_PALETTE = 0x20;
export const PCI_COMMAND_PARITY = 0x40;
export const PCI_COMMAND_WAIT = 0x80;
export const PCI_COMMAND_SERR = 0x100;
export const PCI_COMMAND_FAST_BACK = 0x200;
export const PCI_COMMAND_INTX_DISABLE = 0x400;

// Status register
export const PCI_STATUS_IMM_READY = 1;
export const PCI_STATUS_INTERRUPT = 8;
export const PCI_STATUS_CAP_LIST = 0x10;
export const PCI_STATUS_66MHZ = 0x20;
export const PCI_STATUS_FAST_BACK = 0x80;
export const PCI_STATUS_PARITY = 0x100;
export const PCI_STATUS_DEVSEL_MASK = 0x600;
export const PCI_STATUS_SIG_TARGET_ABORT = 0x800;
export const PCI_STATUS_REC_TARGET_ABORT = 0x1000;
export const PCI_STATUS_REC_MASTER_ABORT = 0x2000;
export const PCI_STATUS_SIG_SYSTEM_ERROR = 0x4000;
export const PCI_STATUS_DETECTED_PARITY = 0x8000;

// Header type
export const PCI_HEADER_TYPE_MASK = 0x7f;
export const PCI_HEADER_TYPE_NORMAL = 0;
export const PCI_HEADER_TYPE_BRIDGE = 1;
export const PCI_HEADER_TYPE_CARDBUS = 2;

// BARs and the ROM BAR
export const PCI_BASE_ADDRESS_SPACE = 1;
export const PCI_BASE_ADDRESS_SPACE_IO = 1;
export const PCI_BASE_ADDRESS_SPACE_MEMORY = 0;
export const PCI_BASE_ADDRESS_MEM_TYPE_MASK = 6;
export const PCI_BASE_ADDRESS_MEM_TYPE_32 = 0;
export const PCI_BASE_ADDRESS_MEM_TYPE_1M = 2;
export const PCI_BASE_ADDRESS_MEM_TYPE_64 = 4;
export const PCI_BASE_ADDRESS_MEM_PREFETCH = 8;
export const PCI_ROM_ADDRESS_ENABLE = 1;

// Capability list
export const PCI_CAP_LIST_ID = 0;
export const PCI_CAP_LIST_NEXT = 1;
export const PCI_CAP_FLAGS = 2;
export const PCI_CAP_SIZEOF = 4;
export const PCI_CAP_ID_PM = 1;
export const PCI_CAP_ID_AGP = 2;
export const PCI_CAP_ID_VPD = 3;
export const PCI_CAP_ID_SLOTID = 4;
export const PCI_CAP_ID_MSI = 5;
export const PCI_CAP_ID_CHSWP = 6;
export const PCI_CAP_ID_PCIX = 7;
export const PCI_CAP_ID_HT = 8;
export const PCI_CAP_ID_VNDR = 9;
export const PCI_CAP_ID_DBG = 0xa;
export const PCI_CAP_ID_CCRC = 0xb;
export const PCI_CAP_ID_SHPC = 0xc;
export const PCI_CAP_ID_SSVID = 0xd;
export const PCI_CAP_ID_AGP3 = 0xe;
export const PCI_CAP_ID_SECDEV = 0xf;
export const PCI_CAP_ID_EXP = 0x10;
export const PCI_CAP_ID_MSIX = 0x11;
export const PCI_CAP_ID_SATA = 0x12;
export const PCI_CAP_ID_AF = 0x13;
export const PCI_CAP_ID_EA = 0x14;
export const PCI_CAP_ID_MAX = 0x14;

// Power management
export const PCI_PM_PMC = 2;
export const PCI_PM_CTRL = 4;
export const PCI_PM_CTRL_STATE_MASK = 3;
export const PCI_PM_CTRL_NO_SOFT_RESET = 8;
export const PCI_PM_CTRL_PME_ENABLE = 0x100;
export const PCI_PM_CTRL_PME_STATUS = 0x8000;
export const PCI_PM_SIZEOF = 8;

// MSI
export const PCI_MSI_FLAGS = 2;
export const PCI_MSI_FLAGS_ENABLE = 1;
export const PCI_MSI_FLAGS_QMASK = 0xe;
export const PCI_MSI_FLAGS_QSIZE = 0x70;
export const PCI_MSI_FLAGS_64BIT = 0x80;
export const PCI_MSI_FLAGS_MASKBIT = 0x100;
export const PCI_MSI_ADDRESS_LO = 4;
export const PCI_MSI_ADDRESS_HI = 8;
export const PCI_MSI_DATA_32 = 8;
export const PCI_MSI_MASK_32 = 0xc;
export const PCI_MSI_PENDING_32 = 0x10;
export const PCI_MSI_DATA_64 = 0xc;
export const PCI_MSI_MASK_64 = 0x10;
export const PCI_MSI_PENDING_64 = 0x14;

// MSI-X
export const PCI_MSIX_FLAGS = 2;
export const PCI_MSIX_FLAGS_QSIZE = 0x7ff;
export const PCI_MSIX_FLAGS_MASKALL = 0x4000;
export const PCI_MSIX_FLAGS_ENABLE = 0x8000;
export const PCI_MSIX_TABLE = 4;
export const PCI_MSIX_TABLE_BIR = 7;
export const PCI_MSIX_TABLE_OFFSET = 0xfffffff8;
export const PCI_MSIX_PBA = 8;
export const PCI_MSIX_PBA_BIR = 7;
export const PCI_MSIX_PBA_OFFSET = 0xfffffff8;
export const PCI_CAP_MSIX_SIZEOF = 12;
export const PCI_MSIX_ENTRY_SIZE = 0x10;
export const PCI_MSIX_ENTRY_LOWER_ADDR = 0;
export const PCI_MSIX_ENTRY_UPPER_ADDR = 4;
export const PCI_MSIX_ENTRY_DATA = 8;
export const PCI_MSIX_ENTRY_VECTOR_CTRL = 0xc;
export const PCI_MSIX_ENTRY_CTRL_MASKBIT = 1;

// PCI Express capability (the fields vfio-pci and the models use)
export const PCI_EXP_FLAGS = 2;
export const PCI_EXP_FLAGS_VERS = 0xf;
export const PCI_EXP_FLAGS_TYPE = 0xf0;
export const PCI_EXP_TYPE_ENDPOINT = 0;
export const PCI_EXP_TYPE_LEG_END = 1;
export const PCI_EXP_TYPE_RC_END = 9;
export const PCI_EXP_DEVCAP = 4;
export const PCI_EXP_DEVCTL = 8;
export const PCI_EXP_DEVSTA = 0xa;
export const PCI_EXP_LNKCAP = 0xc;
export const PCI_EXP_LNKCTL = 0x10;
export const PCI_EXP_LNKSTA = 0x12;

// Extended capabilities (PCI Express, from 0x100)
export const PCI_EXT_CAP_ID_ERR = 1;
export const PCI_EXT_CAP_ID_VC = 2;
export const PCI_EXT_CAP_ID_DSN = 3;
export const PCI_EXT_CAP_ID_PWR = 4;
export const PCI_EXT_CAP_ID_RCLD = 5;
export const PCI_EXT_CAP_ID_RCILC = 6;
export const PCI_EXT_CAP_ID_RCEC = 7;
export const PCI_EXT_CAP_ID_MFVC = 8;
export const PCI_EXT_CAP_ID_VC9 = 9;
export const PCI_EXT_CAP_ID_RCRB = 0xa;
export const PCI_EXT_CAP_ID_VNDR = 0xb;
export const PCI_EXT_CAP_ID_CAC = 0xc;
export const PCI_EXT_CAP_ID_ACS = 0xd;
export const PCI_EXT_CAP_ID_ARI = 0xe;
export const PCI_EXT_CAP_ID_ATS = 0xf;
export const PCI_EXT_CAP_ID_SRIOV = 0x10;
export const PCI_EXT_CAP_ID_MRIOV = 0x11;
export const PCI_EXT_CAP_ID_MCAST = 0x12;
export const PCI_EXT_CAP_ID_PRI = 0x13;
export const PCI_EXT_CAP_ID_AMD_XXX = 0x14;
export const PCI_EXT_CAP_ID_REBAR = 0x15;
export const PCI_EXT_CAP_ID_DPA = 0x16;
export const PCI_EXT_CAP_ID_TPH = 0x17;
export const PCI_EXT_CAP_ID_LTR = 0x18;
export const PCI_EXT_CAP_ID_SECPCI = 0x19;
export const PCI_EXT_CAP_ID_PMUX = 0x1a;
export const PCI_EXT_CAP_ID_PASID = 0x1b;
export const PCI_EXT_CAP_ID_DPC = 0x1d;
export const PCI_EXT_CAP_ID_L1SS = 0x1e;
export const PCI_EXT_CAP_ID_PTM = 0x1f;
export const PCI_EXT_CAP_ID_DVSEC = 0x23;
export const PCI_EXT_CAP_ID_DLF = 0x25;
export const PCI_EXT_CAP_ID_PL_16GT = 0x26;
export const PCI_EXT_CAP_ID_DOE = 0x2e;
export const PCI_EXT_CAP_ID_MAX = 0x2e;
export const PCI_EXT_CAP_DSN_SIZEOF = 12;

/** The ID, version and next offset packed in an extended capability's 32-bit header (PCI_EXT_CAP_ID/VER/NEXT). */
export const PCI_EXT_CAP_ID = (header: number): number => header & 0xffff;
export const PCI_EXT_CAP_VER = (header: number): number => (header >>> 16) & 0xf;
export const PCI_EXT_CAP_NEXT = (header: number): number => (header >>> 20) & 0xffc;
