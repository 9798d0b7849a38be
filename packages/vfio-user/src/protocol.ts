/**
 * vfio-user protocol constants (QEMU docs/interop/vfio-user.rst): commands,
 * header flags, and the limits this implementation advertises and enforces.
 */

export const VFIO_USER_VERSION = 1;
export const VFIO_USER_DMA_MAP = 2;
export const VFIO_USER_DMA_UNMAP = 3;
export const VFIO_USER_DEVICE_GET_INFO = 4;
export const VFIO_USER_DEVICE_GET_REGION_INFO = 5;
export const VFIO_USER_DEVICE_GET_REGION_IO_FDS = 6;
export const VFIO_USER_DEVICE_GET_IRQ_INFO = 7;
export const VFIO_USER_DEVICE_SET_IRQS = 8;
export const VFIO_USER_REGION_READ = 9;
export const VFIO_USER_REGION_WRITE = 10;
export const VFIO_USER_DMA_READ = 11;
export const VFIO_USER_DMA_WRITE = 12;
export const VFIO_USER_DEVICE_RESET = 13;
/** Obsolete (removed from the spec); kept so it decodes and is refused by name. */
export const VFIO_USER_DIRTY_PAGES = 14;
export const VFIO_USER_REGION_WRITE_MULTI = 15;
export const VFIO_USER_DEVICE_FEATURE = 16;
export const VFIO_USER_MIG_DATA_READ = 17;
export const VFIO_USER_MIG_DATA_WRITE = 18;

const COMMAND_NAMES: Record<number, string> = {
  1: 'VERSION',
  2: 'DMA_MAP',
  3: 'DMA_UNMAP',
  4: 'DEVICE_GET_INFO',
  5: 'DEVICE_GET_REGION_INFO',
  6: 'DEVICE_GET_REGION_IO_FDS',
  7: 'DEVICE_GET_IRQ_INFO',
  8: 'DEVICE_SET_IRQS',
  9: 'REGION_READ',
  10: 'REGION_WRITE',
  11: 'DMA_READ',
  12: 'DMA_WRITE',
  13: 'DEVICE_RESET',
  14: 'DIRTY_PAGES',
  15: 'REGION_WRITE_MULTI',
  16: 'DEVICE_FEATURE',
  17: 'MIG_DATA_READ',
  18: 'MIG_DATA_WRITE',
};

/** `REGION_READ`, ..., or `COMMAND<n>` for a number the spec does not define. */
export function commandName(command: number): string {
  return COMMAND_NAMES[command] ?? `COMMAND${command}`;
}

// Header flags.
export const VFIO_USER_F_TYPE_MASK = 0xf;
export const VFIO_USER_F_TYPE_COMMAND = 0;
export const VFIO_USER_F_TYPE_REPLY = 1;
export const VFIO_USER_F_NO_REPLY = 0x10;
export const VFIO_USER_F_ERROR = 0x20;
const KNOWN_FLAGS = VFIO_USER_F_TYPE_MASK | VFIO_USER_F_NO_REPLY | VFIO_USER_F_ERROR;
export const VFIO_USER_F_UNKNOWN_MASK = ~KNOWN_FLAGS >>> 0;

export const HEADER_SIZE = 16;

// DMA_MAP / DMA_UNMAP flags.
export const VFIO_USER_F_DMA_REGION_READ = 1;
export const VFIO_USER_F_DMA_REGION_WRITE = 2;
/** DMA_UNMAP: obsolete dirty-page bitmap request. */
export const VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP = 1;
export const VFIO_DMA_UNMAP_FLAG_ALL = 2;

// DEVICE_FEATURE flags (linux/vfio.h VFIO_DEVICE_FEATURE_*).
export const VFIO_DEVICE_FEATURE_MASK = 0xffff;
export const VFIO_DEVICE_FEATURE_GET = 1 << 16;
export const VFIO_DEVICE_FEATURE_SET = 1 << 17;
export const VFIO_DEVICE_FEATURE_PROBE = 1 << 18;

// GET_REGION_IO_FDS sub-region types.
export const VFIO_USER_IO_FD_TYPE_IOEVENTFD = 0;
export const VFIO_USER_IO_FD_TYPE_IOREGIONFD = 1;

/** REGION_WRITE_MULTI: bytes of data per entry and entries per message. */
export const VFIO_USER_MULTI_DATA = 8;
export const VFIO_USER_MULTI_MAX = 200;

/** The protocol version we speak (QEMU proposes 0.0, libvfio-user answers 0.2; only the major must match). */
export const VFIO_USER_MAJOR = 0;
export const VFIO_USER_MINOR = 0;

/** Defaults the spec gives for a peer that does not state a capability. */
export const DEFAULT_MAX_MSG_FDS = 1;
export const DEFAULT_MAX_DATA_XFER = 1024 * 1024;
export const DEFAULT_PGSIZES = 4096;

/** Our own ceilings, advertised in VERSION and enforced on what arrives. */
export const OUR_MAX_MSG_FDS = 16;
export const OUR_MAX_DATA_XFER = 1024 * 1024;
export const OUR_MAX_DMA_MAPS = 65535;
/** Largest message we accept: a data transfer plus its header and per-command fields. */
export const maxMessageSize = (maxDataXfer: number) => HEADER_SIZE + 32 + maxDataXfer;
/** Largest VERSION capabilities JSON we parse. */
export const MAX_VERSION_JSON = 16 * 1024;
