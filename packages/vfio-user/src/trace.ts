/**
 * Trace events. The client's mirror QEMU's hw/vfio-user/trace-events (same
 * names, argument order and formats), so `--trace 'vfio_user_*'` prints what
 * QEMU would. The server's are ours (`vfio_server_*`, listed in the README).
 */
import { defineTraceEvent } from '@vfio-ts/trace';

// Client: QEMU hw/vfio-user/trace-events.
export const traceRecvHdr = defineTraceEvent(
  'vfio_user_recv_hdr',
  ' (%s) id 0x%x cmd 0x%x size 0x%x flags 0x%x',
);
export const traceRecvRead = defineTraceEvent('vfio_user_recv_read', ' id 0x%x read 0x%x');
export const traceRecvRequest = defineTraceEvent('vfio_user_recv_request', ' command 0x%x');
export const traceSendWrite = defineTraceEvent('vfio_user_send_write', ' id 0x%x wrote 0x%x');
export const traceVersion = defineTraceEvent('vfio_user_version', ' major %d minor %d caps: %s');
export const traceGetInfo = defineTraceEvent('vfio_user_get_info', ' #regions %d #irqs %d');
export const traceGetRegionInfo = defineTraceEvent(
  'vfio_user_get_region_info',
  ' index %d flags 0x%x size 0x%lx',
);
export const traceRegionRw = defineTraceEvent('vfio_user_region_rw', ' region %d offset 0x%lx count %d');
export const traceGetIrqInfo = defineTraceEvent('vfio_user_get_irq_info', ' index %d flags 0x%x count %d');
export const traceSetIrqs = defineTraceEvent('vfio_user_set_irqs', ' index %d start %d count %d flags 0x%x');
export const traceDmaMap = defineTraceEvent(
  'vfio_user_dma_map',
  ' iova 0x%lx size 0x%lx off 0x%lx flags 0x%x async_ops %d',
);
export const traceDmaUnmap = defineTraceEvent(
  'vfio_user_dma_unmap',
  ' iova 0x%lx size 0x%lx flags 0x%x async_ops %d',
);

// Server: ours.
export const traceServerListen = defineTraceEvent('vfio_server_listen', 'device %s socket %s');
export const traceServerAccept = defineTraceEvent('vfio_server_accept', 'socket %s pid %d uid %d');
export const traceServerRefuse = defineTraceEvent('vfio_server_refuse', 'socket %s pid %d uid %d: %s');
export const traceServerDisconnect = defineTraceEvent(
  'vfio_server_disconnect',
  'socket %s: %s (dma maps %d, irq indexes %d released)',
);
export const traceServerRequest = defineTraceEvent(
  'vfio_server_request',
  'id 0x%x %s size 0x%x flags 0x%x fds %d',
);
export const traceServerError = defineTraceEvent('vfio_server_error', 'id 0x%x %s errno %d: %s');
export const traceServerDmaMap = defineTraceEvent(
  'vfio_server_dma_map',
  'iova 0x%lx size 0x%lx offset 0x%lx flags 0x%x fd %d',
);
export const traceServerDmaUnmap = defineTraceEvent(
  'vfio_server_dma_unmap',
  'iova 0x%lx size 0x%lx flags 0x%x',
);
export const traceServerDmaRw = defineTraceEvent('vfio_server_dma', '%s iova 0x%lx count 0x%x via %s');
export const traceServerIommuMap = defineTraceEvent(
  'vfio_server_iommu_map',
  'iova 0x%lx size 0x%lx vaddr 0x%lx read %d write %d',
);
export const traceServerIommuUnmap = defineTraceEvent('vfio_server_iommu_unmap', 'iova 0x%lx size 0x%lx');
