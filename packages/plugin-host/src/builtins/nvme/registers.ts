/**
 * NVMe controller registers (BAR0) and their fields, as NVMe 1.4 section 3.1
 * defines them and QEMU's hw/nvme reports them.
 */

export const NVME_CAP = 0x00;
export const NVME_VS = 0x08;
export const NVME_INTMS = 0x0c;
export const NVME_INTMC = 0x10;
export const NVME_CC = 0x14;
export const NVME_CSTS = 0x1c;
export const NVME_AQA = 0x24;
export const NVME_ASQ = 0x28;
export const NVME_ACQ = 0x30;
/** Doorbells start here: SQ y tail at +(2y) * (4 << DSTRD), CQ y head at +(2y + 1) * (4 << DSTRD). */
export const NVME_DOORBELLS = 0x1000;
/** The doorbell area ends where the MSI-X table begins (BAR0 + 0x2000): room for 512 queue pairs. */
export const NVME_DOORBELLS_END = 0x2000;

/** MQES 2047 (0's based), CQR, TO 7.5 s, CSS NVM, MPSMIN 4 KiB, MPSMAX 64 KiB, DSTRD 0: what QEMU's controller reports. */
export const NVME_CAP_VALUE = 0x7ffn | (1n << 16n) | (0x0fn << 24n) | (1n << 37n) | (4n << 52n);
export const NVME_VS_VALUE = 0x00010400; // NVMe 1.4

export const CAP_MQES = Number(NVME_CAP_VALUE & 0xffffn);
export const CAP_MPSMIN = Number((NVME_CAP_VALUE >> 48n) & 0xfn);
export const CAP_MPSMAX = Number((NVME_CAP_VALUE >> 52n) & 0xfn);
/** CAP.CSS: the command sets CC.CSS may select (bit n allows CSS n). */
export const CAP_CSS = Number((NVME_CAP_VALUE >> 37n) & 0xffn);

export const CC_EN = 1;
export const ccCss = (cc: number): number => (cc >>> 4) & 7;
export const ccMps = (cc: number): number => (cc >>> 7) & 0xf;
export const ccShn = (cc: number): number => (cc >>> 14) & 3;
export const ccIosqes = (cc: number): number => (cc >>> 16) & 0xf;
export const ccIocqes = (cc: number): number => (cc >>> 20) & 0xf;

export const CSTS_RDY = 1;
export const CSTS_CFS = 2;
/** CSTS.SHST = 2: shutdown processing complete. */
export const CSTS_SHST_COMPLETE = 2 << 2;
export const CSTS_SHST_MASK = 3 << 2;

export const doorbellSqTail = (qid: number): number => NVME_DOORBELLS + 8 * qid;
export const doorbellCqHead = (qid: number): number => NVME_DOORBELLS + 8 * qid + 4;
