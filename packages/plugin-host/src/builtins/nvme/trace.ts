/**
 * sim:nvme's trace events: QEMU's hw/nvme trace-events names, argument order
 * and formats (PRIx64 as %lx), for the events this controller has. Printed by
 * `vfio-ts serve sim:nvme --trace 'pci_nvme_*'`; free when nobody subscribes.
 */
import { defineTraceEvent } from '@vfio-ts/trace';

export const traceIrqMsix = defineTraceEvent('pci_nvme_irq_msix', 'raising MSI-X IRQ vector %u');
export const traceIrqPin = defineTraceEvent('pci_nvme_irq_pin', 'pulsing IRQ pin');
export const traceIoCmd = defineTraceEvent(
  'pci_nvme_io_cmd',
  "cid %u nsid 0x%x sqid %u opc 0x%x opname '%s'",
);
export const traceAdminCmd = defineTraceEvent('pci_nvme_admin_cmd', "cid %u sqid %u opc 0x%x opname '%s'");
export const traceCreateSq = defineTraceEvent(
  'pci_nvme_create_sq',
  'create submission queue, addr=0x%lx, sqid=%u, cqid=%u, qsize=%u, qflags=%u',
);
export const traceCreateCq = defineTraceEvent(
  'pci_nvme_create_cq',
  'create completion queue, addr=0x%lx, cqid=%u, vector=%u, qsize=%u, qflags=%u, ien=%d',
);
export const traceDelSq = defineTraceEvent('pci_nvme_del_sq', 'deleting submission queue sqid=%u');
export const traceDelCq = defineTraceEvent('pci_nvme_del_cq', 'deleted completion queue, cqid=%u');
export const traceIdentify = defineTraceEvent('pci_nvme_identify', 'cid %u cns 0x%x ctrlid %u csi 0x%x');
export const traceGetLog = defineTraceEvent(
  'pci_nvme_get_log',
  'cid %u lid 0x%x lsp 0x%x rae 0x%x len %u off %lu',
);
export const traceGetFeat = defineTraceEvent(
  'pci_nvme_getfeat',
  'cid %u nsid 0x%x fid 0x%x sel 0x%x cdw11 0x%x',
);
export const traceSetFeat = defineTraceEvent(
  'pci_nvme_setfeat',
  'cid %u nsid 0x%x fid 0x%x save 0x%x cdw11 0x%x',
);
export const traceAer = defineTraceEvent('pci_nvme_aer', 'cid %u');
export const traceAerlExceeded = defineTraceEvent('pci_nvme_aer_aerl_exceeded', 'aerl exceeded');
export const traceEnqueueCompletion = defineTraceEvent(
  'pci_nvme_enqueue_req_completion',
  'cid %u cqid %u dw0 0x%x dw1 0x%x status 0x%x',
);
export const traceDoorbellCq = defineTraceEvent('pci_nvme_mmio_doorbell_cq', 'cqid %u new_head %u');
export const traceDoorbellSq = defineTraceEvent('pci_nvme_mmio_doorbell_sq', 'sqid %u new_tail %u');
export const traceMmioCfg = defineTraceEvent(
  'pci_nvme_mmio_cfg',
  'wrote MMIO, config controller config=0x%lx',
);
export const traceStartSuccess = defineTraceEvent(
  'pci_nvme_mmio_start_success',
  'setting controller enable bit succeeded',
);
export const traceStopped = defineTraceEvent('pci_nvme_mmio_stopped', 'cleared controller enable bit');
export const traceShutdownSet = defineTraceEvent('pci_nvme_mmio_shutdown_set', 'shutdown bit set');
export const traceShutdownCleared = defineTraceEvent(
  'pci_nvme_mmio_shutdown_cleared',
  'shutdown bit cleared',
);
export const tracePciReset = defineTraceEvent('pci_nvme_pci_reset', 'PCI Function Level Reset');
export const traceErrReqStatus = defineTraceEvent(
  'pci_nvme_err_req_status',
  'cid %u nsid %u status 0x%x opc 0x%x',
);
export const traceErrAddrRead = defineTraceEvent('pci_nvme_err_addr_read', 'addr 0x%lx');
export const traceErrAddrWrite = defineTraceEvent('pci_nvme_err_addr_write', 'addr 0x%lx');
export const traceErrCfs = defineTraceEvent('pci_nvme_err_cfs', 'controller fatal status');
export const traceErrStartfail = defineTraceEvent(
  'pci_nvme_err_startfail',
  'setting controller enable bit failed',
);
export const traceStartfailAsq = defineTraceEvent(
  'pci_nvme_err_startfail_asq_misaligned',
  'nvme_start_ctrl failed because the admin submission queue address is misaligned: 0x%lx',
);
export const traceStartfailAcq = defineTraceEvent(
  'pci_nvme_err_startfail_acq_misaligned',
  'nvme_start_ctrl failed because the admin completion queue address is misaligned: 0x%lx',
);
export const traceStartfailPageSmall = defineTraceEvent(
  'pci_nvme_err_startfail_page_too_small',
  'nvme_start_ctrl failed because the page size is too small: log2size=%u, min=%u',
);
export const traceStartfailPageLarge = defineTraceEvent(
  'pci_nvme_err_startfail_page_too_large',
  'nvme_start_ctrl failed because the page size is too large: log2size=%u, max=%u',
);
export const traceStartfailCqentSmall = defineTraceEvent(
  'pci_nvme_err_startfail_cqent_too_small',
  'nvme_start_ctrl failed because the completion queue entry size is too small: log2size=%u, min=%u',
);
export const traceStartfailCqentLarge = defineTraceEvent(
  'pci_nvme_err_startfail_cqent_too_large',
  'nvme_start_ctrl failed because the completion queue entry size is too large: log2size=%u, max=%u',
);
export const traceStartfailSqentSmall = defineTraceEvent(
  'pci_nvme_err_startfail_sqent_too_small',
  'nvme_start_ctrl failed because the submission queue entry size is too small: log2size=%u, min=%u',
);
export const traceStartfailSqentLarge = defineTraceEvent(
  'pci_nvme_err_startfail_sqent_too_large',
  'nvme_start_ctrl failed because the submission queue entry size is too large: log2size=%u, max=%u',
);
export const traceStartfailCss = defineTraceEvent(
  'pci_nvme_err_startfail_css',
  'nvme_start_ctrl failed because invalid command set selected:%u',
);
export const traceStartfailAsqZero = defineTraceEvent(
  'pci_nvme_err_startfail_asqent_sz_zero',
  'nvme_start_ctrl failed because the admin submission queue size is zero',
);
export const traceStartfailAcqZero = defineTraceEvent(
  'pci_nvme_err_startfail_acqent_sz_zero',
  'nvme_start_ctrl failed because the admin completion queue size is zero',
);
export const traceBadSqTail = defineTraceEvent(
  'pci_nvme_ub_db_wr_invalid_sqtail',
  'submission queue doorbell write value beyond queue size, sqid=%u, new_head=%u, ignoring',
);
export const traceBadCqHead = defineTraceEvent(
  'pci_nvme_ub_db_wr_invalid_cqhead',
  'completion queue doorbell write value beyond queue size, cqid=%u, new_head=%u, ignoring',
);

