/**
 * The vfio-user client backend: a VfioDeviceIo over a socket, so pci-vfio,
 * the CLI and every test drive a vfio-user server exactly as they drive the
 * kernel. Each request blocks on the socket until its reply (see
 * client-connection); while it waits the server's DMA_READ/DMA_WRITE are
 * answered from the memory the caller registered with `dmaMap` (see
 * client-dma). Error replies become SysErrors with the server's errno, as
 * the kernel's failures are.
 */

import {
  type AccessSize,
  checkAccessSize,
  MappedArea,
  type MmapProtection,
  SysError,
  VfioArgumentError,
  VfioClosedError,
  type VfioDeviceInfo,
  type VfioDeviceIo,
  type VfioIrqInfo,
  type VfioIrqSet,
  type VfioRegionInfo,
} from '@vfio-ts/vfio-sys';
import * as libc from '@vfio-ts/vfio-sys/libc';
import { connectUnix, setNonBlocking, unixSocket } from '@vfio-ts/vfio-sys/libc';
import type { VfioUserCapabilities } from './capabilities.js';
import { closeQuietly } from './channel.js';
import { ClientConnection, type ClientReply, unexpectedReply } from './client-connection.js';
import { ClientDmaMemory, type ClientDmaRegion, dmaRegionSize } from './client-dma.js';
import { sendSetIrqs } from './client-irqs.js';
import { fetchRegionInfo, mmapFdOf, type RegionEntry } from './client-regions.js';
import type { VfioUserBody } from './codec.js';
import { EINVAL, VfioUserConnectionError, VfioUserProtocolError } from './errors.js';
import {
  OUR_MAX_DATA_XFER,
  VFIO_USER_DEVICE_GET_INFO,
  VFIO_USER_DEVICE_GET_IRQ_INFO,
  VFIO_USER_DEVICE_RESET,
  VFIO_USER_DMA_MAP,
  VFIO_USER_DMA_UNMAP,
  VFIO_USER_F_DMA_REGION_READ,
  VFIO_USER_F_DMA_REGION_WRITE,
  VFIO_USER_REGION_READ,
  VFIO_USER_REGION_WRITE,
} from './protocol.js';
import { traceDmaMap, traceDmaUnmap, traceGetInfo, traceGetIrqInfo, traceRegionRw } from './trace.js';

export type { ClientDmaRegion } from './client-dma.js';

/** QEMU's defence against a server that would make it allocate without bound (hw/vfio-user/device.c). */
const MAX_REGIONS = 100;
const MAX_IRQS = 50;

export interface VfioUserClientOptions {
  /** How long one request waits for its reply before the connection is declared dead (default 10 s). */
  readonly timeoutMs?: number;
  /** Name for traces and messages (default `vfio-user:<socket>`). */
  readonly name?: string;
}

/** Opens the vfio-user device served on `socketPath` and negotiates the version. The caller closes it. */
export function openVfioUserDevice(socketPath: string, options: VfioUserClientOptions = {}): VfioUserDevice {
  const fd = unixSocket();
  try {
    connectUnix(fd, socketPath);
    setNonBlocking(fd, true);
  } catch (err) {
    libc.sysClose(fd);
    if (err instanceof SysError && (err.code === 'ENOENT' || err.code === 'ECONNREFUSED')) {
      throw new VfioUserConnectionError(
        `no vfio-user server on ${socketPath} (${err.code})`,
        'start one, e.g. vfio-ts serve sim:nvme --socket <path>',
      );
    }
    throw err;
  }
  const device = new VfioUserDevice(fd, socketPath, options);
  try {
    device.negotiate();
    return device;
  } catch (err) {
    device.close();
    throw err;
  }
}

export class VfioUserDevice implements VfioDeviceIo {
  readonly backend = 'vfio-user' as const;
  readonly name: string;
  readonly socketPath: string;
  readonly #connection: ClientConnection;
  readonly #regions = new Map<number, RegionEntry>();
  readonly #dma = new ClientDmaMemory();
  #server: VfioUserCapabilities | null = null;
  #info: VfioDeviceInfo | null = null;
  #closed = false;

