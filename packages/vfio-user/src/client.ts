/**
 * The vfio-user client backend: a VfioDeviceIo over a socket, so pci-vfio,
 * the CLI and every test drive a vfio-user server exactly as they drive the
 * kernel. The seam is synchronous, so each request blocks on the socket
 * until its reply; while it waits (and, through an event-loop poll, while
 * idle) it answers the server's DMA_READ/DMA_WRITE from the memory the
 * caller registered with `dmaMap`. Error replies become SysErrors with the
 * server's errno, as the kernel's failures are.
 */

import {
  type AccessSize,
  type EventFd,
  MappedArea,
  type MmapProtection,
  type RegionCapability,
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
import {
  VFIO_IRQ_SET_ACTION_MASK,
  VFIO_IRQ_SET_ACTION_TRIGGER,
  VFIO_IRQ_SET_ACTION_UNMASK,
  VFIO_IRQ_SET_DATA_BOOL,
  VFIO_IRQ_SET_DATA_EVENTFD,
  VFIO_IRQ_SET_DATA_NONE,
  VFIO_REGION_INFO_FLAG_MMAP,
} from '@vfio-ts/vfio-sys/uapi';
import { parseCapabilities, type VfioUserCapabilities } from './capabilities.js';
import { closeQuietly, type IncomingMessage, MessageChannel } from './channel.js';
import { command, decodeBody, errorReply, isReply, reply, type VfioUserBody } from './codec.js';
import { EFAULT, EINVAL, EIO, VfioUserConnectionError, VfioUserProtocolError } from './errors.js';
import { type PollHandle, pollReadable } from './poll.js';
import {
  commandName,
  maxMessageSize,
  OUR_MAX_DATA_XFER,
  OUR_MAX_MSG_FDS,
  VFIO_USER_DEVICE_GET_INFO,
  VFIO_USER_DEVICE_GET_IRQ_INFO,
  VFIO_USER_DEVICE_GET_REGION_INFO,
  VFIO_USER_DEVICE_RESET,
  VFIO_USER_DEVICE_SET_IRQS,
  VFIO_USER_DMA_MAP,
  VFIO_USER_DMA_READ,
  VFIO_USER_DMA_UNMAP,
  VFIO_USER_DMA_WRITE,
  VFIO_USER_F_DMA_REGION_READ,
  VFIO_USER_F_DMA_REGION_WRITE,
  VFIO_USER_F_ERROR,
  VFIO_USER_MAJOR,
  VFIO_USER_MINOR,
  VFIO_USER_REGION_READ,
  VFIO_USER_REGION_WRITE,
  VFIO_USER_VERSION,
} from './protocol.js';
import { decodeRegionCapabilities } from './region-caps.js';
import {
  traceDmaMap,
  traceDmaUnmap,
  traceGetInfo,
  traceGetIrqInfo,
  traceGetRegionInfo,
  traceRecvHdr,
  traceRecvRead,
  traceRecvRequest,
  traceRegionRw,
  traceSendWrite,
  traceSetIrqs,
  traceVersion,
} from './trace.js';

/** QEMU's defence against a server that would make it allocate without bound (hw/vfio-user/device.c). */
const MAX_REGIONS = 100;
const MAX_IRQS = 50;

export interface VfioUserClientOptions {
  /** How long one request waits for its reply before the connection is declared dead (default 10 s). */
  readonly timeoutMs?: number;
  /** Name for traces and messages (default `vfio-user:<socket>`). */
  readonly name?: string;
}

/** Client memory the server may reach by DMA (see `dmaMap`). */
export interface ClientDmaRegion {
  /** Bus address (IOVA) the device sees. */
  readonly iova: bigint;
  /** The bytes behind it; the client answers the server's DMA_READ/DMA_WRITE from them. */
  readonly memory: Uint8Array;
  /** An fd (and offset) backing `memory`, sent so the server maps it and DMAs without messages. */
  readonly fd?: { readonly fd: number; readonly offset: number };
  /** What the device may do (default both). */
  readonly read?: boolean;
  readonly write?: boolean;
}

interface RegionEntry {
  readonly info: VfioRegionInfo;
  /** The fd the server sent for mmap, owned here. */
  readonly fd: number | null;
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
  readonly #channel: MessageChannel;
  readonly #timeoutMs: number;
  readonly #regions = new Map<number, RegionEntry>();
  readonly #dma: ClientDmaRegion[] = [];
  #server: VfioUserCapabilities | null = null;
  #info: VfioDeviceInfo | null = null;
  #nextId = 0;
  #idlePoll: PollHandle | null = null;
  #waiting = false;
  #closed = false;

  /** Use `openVfioUserDevice`. Takes ownership of the connected socket `fd`. */
  constructor(fd: number, socketPath: string, options: VfioUserClientOptions = {}) {
    this.socketPath = socketPath;
    this.name = options.name ?? `vfio-user:${socketPath}`;
    this.#timeoutMs = options.timeoutMs ?? 10_000;
    const sockname = socketPath;
    this.#channel = new MessageChannel(fd, {
      maxMessageSize: maxMessageSize(OUR_MAX_DATA_XFER),
      maxFds: OUR_MAX_MSG_FDS,
      hooks: {
        onHeader: (h) => traceRecvHdr.emit(sockname, h.id, h.command, h.size, h.flags),
        onBodyRead: (id, n) => traceRecvRead.emit(id, n),
        onSent: (id, n) => traceSendWrite.emit(id, n),
      },
    });
  }

  /** The server's capabilities from VERSION. */
  get serverCapabilities(): VfioUserCapabilities {
    if (this.#server === null) throw new VfioClosedError(`device ${this.name}`);
    return this.#server;
  }

  /** VERSION: proposes ours, records the server's (its limits bound what we send). */
  negotiate(): void {
    const ours = JSON.stringify({
      capabilities: { max_msg_fds: OUR_MAX_MSG_FDS, max_data_xfer_size: OUR_MAX_DATA_XFER, pgsizes: 4096 },
    });
    const r = this.#request(
      VFIO_USER_VERSION,
      { kind: 'version', major: VFIO_USER_MAJOR, minor: VFIO_USER_MINOR, capabilities: ours },
      'VERSION',
    );
    if (r.body.kind !== 'version') throw this.#badReply('VERSION');
    traceVersion.emit(r.body.major, r.body.minor, r.body.capabilities ?? '');
    if (r.body.major !== VFIO_USER_MAJOR)
      throw new VfioUserProtocolError(
        `server speaks vfio-user ${r.body.major}.${r.body.minor}, we speak ${VFIO_USER_MAJOR}.x`,
      );
    this.#server = parseCapabilities(r.body.capabilities);
    // Answer DMA requests that arrive while nothing waits on the socket (after posted work).
    this.#idlePoll = pollReadable(this.#channel.fd, () => this.#serviceIdle());
    this.#idlePoll.unref();
    // After libuv started watching (it makes the fd non-blocking): waits become one blocking receive.
    this.#channel.useBlockingWaits(Math.min(this.#timeoutMs, 1000));
  }

  deviceInfo(): VfioDeviceInfo {
    this.#live();
    if (this.#info) return this.#info;
    const r = this.#request(
      VFIO_USER_DEVICE_GET_INFO,
      { kind: 'device-info', argsz: 16, flags: 0, numRegions: 0, numIrqs: 0 },
      'DEVICE_GET_INFO',
    );
    if (r.body.kind !== 'device-info') throw this.#badReply('DEVICE_GET_INFO');
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
    let argsz = 32;
    for (let attempt = 0; ; attempt++) {
      const r = this.#request(
        VFIO_USER_DEVICE_GET_REGION_INFO,
        {
          kind: 'region-info',
          argsz,
          flags: 0,
          index,
          capOffset: 0,
          size: 0n,
          offset: 0n,
          tail: new Uint8Array(argsz - 32),
        },
        `DEVICE_GET_REGION_INFO index ${index}`,
      );
      const b = r.body;
      if (b.kind !== 'region-info' || b.index !== index) {
        for (const fd of r.fds) closeQuietly(fd);
        throw this.#badReply('DEVICE_GET_REGION_INFO');
      }
      traceGetRegionInfo.emit(b.index, b.flags, b.size);
      if (b.argsz > argsz && attempt === 0) {
        // Grow and retry with the size the server asked for (bounded like the kernel's).
        for (const fd of r.fds) closeQuietly(fd);
        if (b.argsz > 64 * 1024)
          throw new VfioUserProtocolError(`region ${index} info needs ${b.argsz} bytes`);
        argsz = b.argsz;
        continue;
      }
      if (r.fds.length > 1) {
        for (const fd of r.fds) closeQuietly(fd);
        throw new VfioUserProtocolError(`region ${index} info came with ${r.fds.length} fds`);
      }
      let capabilities: RegionCapability[];
      try {
        capabilities = decodeRegionCapabilities(b);
      } catch (err) {
        for (const fd of r.fds) closeQuietly(fd);
        throw err;
      }
      const fd = r.fds[0] ?? null;
      const size = Number(b.size);
      if (!Number.isSafeInteger(size)) {
        if (fd !== null) closeQuietly(fd);
        throw new VfioUserProtocolError(`region ${index} size 0x${b.size.toString(16)} beyond 2^53`);
      }
      const info: VfioRegionInfo = {
        index,
        // Without an fd there is nothing to map, whatever the flags say.
        flags: fd === null ? b.flags & ~VFIO_REGION_INFO_FLAG_MMAP : b.flags,
        size,
        fdOffset: fd === null ? null : Number(b.offset),
        capabilities,
      };
      this.#regions.set(index, { info, fd });
      return info;
    }
  }

  irqInfo(index: number): VfioIrqInfo {
    this.#live();
    const r = this.#request(
      VFIO_USER_DEVICE_GET_IRQ_INFO,
      { kind: 'irq-info', argsz: 16, flags: 0, index, count: 0 },
      `DEVICE_GET_IRQ_INFO index ${index}`,
    );
    if (r.body.kind !== 'irq-info') throw this.#badReply('DEVICE_GET_IRQ_INFO');
    traceGetIrqInfo.emit(r.body.index, r.body.flags, r.body.count);
    return { index, flags: r.body.flags, count: r.body.count };
  }

  regionRead(index: number, offset: number, size: AccessSize): number {
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
    if (!Number.isInteger(value) || value < 0 || value >= 2 ** (8 * size))
      throw new VfioArgumentError(`value ${value} does not fit ${size} bytes`);
    const data = new Uint8Array(size);
    for (let i = 0; i < size; i++) data[i] = Math.floor(value / 2 ** (8 * i)) & 0xff;
    this.#write(index, offset, data);
  }

  regionWrite64(index: number, offset: number, value: bigint): void {
    const data = new Uint8Array(8);
    new DataView(data.buffer).setBigUint64(0, BigInt.asUintN(64, value), true);
    this.#write(index, offset, data);
  }

  regionReadBlock(index: number, offset: number, length: number): Uint8Array {
    const out = new Uint8Array(length);
    const chunk = this.#maxXfer();
    for (let at = 0; at < length; at += chunk)
      out.set(this.#read(index, offset + at, Math.min(chunk, length - at)), at);
    return out;
  }

  regionWriteBlock(index: number, offset: number, data: Uint8Array): void {
    const chunk = this.#maxXfer();
    for (let at = 0; at < data.byteLength; at += chunk)
      this.#write(index, offset + at, data.subarray(at, Math.min(data.byteLength, at + chunk)));
  }

  regionMmap(index: number, offset: number, size: number, prot: MmapProtection): MappedArea {
    this.#live();
    const info = this.regionInfo(index);
    const entry = this.#regions.get(index)!;
    if (entry.fd === null || (info.flags & VFIO_REGION_INFO_FLAG_MMAP) === 0)
      throw new SysError('mmap', EINVAL, {
        detail: `${this.name} region ${index} is not mmap-able (no fd from the server)`,
      });
    const page = libc.hostPageSize();
    if (!Number.isSafeInteger(offset) || offset < 0 || offset % page !== 0)
      throw new SysError('mmap', EINVAL, {
        detail: `offset 0x${offset.toString(16)} of region ${index} is not page aligned`,
      });
    if (!Number.isSafeInteger(size) || size <= 0 || offset + size > Math.ceil(info.size / page) * page)
      throw new SysError('mmap', EINVAL, {
        detail: `0x${size.toString(16)} bytes at 0x${offset.toString(16)} exceed region ${index}`,
      });
    const sparse = info.capabilities.find((c) => c.kind === 'sparse-mmap');
    if (
      sparse &&
      !sparse.areas.some(
        (a) => offset >= a.offset && offset + size <= Math.ceil((a.offset + a.size) / page) * page,
      )
    )
      throw new SysError('mmap', EINVAL, {
        detail: `0x${size.toString(16)} bytes at 0x${offset.toString(16)} are outside the sparse areas of region ${index}`,
      });
    return MappedArea.map(
      entry.fd,
      info.fdOffset! + offset,
      size,
      prot,
      `${this.name} region ${index} +0x${offset.toString(16)}`,
    );
  }

  setIrqs(req: VfioIrqSet): void {
    this.#live();
    const action =
      req.action === 'mask'
        ? VFIO_IRQ_SET_ACTION_MASK
        : req.action === 'unmask'
          ? VFIO_IRQ_SET_ACTION_UNMASK
          : VFIO_IRQ_SET_ACTION_TRIGGER;
    const data = req.data;
    const what = `DEVICE_SET_IRQS index ${req.index}`;
    if (data.type !== 'eventfd') {
      const bytes =
        data.type === 'bool' ? Uint8Array.from(data.values, (v) => (v ? 1 : 0)) : new Uint8Array(0);
      const flags = action | (data.type === 'bool' ? VFIO_IRQ_SET_DATA_BOOL : VFIO_IRQ_SET_DATA_NONE);
      traceSetIrqs.emit(req.index, req.start, req.count, flags);
      this.#request(
        VFIO_USER_DEVICE_SET_IRQS,
        {
          kind: 'set-irqs',
          argsz: 20 + bytes.byteLength,
          flags,
          index: req.index,
          start: req.start,
          count: req.count,
          data: bytes,
        },
        what,
      );
      return;
    }
    if (data.eventfds.length !== req.count)
      throw new VfioArgumentError(`${what}: ${data.eventfds.length} eventfds for count ${req.count}`);
    const flags = action | VFIO_IRQ_SET_DATA_EVENTFD;
    // As QEMU: runs of attached and of detached vectors, each at most max_msg_fds long (no fds = detach).
    const maxFds = Math.max(1, this.serverCapabilities.maxMsgFds);
    const list = data.eventfds;
    for (let at = 0; at < list.length; ) {
      const attach = list[at] !== null;
      let n = 1;
      while (at + n < list.length && n < maxFds && (list[at + n] !== null) === attach) n++;
      const fds = attach ? list.slice(at, at + n).map((e) => (e as EventFd).fd) : [];
      traceSetIrqs.emit(req.index, req.start + at, n, flags);
      this.#request(
        VFIO_USER_DEVICE_SET_IRQS,
        {
          kind: 'set-irqs',
          argsz: 20,
          flags,
          index: req.index,
          start: req.start + at,
          count: n,
          data: new Uint8Array(0),
        },
        what,
        fds,
      );
      at += n;
    }
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
    const size = BigInt(region.memory.byteLength);
    traceDmaMap.emit(region.iova, size, offset, flags, false);
    this.#request(
      VFIO_USER_DMA_MAP,
      { kind: 'dma-map', argsz: 32, flags, offset, addr: region.iova, size },
      'DMA_MAP',
      region.fd ? [region.fd.fd] : [],
    );
    this.#dma.push(region);
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
    const i = this.#dma.findIndex((r) => r.iova === iova && r.memory.byteLength === size);
    if (i >= 0) this.#dma.splice(i, 1);
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#idlePoll?.close();
    this.#idlePoll = null;
    for (const r of this.#regions.values()) if (r.fd !== null) closeQuietly(r.fd);
    this.#regions.clear();
    this.#dma.length = 0;
    this.#channel.close();
  }

  [Symbol.dispose](): void {
    this.close();
  }

  #maxXfer(): number {
    return Math.min(this.serverCapabilities.maxDataXferSize, OUR_MAX_DATA_XFER);
  }

  #read(index: number, offset: number, count: number): Uint8Array {
    this.#live();
    traceRegionRw.emit(index, offset, count);
    const r = this.#request(
      VFIO_USER_REGION_READ,
      { kind: 'region-rw', offset: BigInt(offset), region: index, count, data: new Uint8Array(0) },
      `REGION_READ region ${index} +0x${offset.toString(16)}`,
    );
    if (r.body.kind !== 'region-rw' || r.body.count !== count) throw this.#badReply('REGION_READ');
    return r.body.data;
  }

  #write(index: number, offset: number, data: Uint8Array): void {
    this.#live();
    traceRegionRw.emit(index, offset, data.byteLength);
    this.#request(
      VFIO_USER_REGION_WRITE,
      { kind: 'region-rw', offset: BigInt(offset), region: index, count: data.byteLength, data },
      `REGION_WRITE region ${index} +0x${offset.toString(16)}`,
    );
  }

  /** Sends a request and blocks until its reply, answering the server's requests meanwhile. */
  #request(
    cmd: number,
    body: VfioUserBody,
    what: string,
    fds: readonly number[] = [],
  ): { body: VfioUserBody; fds: number[] } {
    if (this.#waiting)
      throw new VfioUserConnectionError(`${what} issued while another request waits (re-entrant use)`);
    const id = this.#nextId;
    this.#nextId = (this.#nextId + 1) & 0xffff;
    this.#waiting = true;
    try {
      this.#channel.send(command(id, cmd, body), fds);
      const deadline = Date.now() + this.#timeoutMs;
      for (;;) {
        for (let m = this.#channel.take(); m; m = this.#channel.take()) {
          if (!isReply(m.header.flags)) {
            this.#answer(m);
            continue;
          }
          if (m.header.id !== id || m.header.command !== cmd) {
            for (const fd of m.fds) closeQuietly(fd);
            throw new VfioUserProtocolError(
              `reply id 0x${m.header.id.toString(16)} (${commandName(m.header.command)}) while waiting for 0x${id.toString(16)} (${commandName(cmd)})`,
            );
          }
          if (m.header.flags & VFIO_USER_F_ERROR) {
            for (const fd of m.fds) closeQuietly(fd);
            throw new SysError('vfio-user', m.header.error || EIO, { detail: `${what} on ${this.name}` });
          }
          try {
            return { body: decodeBody(cmd, m.header.flags, m.payload), fds: m.fds };
          } catch (err) {
            for (const fd of m.fds) closeQuietly(fd);
            throw err;
          }
        }
        if (this.#channel.peerClosed)
          throw new VfioUserConnectionError(
            `the vfio-user server on ${this.socketPath} closed the connection during ${what}`,
          );
        const left = deadline - Date.now();
        if (left <= 0)
          throw new VfioUserConnectionError(
            `no reply to ${what} from ${this.socketPath} within ${this.#timeoutMs} ms`,
          );
        this.#waitForBytes(left);
      }
    } finally {
      this.#waiting = false;
    }
  }

  #waitForBytes(timeoutMs: number): void {
    try {
      this.#channel.wait(timeoutMs);
    } catch (err) {
      this.close(); // framing is lost: nothing after this can be trusted
      throw err;
    }
  }

  #pump(): void {
    try {
      this.#channel.pump();
    } catch (err) {
      // Framing is lost: nothing after this can be trusted.
      this.close();
      throw err;
    }
  }

  #serviceIdle(): void {
    if (this.#closed || this.#waiting) return;
    try {
      this.#pump();
      for (let m = this.#channel.take(); m; m = this.#channel.take()) {
        if (isReply(m.header.flags)) {
          for (const fd of m.fds) closeQuietly(fd); // nothing waits for it
          continue;
        }
        this.#answer(m);
      }
      if (this.#channel.peerClosed) {
        this.#idlePoll?.close();
        this.#idlePoll = null;
      }
    } catch {
      // Reported to the next request, which finds the connection closed.
    }
  }

  /** A request from the server: DMA_READ/DMA_WRITE against registered memory; anything else is refused. */
  #answer(m: IncomingMessage): void {
    for (const fd of m.fds) closeQuietly(fd);
    traceRecvRequest.emit(m.header.command);
    const h = m.header;
    let body: VfioUserBody;
    try {
      body = decodeBody(h.command, h.flags, m.payload);
    } catch (err) {
      this.#channel.send(errorReply(h, err instanceof VfioUserProtocolError ? err.errno : EINVAL));
      return;
    }
    if ((h.command !== VFIO_USER_DMA_READ && h.command !== VFIO_USER_DMA_WRITE) || body.kind !== 'dma-rw') {
      this.#channel.send(errorReply(h, EINVAL));
      return;
    }
    const write = h.command === VFIO_USER_DMA_WRITE;
    const count = body.count;
    const region = this.#dma.find(
      (r) => body.addr >= r.iova && body.addr + count <= r.iova + BigInt(r.memory.byteLength),
    );
    if (!region || (write ? region.write === false : region.read === false)) {
      this.#channel.send(errorReply(h, EFAULT));
      return;
    }
    const at = Number(body.addr - region.iova);
    if (write) {
      region.memory.set(body.data, at);
      this.#channel.send(reply(h, { kind: 'dma-rw', addr: body.addr, count, data: new Uint8Array(0) }));
    } else {
      this.#channel.send(
        reply(h, {
          kind: 'dma-rw',
          addr: body.addr,
          count,
          data: region.memory.slice(at, at + Number(count)),
        }),
      );
    }
  }

  #badReply(what: string): VfioUserProtocolError {
    return new VfioUserProtocolError(`${what} reply does not have the expected shape`);
  }

  #live(): void {
    if (this.#closed) throw new VfioClosedError(`device ${this.name}`);
  }
}