/** QEMU's nvme_adm_opc_str / nvme_io_opc_str names. */
const ADMIN_NAMES: Record<number, string> = {
  0: 'NVME_ADM_CMD_DELETE_SQ',
  1: 'NVME_ADM_CMD_CREATE_SQ',
  2: 'NVME_ADM_CMD_GET_LOG_PAGE',
  4: 'NVME_ADM_CMD_DELETE_CQ',
  5: 'NVME_ADM_CMD_CREATE_CQ',
  6: 'NVME_ADM_CMD_IDENTIFY',
  8: 'NVME_ADM_CMD_ABORT',
  9: 'NVME_ADM_CMD_SET_FEATURES',
  10: 'NVME_ADM_CMD_GET_FEATURES',
  12: 'NVME_ADM_CMD_ASYNC_EV_REQ',
  24: 'NVME_ADM_CMD_KEEP_ALIVE', // not in QEMU's table (QEMU has no Keep Alive)
};
const IO_NAMES: Record<number, string> = {
  0: 'NVME_NVM_CMD_FLUSH',
  1: 'NVME_NVM_CMD_WRITE',
  2: 'NVME_NVM_CMD_READ',
  8: 'NVME_NVM_CMD_WRITE_ZEROES',
  9: 'NVME_NVM_CMD_DSM',
};
export const adminOpName = (opc: number): string => ADMIN_NAMES[opc] ?? 'NVME_ADM_CMD_UNKNOWN';
export const ioOpName = (opc: number): string => IO_NAMES[opc] ?? 'NVME_NVM_CMD_UNKNOWN';
