/**
 * What sim:nvme says it is: the Identify Controller and Identify Namespace
 * data structures (NVMe 1.4 figures 247 and 249) with the fields Linux's nvme
 * driver reads, the namespace ID descriptors, and the identity strings
 * (exported, so tests of a guest can compare what the guest shows).
 */
import { NVME_VS_VALUE } from './registers.js';

export interface NvmeIdentity {
  /** Identify Controller MN: what Linux shows as /sys/class/nvme/nvme0/model. */
  readonly model: string;
  readonly serial: string;
  readonly firmware: string;
  readonly lbaSize: number;
  /** Blocks of the namespace at the default size. */
  readonly namespaceBlocks: number;
}

export const NVME_DEFAULT_DISK_BYTES = 4 * 1024 * 1024;
export const NVME_LBA_SIZE = 512;

export const NVME_IDENTITY: NvmeIdentity = Object.freeze({
  model: 'vfio-ts sim:nvme',
  serial: 'VFIOTS-SIM-0001',
  firmware: '1.0',
  lbaSize: NVME_LBA_SIZE,
  namespaceBlocks: NVME_DEFAULT_DISK_BYTES / NVME_LBA_SIZE,
});

/** QEMU's PCI vendor (1b36) as VID, and its subsystem vendor (1af4) as SSVID, as QEMU's controller reports. */
const VID = 0x1b36;
const SSVID = 0x1af4;
/** MDTS 7: 2^7 minimum pages (512 KiB) per command. */
export const NVME_MDTS = 7;
/** I/O queue pairs the controller offers (QEMU's max_ioqpairs default); 65 MSI-X vectors cover them and the admin queue. */
export const NVME_MAX_IO_QUEUES = 64;
/** AERL 3 (0's based): four Asynchronous Event Requests may be outstanding. */
export const NVME_AERL = 3;
/** ONCS: Dataset Management (bit 2) and Write Zeroes (bit 3). */
const ONCS = (1 << 2) | (1 << 3);
/** A fixed namespace UUID (its NIDT 3 descriptor) and EUI-64, so the namespace has stable identifiers. */
const NS_UUID = Uint8Array.from([
  0x76, 0x66, 0x69, 0x6f, 0x2d, 0x74, 0x73, 0x2d, 0x73, 0x69, 0x6d, 0x2d, 0x6e, 0x76, 0x6d, 0x65,
]);
const NS_EUI64 = Uint8Array.from([0x52, 0x54, 0x00, 0x76, 0x66, 0x69, 0x6f, 0x01]);

/** An ASCII field padded with spaces, as NVMe strings are. */
function ascii(out: Uint8Array, at: number, length: number, text: string): void {
  out.fill(0x20, at, at + length);
  for (let i = 0; i < Math.min(length, text.length); i++) out[at + i] = text.charCodeAt(i) & 0x7f;
}

export function identifyController(): Uint8Array {
  const id = new Uint8Array(4096);
  const v = new DataView(id.buffer);
  v.setUint16(0, VID, true);
  v.setUint16(2, SSVID, true);
  ascii(id, 4, 20, NVME_IDENTITY.serial);
  ascii(id, 24, 40, NVME_IDENTITY.model);
  ascii(id, 64, 8, NVME_IDENTITY.firmware);
  id[72] = 6; // RAB
  id.set([0x00, 0x54, 0x52], 73); // IEEE OUI, as QEMU's (52:54:00), least significant byte first
  id[77] = NVME_MDTS;
  v.setUint16(78, 0, true); // CNTLID
  v.setUint32(80, NVME_VS_VALUE, true); // VER
  id[111] = 1; // CNTRLTYPE: I/O controller
  v.setUint16(256, 0, true); // OACS: no optional admin commands
  id[258] = 3; // ACL: four Aborts
  id[259] = NVME_AERL;
  id[260] = (1 << 1) | 1; // FRMW: one slot, slot 1 read-only
  id[261] = 0; // LPA: no per-namespace SMART, no commands effects log
  id[262] = 3; // ELPE: four error log entries
  v.setUint16(266, 0x0157, true); // WCTEMP 343 K
  v.setUint16(268, 0x0175, true); // CCTEMP 373 K
  id[512] = 0x66; // SQES: 64-byte entries only
  id[513] = 0x44; // CQES: 16-byte entries only
  v.setUint16(514, 0, true); // MAXCMD (fabrics only)
  v.setUint32(516, 1, true); // NN: one namespace
  v.setUint16(520, ONCS, true);
  id[525] = 1; // VWC present (a flush is accepted; the RAM disk has nothing to write back)
  v.setUint32(536, 0, true); // SGLS: PRPs only
  ascii(id, 768, 256, `nqn.2019-08.org.qemu:${NVME_IDENTITY.serial}`);
  id.fill(0, 768 + `nqn.2019-08.org.qemu:${NVME_IDENTITY.serial}`.length, 1024); // SUBNQN is NUL-padded
  // Power state 0: max power 25 W (in centiwatts), entry/exit latencies as QEMU gives.
  v.setUint16(2048, 0x9c4, true);
  v.setUint32(2052, 0x10, true);
  v.setUint32(2056, 0x4, true);
  return id;
}

export function identifyNamespace(blocks: number): Uint8Array {
  const id = new Uint8Array(4096);
  const v = new DataView(id.buffer);
  v.setBigUint64(0, BigInt(blocks), true); // NSZE
  v.setBigUint64(8, BigInt(blocks), true); // NCAP
  v.setBigUint64(16, BigInt(blocks), true); // NUSE
  id[25] = 0; // NLBAF: one format (0's based)
  id[26] = 0; // FLBAS: format 0
  id[33] = (1 << 3) | 1; // DLFEAT: deallocated blocks and Write Zeroes read back as zeros
  id.set(NS_UUID, 104); // NGUID
  id.set(NS_EUI64, 120);
  id[130] = Math.log2(NVME_LBA_SIZE); // LBAF0: LBADS 9, no metadata
  return id;
}

/** Namespace Identification Descriptor list (CNS 3): the namespace UUID, then zeros that end the list. */
export function namespaceDescriptors(): Uint8Array {
  const list = new Uint8Array(4096);
  list[0] = 3; // NIDT: UUID
  list[1] = 16; // NIDL
  list.set(NS_UUID, 4);
  return list;
}

/** Active Namespace ID list (CNS 2): the active IDs greater than `after`. */
export function activeNamespaces(after: number): Uint8Array {
  const list = new Uint8Array(4096);
  if (after < 1) new DataView(list.buffer).setUint32(0, 1, true);
  return list;
}