  /** Use `openVfioUserDevice`. Takes ownership of the connected socket `fd`. */
  constructor(fd: number, socketPath: string, options: VfioUserClientOptions = {}) {
    this.socketPath = socketPath;
    this.name = options.name ?? `vfio-user:${socketPath}`;
    this.#connection = new ClientConnection(fd, {
      socketPath,
      name: this.name,
      timeoutMs: options.timeoutMs ?? 10_000,
      answer: (m) => this.#dma.answer(m),
      lost: () => this.close(),
    });
  }

  /** The server's capabilities from VERSION. */
  get serverCapabilities(): VfioUserCapabilities {
    if (this.#server === null) throw new VfioClosedError(`device ${this.name}`);
    return this.#server;
  }

  /** VERSION: proposes ours, records the server's (its limits bound what we send). */
  negotiate(): void {
    this.#server = this.#connection.negotiate();
  }

  deviceInfo(): VfioDeviceInfo {
    this.#live();
    if (this.#info) return this.#info;
    const r = this.#request(
      VFIO_USER_DEVICE_GET_INFO,
      { kind: 'device-info', argsz: 16, flags: 0, numRegions: 0, numIrqs: 0 },
      'DEVICE_GET_INFO',
    );
    if (r.body.kind !== 'device-info') throw unexpectedReply('DEVICE_GET_INFO');
    traceGetInfo.emit(r.body.numRegions, r.body.numIrqs);
    if (r.body.numRegions > MAX_REGIONS || r.body.numIrqs > MAX_IRQS)
      throw new VfioUserProtocolError(
        `server claims ${r.body.numRegions} regions and ${r.body.numIrqs} IRQ indexes (at most ${MAX_REGIONS} and ${MAX_IRQS})`,
      );
    this.#info = { flags: r.body.flags, numRegions: r.body.numRegions, numIrqs: r.body.numIrqs };
    return this.#info;
  }

  regionInfo(index: number): VfioRegionInfo {
    this.#live();
    const cached = this.#regions.get(index);
    if (cached) return cached.info;
    if (!Number.isInteger(index) || index < 0 || index >= this.deviceInfo().numRegions)
      throw new SysError('vfio-user', EINVAL, {
        detail: `DEVICE_GET_REGION_INFO: ${this.name} has no region ${index}`,
      });
    const entry = fetchRegionInfo(this.#connection, index);
    this.#regions.set(index, entry);
    return entry.info;
  }

  irqInfo(index: number): VfioIrqInfo {
    this.#live();
    const r = this.#request(
      VFIO_USER_DEVICE_GET_IRQ_INFO,
      { kind: 'irq-info', argsz: 16, flags: 0, index, count: 0 },
      `DEVICE_GET_IRQ_INFO index ${index}`,
    );
    if (r.body.kind !== 'irq-info') throw unexpectedReply('DEVICE_GET_IRQ_INFO');
    traceGetIrqInfo.emit(r.body.index, r.body.flags, r.body.count);
    return { index, flags: r.body.flags, count: r.body.count };
  }

  regionRead(index: number, offset: number, size: AccessSize): number {
    checkAccessSize(size, 'regionRead');
    const data = this.#read(index, offset, size);
    let v = 0;
    for (let i = size - 1; i >= 0; i--) v = v * 256 + data[i]!;
    return v;
  }

  regionRead64(index: number, offset: number): bigint {
    const data = this.#read(index, offset, 8);
    return new DataView(data.buffer, data.byteOffset, 8).getBigUint64(0, true);
  }

  regionWrite(index: number, offset: number, value: number, size: AccessSize): void {
    checkAccessSize(size, 'regionWrite');
    if (!Number.isInteger(value) || value < 0 || value >= 2 ** (8 * size))
      throw new VfioArgumentError(`value ${value} does not fit ${size} bytes`);
    const data = new Uint8Array(size);
    for (let i = 0; i < size; i++) data[i] = Math.floor(value / 2 ** (8 * i)) & 0xff;
    this.#write(index, offset, data);
  }

  regionWrite64(index: number, offset: number, value: bigint): void {
    if (typeof value !== 'bigint' || value < 0n || value > 0xffff_ffff_ffff_ffffn)
      throw new VfioArgumentError(`value ${String(value).slice(0, 24)} is not a 64-bit unsigned bigint`);
    const data = new Uint8Array(8);
    new DataView(data.buffer).setBigUint64(0, value, true);
    this.#write(index, offset, data);
  }

  regionReadBlock(index: number, offset: number, length: number): Uint8Array {
    if (!Number.isSafeInteger(length) || length < 0)
      throw new VfioArgumentError(`block length ${String(length).slice(0, 24)} is not a safe integer >= 0`);
    const out = new Uint8Array(length);
    const chunk = this.#maxXfer();
    for (let at = 0; at < length; at += chunk)
      out.set(this.#read(index, offset + at, Math.min(chunk, length - at)), at);
    return out;
  }

  regionWriteBlock(index: number, offset: number, data: Uint8Array): void {
    if (!(data instanceof Uint8Array)) throw new VfioArgumentError('block data must be a Uint8Array');
    const chunk = this.#maxXfer();
    for (let at = 0; at < data.byteLength; at += chunk)
      this.#write(index, offset + at, data.subarray(at, Math.min(data.byteLength, at + chunk)));
  }

  regionMmap(index: number, offset: number, size: number, prot: MmapProtection): MappedArea {
    this.#live();
    const info = this.regionInfo(index);
    const fd = mmapFdOf(this.name, index, this.#regions.get(index)!, offset, size);
    return MappedArea.map(
      fd,
      info.fdOffset! + offset,
      size,
      prot,
      `${this.name} region ${index} +0x${offset.toString(16)}`,
    );
  }

  setIrqs(req: VfioIrqSet): void {
    this.#live();
    sendSetIrqs(this.#connection, req, () => this.serverCapabilities.maxMsgFds);
  }

  reset(): void {
    this.#live();
    this.#request(VFIO_USER_DEVICE_RESET, { kind: 'empty' }, 'DEVICE_RESET');
  }

  /**
   * Registers client memory for the device's DMA at `iova` (DMA_MAP). With an
   * fd the server maps it; without one it reaches the memory by DMA_READ and
   * DMA_WRITE messages, which this client answers from `memory`.
   */
  dmaMap(region: ClientDmaRegion): void {
    this.#live();
    const flags =
      (region.read !== false ? VFIO_USER_F_DMA_REGION_READ : 0) |
      (region.write !== false ? VFIO_USER_F_DMA_REGION_WRITE : 0);
    const offset = BigInt(region.fd?.offset ?? 0);
    const size = BigInt(dmaRegionSize(region));
    traceDmaMap.emit(region.iova, size, offset, flags, false);
    this.#request(
      VFIO_USER_DMA_MAP,
      { kind: 'dma-map', argsz: 32, flags, offset, addr: region.iova, size },
      'DMA_MAP',
      region.fd ? [region.fd.fd] : [],
    );
    this.#dma.add(region);
  }

  /** DMA_UNMAP of a map made with `dmaMap` (exactly its iova and size). */
  dmaUnmap(iova: bigint, size: number): void {
    this.#live();
    traceDmaUnmap.emit(iova, size, 0, false);
    this.#request(
      VFIO_USER_DMA_UNMAP,
      { kind: 'dma-unmap', argsz: 24, flags: 0, addr: iova, size: BigInt(size) },
      'DMA_UNMAP',
    );
    this.#dma.remove(iova, size);
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const r of this.#regions.values()) if (r.fd !== null) closeQuietly(r.fd);
    this.#regions.clear();
    this.#dma.clear();
    this.#connection.close();
  }

  [Symbol.dispose](): void {
    this.close();
  }

  #maxXfer(): number {
    return Math.min(this.serverCapabilities.maxDataXferSize, OUR_MAX_DATA_XFER);
  }

  #read(index: number, offset: number, count: number): Uint8Array {
    this.#live();
    checkRegionAddress(index, offset);
    traceRegionRw.emit(index, offset, count);
    const r = this.#request(
      VFIO_USER_REGION_READ,
      { kind: 'region-rw', offset: BigInt(offset), region: index, count, data: new Uint8Array(0) },
      `REGION_READ region ${index} +0x${offset.toString(16)}`,
    );
    if (r.body.kind !== 'region-rw' || r.body.count !== count) throw unexpectedReply('REGION_READ');
    return r.body.data;
  }

  #write(index: number, offset: number, data: Uint8Array): void {
    checkRegionAddress(index, offset);
    this.#live();
    traceRegionRw.emit(index, offset, data.byteLength);
    this.#request(
      VFIO_USER_REGION_WRITE,
      { kind: 'region-rw', offset: BigInt(offset), region: index, count: data.byteLength, data },
      `REGION_WRITE region ${index} +0x${offset.toString(16)}`,
    );
  }

  #request(cmd: number, body: VfioUserBody, what: string, fds: readonly number[] = []): ClientReply {
    return this.#connection.request(cmd, body, what, fds);
  }

  #live(): void {
    if (this.#closed) throw new VfioClosedError(`device ${this.name}`);
  }
}

/** Region index and offset go on the wire as u32 and u64: refuse what they cannot carry before sending. */
function checkRegionAddress(index: number, offset: number): void {
  if (!Number.isInteger(index) || index < 0 || index > 0xffff_ffff)
    throw new VfioArgumentError(`region index ${String(index).slice(0, 24)} is not a u32`);
  if (!Number.isSafeInteger(offset) || offset < 0)
    throw new VfioArgumentError(`region offset ${String(offset).slice(0, 24)} is not a safe integer >= 0`);
}
