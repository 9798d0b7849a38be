/**
 * Completion status values as QEMU's hw/nvme/nvme.h writes them: the status
 * field of a completion without its phase bit (SC in bits 7:0, SCT in 10:8,
 * DNR 0x4000); the completion's dword 3 carries `status << 1 | phase` in its
 * upper half.
 */
export const NVME_SUCCESS = 0x0000;
export const NVME_INVALID_OPCODE = 0x0001;
export const NVME_INVALID_FIELD = 0x0002;
export const NVME_DATA_TRANSFER_ERROR = 0x0004;
export const NVME_INTERNAL_DEV_ERROR = 0x0006;
export const NVME_INVALID_NSID = 0x000b;
export const NVME_CMD_SEQ_ERROR = 0x000c;
export const NVME_INVALID_PRP_OFFSET = 0x0013;
export const NVME_LBA_RANGE = 0x0080;
export const NVME_INVALID_CQID = 0x0100;
export const NVME_INVALID_QID = 0x0101;
export const NVME_MAX_QSIZE_EXCEEDED = 0x0102;
export const NVME_AER_LIMIT_EXCEEDED = 0x0105;
export const NVME_INVALID_IRQ_VECTOR = 0x0108;
export const NVME_INVALID_LOG_ID = 0x0109;
export const NVME_INVALID_QUEUE_DEL = 0x010c;
export const NVME_FEAT_NOT_SAVEABLE = 0x010d;
export const NVME_DNR = 0x4000;

/** A command's outcome: its status (above) and completion dword 0. */
export interface Completion {
  readonly status: number;
  readonly result?: number;
}

export const ok = (result = 0): Completion => ({ status: NVME_SUCCESS, result });
export const failed = (status: number): Completion => ({ status: status | NVME_DNR });
/** Held: the command completes later (an Asynchronous Event Request), or never. */
export const HELD = null;
