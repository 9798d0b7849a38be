/**
 * One client of the server: reads its messages in order, answers each from
 * the device, and keeps what the client gave (DMA maps, eventfds in the
 * device) so that all of it is released when the client goes. The device's
 * DMA reaches this client's memory through the maps, or, for fd-less maps,
 * through DMA_READ/DMA_WRITE requests sent while the current request waits.
 */
import type { DmaHost } from '@vfio-ts/plugin-host';
import { EventFd, SysError, type VfioDeviceIo, VfioError, type VfioIrqSet } from '@vfio-ts/vfio-sys';
import {
  VFIO_IRQ_SET_ACTION_MASK,
  VFIO_IRQ_SET_ACTION_TRIGGER,
  VFIO_IRQ_SET_ACTION_UNMASK,
  VFIO_IRQ_SET_DATA_BOOL,
  VFIO_IRQ_SET_DATA_EVENTFD,
  VFIO_IRQ_SET_DATA_NONE,
  VFIO_PCI_MSI_IRQ_INDEX,
  VFIO_PCI_MSIX_IRQ_INDEX,
  VFIO_REGION_INFO_FLAG_CAPS,
  VFIO_REGION_INFO_FLAG_MMAP,
} from '@vfio-ts/vfio-sys/uapi';
import { parseCapabilities, type VfioUserCapabilities } from './capabilities.js';
import { closeQuietly, type IncomingMessage, type MessageChannel } from './channel.js';
import {
  checkHeaderFlags,
  command,
  decodeBody,
  errorReply,
  isReply,
  reply,
  type VfioUserBody,
} from './codec.js';
import { DmaMaps } from './dma-maps.js';
import {
  E2BIG,
  EFAULT,
  EINVAL,
  EIO,
  ENOTSUP,
  ETIMEDOUT,
  VfioUserConnectionError,
  VfioUserProtocolError,
} from './errors.js';
import {
  commandName,
  VFIO_DMA_UNMAP_FLAG_ALL,
  VFIO_USER_DEVICE_GET_INFO,
  VFIO_USER_DEVICE_GET_IRQ_INFO,
  VFIO_USER_DEVICE_GET_REGION_INFO,
  VFIO_USER_DEVICE_GET_REGION_IO_FDS,
  VFIO_USER_DEVICE_RESET,
  VFIO_USER_DEVICE_SET_IRQS,
  VFIO_USER_DMA_MAP,
  VFIO_USER_DMA_READ,
  VFIO_USER_DMA_UNMAP,
  VFIO_USER_DMA_WRITE,
  VFIO_USER_F_NO_REPLY,
  VFIO_USER_MAJOR,
  VFIO_USER_MINOR,
  VFIO_USER_REGION_READ,
  VFIO_USER_REGION_WRITE,
  VFIO_USER_VERSION,
} from './protocol.js';
import { encodeRegionCapabilities } from './region-caps.js';
import { dmaTargetOf, regionFdOf } from './served-device.js';
import {
  traceServerDmaMap,
  traceServerDmaRw,
  traceServerDmaUnmap,
  traceServerError,
  traceServerRequest,
} from './trace.js';

export interface SessionLimits {
  readonly maxMsgFds: number;
  readonly maxDataXferSize: number;
  readonly maxDmaMaps: number;
  /** How long a server-to-client DMA request may wait for its reply. */
  readonly dmaTimeoutMs: number;
}

type Outcome = { body: VfioUserBody; fds?: number[] } | { errno: number };

function fail(errno: number, message: string): never {
  throw new VfioUserProtocolError(message, { errno });
}

function errnoOf(err: unknown): number {
  if (err instanceof VfioUserProtocolError) return err.errno;
  if (err instanceof SysError) return err.errno;
  if (err instanceof VfioError) return err.code === 'ERR_MODEL_NO_DMA' ? EFAULT : EINVAL;
  return EIO;
}

function toNumber(value: bigint, what: string): number {
  if (value > BigInt(Number.MAX_SAFE_INTEGER)) fail(EINVAL, `${what} 0x${value.toString(16)} beyond 2^53`);
  return Number(value);
}

export class ServerSession {
  readonly #device: VfioDeviceIo;
  readonly #channel: MessageChannel;
  readonly #limits: SessionLimits;
  readonly #dma: DmaMaps;
  readonly #inbox: IncomingMessage[] = [];
  /** IRQ indexes the client attached eventfds to: disabled again when it leaves. */
  readonly #irqIndexes = new Set<number>();
  /** The client's MSI/MSI-X eventfds by index (ours: the device holds its own dups), and how many vectors the device has enabled. */
  readonly #vectors = new Map<number, (EventFd | null)[]>();
  readonly #enabledVectors = new Map<number, number>();
  #client: VfioUserCapabilities | null = null;
  #numRegions: number | undefined;
  #nextId = 1;
  #busy = false;
  #closed = false;
  readonly #onError: (err: unknown) => void;

  constructor(
    device: VfioDeviceIo,
    channel: MessageChannel,
    limits: SessionLimits,
    onError: (err: unknown) => void,
  ) {
    this.#device = device;
    this.#channel = channel;
    this.#limits = limits;
    this.#dma = new DmaMaps(limits.maxDmaMaps);
    this.#onError = onError;
    const host: DmaHost = {
      read: (address, length) => this.#dmaAccess(address, length, null),
      write: (address, data) => {
        this.#dmaAccess(address, data.byteLength, data);
      },
    };
    dmaTargetOf(device)?.attachDmaHost(host);
  }

  get dmaMapCount(): number {
    return this.#dma.count;
  }

  /**
   * Reads what arrived and answers it. Returns false when the connection is
   * over (peer closed, or a framing error closed it): the caller ends the session.
   */
  service(): boolean {
    return this.#service(() => this.#channel.pump());
  }

  /**
   * Waits up to `holdMs` (a blocking receive) for the client's next bytes and
   * answers what arrived. Returns 'idle' when nothing came in time, 'closed'
   * when the connection is over.
   */
  hold(holdMs: number): 'served' | 'idle' | 'closed' {
    let idle = false;
    const open = this.#service(() => {
      idle = !this.#channel.wait(holdMs);
    });
    return !open ? 'closed' : idle ? 'idle' : 'served';
  }

  #service(read: () => void): boolean {
    if (this.#closed) return false;
    if (this.#busy) return true; // a DMA wait inside a request is pumping already
    try {
      read();
    } catch (err) {
      this.#onError(err);
      return false;
    }
    for (let m = this.#channel.take(); m; m = this.#channel.take()) this.#inbox.push(m);
    while (this.#inbox.length > 0 && !this.#closed) {
      const message = this.#inbox.shift()!;
      try {
        this.#dispatch(message);
      } catch (err) {
        // Only transport failures escape dispatch: the connection cannot continue.
        this.#onError(err);
        return false;
      }
    }
    return !this.#channel.peerClosed;
  }

  /** Releases everything the client gave: DMA maps, eventfds in the device, queued fds. Returns what was released. */
  close(): { dmaMaps: number; irqIndexes: number } {
    if (this.#closed) return { dmaMaps: 0, irqIndexes: 0 };
    this.#closed = true;
    dmaTargetOf(this.#device)?.attachDmaHost(null);
    const irqIndexes = this.#irqIndexes.size;
    for (const index of this.#irqIndexes) {
      try {
        this.#device.setIrqs({ index, action: 'trigger', start: 0, count: 0, data: { type: 'none' } });
      } catch {
        // The device refused the disable (closed meanwhile): its references go with it.
      }
    }
    this.#irqIndexes.clear();
    for (const index of [...this.#vectors.keys()]) this.#dropVectors(index);
    for (const m of this.#inbox) for (const fd of m.fds) closeQuietly(fd);
    this.#inbox.length = 0;
    const dmaMaps = this.#dma.removeAll();
    return { dmaMaps, irqIndexes };
  }

  #dispatch(message: IncomingMessage): void {
    const { header, payload, fds } = message;
    if (traceServerRequest.enabled)
      traceServerRequest.emit(header.id, commandName(header.command), header.size, header.flags, fds.length);
    if (isReply(header.flags)) {
      // A reply we did not wait for (late, after a DMA timeout) or never asked for.
      for (const fd of fds) closeQuietly(fd);
      traceServerError.emit(header.id, commandName(header.command), EINVAL, 'unexpected reply dropped');
      return;
    }
    let outcome: Outcome;
    const taken: number[] = [...fds];
    try {
      checkHeaderFlags(header);
      const body = decodeBody(header.command, header.flags, payload);
      outcome = this.#handle(header.command, body, taken);
    } catch (err) {
      if (err instanceof VfioUserConnectionError || (err instanceof VfioUserProtocolError && err.fatal))
        throw err;
      outcome = { errno: errnoOf(err) };
      traceServerError.emit(header.id, commandName(header.command), outcome.errno, (err as Error).message);
    } finally {
      for (const fd of taken) closeQuietly(fd); // fds a handler did not consume
    }
    if (header.flags & VFIO_USER_F_NO_REPLY) return;
    if ('errno' in outcome) this.#channel.send(errorReply(header, outcome.errno));
    else this.#channel.send(reply(header, outcome.body), outcome.fds ?? []);
  }

  /** Answers one request. `fds` are the message's fds: a handler that keeps one removes it from the array. */
  #handle(cmd: number, body: VfioUserBody, fds: number[]): Outcome {
    if (cmd !== VFIO_USER_VERSION && this.#client === null)
      fail(EINVAL, `${commandName(cmd)} before VERSION negotiation`);
    if (cmd !== VFIO_USER_DMA_MAP && cmd !== VFIO_USER_DEVICE_SET_IRQS && fds.length > 0)
      fail(EINVAL, `${commandName(cmd)} carries ${fds.length} unexpected fds`);
    switch (cmd) {
      case VFIO_USER_VERSION:
        return this.#version(body as Extract<VfioUserBody, { kind: 'version' }>);
      case VFIO_USER_DMA_MAP:
        return this.#dmaMap(body as Extract<VfioUserBody, { kind: 'dma-map' }>, fds);
      case VFIO_USER_DMA_UNMAP:
        return this.#dmaUnmap(body as Extract<VfioUserBody, { kind: 'dma-unmap' }>);
      case VFIO_USER_DEVICE_GET_INFO: {
        const b = body as Extract<VfioUserBody, { kind: 'device-info' }>;
        if (b.argsz < 16) fail(EINVAL, `DEVICE_GET_INFO argsz ${b.argsz} < 16`);
        const info = this.#device.deviceInfo();
        return {
          body: {
            kind: 'device-info',
            argsz: 16,
            flags: info.flags,
            numRegions: info.numRegions,
            numIrqs: info.numIrqs,
          },
        };
      }
      case VFIO_USER_DEVICE_GET_REGION_INFO:
        return this.#regionInfo(body as Extract<VfioUserBody, { kind: 'region-info' }>);
      case VFIO_USER_DEVICE_GET_REGION_IO_FDS: {
        const b = body as Extract<VfioUserBody, { kind: 'region-io-fds' }>;
        if (b.argsz < 16 || b.flags !== 0 || b.count !== 0)
          fail(EINVAL, 'GET_REGION_IO_FDS needs argsz >= 16, flags 0, count 0');
        this.#checkRegionIndex(b.index);
        // No ioeventfds or ioregionfds: every region is reached by messages or mmap.
        return {
          body: { kind: 'region-io-fds', argsz: 16, flags: 0, index: b.index, count: 0, subRegions: [] },
        };
      }
      case VFIO_USER_DEVICE_GET_IRQ_INFO: {
        const b = body as Extract<VfioUserBody, { kind: 'irq-info' }>;
        if (b.argsz < 16) fail(EINVAL, `GET_IRQ_INFO argsz ${b.argsz} < 16`);
        if (b.index >= this.#device.deviceInfo().numIrqs) fail(EINVAL, `IRQ index ${b.index} out of range`);
        const info = this.#device.irqInfo(b.index);
        return {
          body: { kind: 'irq-info', argsz: 16, flags: info.flags, index: b.index, count: info.count },
        };
      }
      case VFIO_USER_DEVICE_SET_IRQS:
        return this.#setIrqs(body as Extract<VfioUserBody, { kind: 'set-irqs' }>, fds);
      case VFIO_USER_REGION_READ:
        return this.#regionRead(body as Extract<VfioUserBody, { kind: 'region-rw' }>);
      case VFIO_USER_REGION_WRITE:
        return this.#regionWrite(body as Extract<VfioUserBody, { kind: 'region-rw' }>);
      case VFIO_USER_DEVICE_RESET:
        this.#device.reset();
        return { body: { kind: 'empty' } };
      default:
        // DMA_READ/DMA_WRITE are ours to send; REGION_WRITE_MULTI (never advertised), DEVICE_FEATURE,
        // migration, the obsolete DIRTY_PAGES and unknown numbers are not implemented.
        return { errno: ENOTSUP };
    }
  }

  #version(b: Extract<VfioUserBody, { kind: 'version' }>): Outcome {
    if (b.major !== VFIO_USER_MAJOR) fail(ENOTSUP, `protocol major ${b.major} (we speak ${VFIO_USER_MAJOR})`);
    if (this.#client !== null) fail(EINVAL, 'VERSION sent twice');
    const client = parseCapabilities(b.capabilities);
    this.#client = client;
    const caps = JSON.stringify({
      capabilities: {
        max_msg_fds: this.#limits.maxMsgFds,
        max_data_xfer_size: this.#limits.maxDataXferSize,
        max_dma_maps: this.#limits.maxDmaMaps,
        pgsizes: 4096,
      },
    });
    return {
      body: {
        kind: 'version',
        major: VFIO_USER_MAJOR,
        minor: Math.min(b.minor, VFIO_USER_MINOR),
        capabilities: caps,
      },
    };
  }

  #dmaMap(b: Extract<VfioUserBody, { kind: 'dma-map' }>, fds: number[]): Outcome {
    if (b.argsz !== 32) fail(EINVAL, `DMA_MAP argsz ${b.argsz} (must be 32)`);
    if (fds.length > 1) fail(EINVAL, `DMA_MAP with ${fds.length} fds`);
    const fd = fds.length === 1 ? fds.pop()! : null;
    traceServerDmaMap.emit(b.addr, b.size, b.offset, b.flags, fd ?? -1);
    this.#dma.add(b.addr, b.size, b.flags, b.offset, fd, closeQuietly);
    return { body: { kind: 'empty' } };
  }

  #dmaUnmap(b: Extract<VfioUserBody, { kind: 'dma-unmap' }>): Outcome {
    if (b.argsz !== 24) fail(EINVAL, `DMA_UNMAP argsz ${b.argsz} (must be 24)`);
    traceServerDmaUnmap.emit(b.addr, b.size, b.flags);
    if (b.flags === VFIO_DMA_UNMAP_FLAG_ALL) {
      if (b.addr !== 0n || b.size !== 0n) fail(EINVAL, 'DMA_UNMAP of all maps needs addr and size 0');
      this.#dma.removeAll();
    } else if (b.flags === 0) {
      this.#dma.remove(b.addr, b.size);
    } else {
      fail(b.flags & 1 ? ENOTSUP : EINVAL, `DMA_UNMAP flags 0x${b.flags.toString(16)}`);
    }
    return { body: b };
  }

  #checkRegionIndex(index: number): void {
    // Region and IRQ counts are fixed for a device's life: asked once.
    this.#numRegions ??= this.#device.deviceInfo().numRegions;
    if (index >= this.#numRegions) fail(EINVAL, `region index ${index} out of range`);
  }

  #regionInfo(b: Extract<VfioUserBody, { kind: 'region-info' }>): Outcome {
    if (b.argsz < 32) fail(EINVAL, `GET_REGION_INFO argsz ${b.argsz} < 32`);
    this.#checkRegionIndex(b.index);
    const info = this.#device.regionInfo(b.index);
    let flags = info.flags & ~VFIO_REGION_INFO_FLAG_CAPS;
    let shared: { fd: number; offset: number } | null = null;
    if (flags & VFIO_REGION_INFO_FLAG_MMAP) {
      shared = (this.#client?.maxMsgFds ?? 0) > 0 ? regionFdOf(this.#device, b.index) : null;
      if (shared === null) flags &= ~VFIO_REGION_INFO_FLAG_MMAP; // no fd to share: the slow path serves it
    }
    const caps = info.capabilities.filter((c) => shared !== null || c.kind !== 'sparse-mmap');
    const { tail, argsz } = encodeRegionCapabilities(caps);
    const base = {
      kind: 'region-info' as const,
      index: b.index,
      size: BigInt(info.size),
      offset: BigInt(shared?.offset ?? 0),
    };
    if (b.argsz < argsz) {
      // Grow-and-retry: say how much is needed; no capabilities and no fd until then (as libvfio-user).
      return { body: { ...base, argsz, flags, capOffset: 0, tail: new Uint8Array(0) } };
    }
    return {
      body: {
        ...base,
        argsz,
        flags: caps.length > 0 ? flags | VFIO_REGION_INFO_FLAG_CAPS : flags,
        capOffset: caps.length > 0 ? 32 : 0,
        tail,
      },
      fds: shared ? [shared.fd] : [],
    };
  }

  #setIrqs(b: Extract<VfioUserBody, { kind: 'set-irqs' }>, fds: number[]): Outcome {
    const dataType = b.flags & (VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_DATA_BOOL | VFIO_IRQ_SET_DATA_EVENTFD);
    const actionType =
      b.flags & (VFIO_IRQ_SET_ACTION_MASK | VFIO_IRQ_SET_ACTION_UNMASK | VFIO_IRQ_SET_ACTION_TRIGGER);
    const single = (x: number) => x !== 0 && (x & (x - 1)) === 0;
    if (!single(dataType) || !single(actionType) || (b.flags & ~(dataType | actionType)) !== 0)
      fail(EINVAL, `SET_IRQS flags 0x${b.flags.toString(16)}: exactly one data type and one action`);
    if (b.argsz !== 20 + b.data.byteLength)
      fail(EINVAL, `SET_IRQS argsz ${b.argsz} with ${b.data.byteLength} data bytes`);
    if (b.index >= this.#device.deviceInfo().numIrqs) fail(EINVAL, `IRQ index ${b.index} out of range`);
    const action =
      actionType === VFIO_IRQ_SET_ACTION_MASK
        ? 'mask'
        : actionType === VFIO_IRQ_SET_ACTION_UNMASK
          ? 'unmask'
          : 'trigger';
    const base = { index: b.index, action, start: b.start, count: b.count } as const;
    if (dataType === VFIO_IRQ_SET_DATA_NONE) {
      if (b.data.byteLength !== 0 || fds.length !== 0) fail(EINVAL, 'SET_IRQS DATA_NONE carries data or fds');
      this.#device.setIrqs({ ...base, data: { type: 'none' } });
      if (b.count === 0 && action === 'trigger') {
        this.#irqIndexes.delete(b.index);
        this.#dropVectors(b.index);
      }
      return { body: { kind: 'empty' } };
    }
    if (dataType === VFIO_IRQ_SET_DATA_BOOL) {
      if (b.data.byteLength !== b.count || fds.length !== 0)
        fail(EINVAL, 'SET_IRQS DATA_BOOL needs count bytes and no fds');
      this.#device.setIrqs({ ...base, data: { type: 'bool', values: [...b.data].map((x) => x !== 0) } });
      return { body: { kind: 'empty' } };
    }
    if (b.data.byteLength !== 0) fail(EINVAL, 'SET_IRQS DATA_EVENTFD passes fds as SCM_RIGHTS, not as data');
    if (fds.length !== 0 && fds.length !== b.count)
      fail(EINVAL, `SET_IRQS with ${fds.length} fds for ${b.count} vectors (all or none)`);
    const eventfds = fds.splice(0).map((fd) => EventFd.adopt(fd));
    if (
      action === 'trigger' &&
      b.count > 0 &&
      (b.index === VFIO_PCI_MSI_IRQ_INDEX || b.index === VFIO_PCI_MSIX_IRQ_INDEX)
    ) {
      this.#setVectors(b.index, b.start, b.count, eventfds);
      return { body: { kind: 'empty' } };
    }
    // The device takes its own dup of each eventfd; ours are closed once the call returns.
    try {
      const request: VfioIrqSet = {
        ...base,
        data: { type: 'eventfd', eventfds: eventfds.length > 0 ? eventfds : new Array(b.count).fill(null) },
      };
      this.#device.setIrqs(request);
    } finally {
      for (const e of eventfds) e.close();
    }
    if (action === 'trigger' && eventfds.length > 0) this.#irqIndexes.add(b.index);
    return { body: { kind: 'empty' } };
  }

  /**
   * MSI/MSI-X eventfds. A vfio-user client sets them in pieces (QEMU sends
   * runs of attached and of detached vectors, at most max_msg_fds each),
   * while the device, like Linux vfio-pci, sizes MSI/MSI-X when it enables
   * them: so the server keeps the client's vector table and gives the device
   * the whole table each time, disabling and enabling again to grow it (what
   * QEMU does with the kernel). Takes ownership of `eventfds`.
   */
  #setVectors(index: number, start: number, count: number, eventfds: EventFd[]): void {
    const old = this.#vectors.get(index) ?? [];
    const table: (EventFd | null)[] = Array.from(
      { length: Math.max(old.length, start + count) },
      (_, i) => old[i] ?? null,
    );
    for (let i = 0; i < count; i++) table[start + i] = eventfds[i] ?? null;
    const enabled = this.#enabledVectors.get(index) ?? 0;
    try {
      if (enabled > 0 && table.length > enabled) {
        this.#device.setIrqs({ index, action: 'trigger', start: 0, count: 0, data: { type: 'none' } });
        this.#enabledVectors.set(index, 0);
      }
      this.#device.setIrqs({
        index,
        action: 'trigger',
        start: 0,
        count: table.length,
        data: { type: 'eventfd', eventfds: table },
      });
    } catch (err) {
      for (const e of eventfds) e.close();
      throw err;
    }
    for (let i = start; i < start + count && i < old.length; i++)
      if (old[i] && old[i] !== table[i]) old[i]!.close();
    this.#vectors.set(index, table);
    this.#enabledVectors.set(index, table.length);
    this.#irqIndexes.add(index);
  }

  #dropVectors(index: number): void {
    for (const e of this.#vectors.get(index) ?? []) e?.close();
    this.#vectors.delete(index);
    this.#enabledVectors.delete(index);
  }

  #access(b: Extract<VfioUserBody, { kind: 'region-rw' }>): { offset: number; count: number } {
    this.#checkRegionIndex(b.region);
    if (b.count === 0) fail(EINVAL, 'region access of 0 bytes');
    if (b.count > this.#limits.maxDataXferSize)
      fail(E2BIG, `region access of ${b.count} bytes (max_data_xfer_size ${this.#limits.maxDataXferSize})`);
    return { offset: toNumber(b.offset, 'region offset'), count: b.count };
  }

  #regionRead(b: Extract<VfioUserBody, { kind: 'region-rw' }>): Outcome {
    const { offset, count } = this.#access(b);
    const d = this.#device;
    let data: Uint8Array;
    if (count === 1 || count === 2 || count === 4) {
      data = new Uint8Array(count);
      const v = d.regionRead(b.region, offset, count);
      for (let i = 0; i < count; i++) data[i] = Math.floor(v / 2 ** (8 * i)) & 0xff;
    } else if (count === 8) {
      data = new Uint8Array(8);
      new DataView(data.buffer).setBigUint64(0, d.regionRead64(b.region, offset), true);
    } else {
      data = d.regionReadBlock(b.region, offset, count);
    }
    return { body: { kind: 'region-rw', offset: b.offset, region: b.region, count, data } };
  }

  #regionWrite(b: Extract<VfioUserBody, { kind: 'region-rw' }>): Outcome {
    const { offset, count } = this.#access(b);
    const d = this.#device;
    if (count === 1 || count === 2 || count === 4) {
      let v = 0;
      for (let i = count - 1; i >= 0; i--) v = v * 256 + b.data[i]!;
      d.regionWrite(b.region, offset, v, count);
    } else if (count === 8) {
      d.regionWrite64(
        b.region,
        offset,
        new DataView(b.data.buffer, b.data.byteOffset, 8).getBigUint64(0, true),
      );
    } else {
      d.regionWriteBlock(b.region, offset, b.data);
    }
    return {
      body: { kind: 'region-rw', offset: b.offset, region: b.region, count, data: new Uint8Array(0) },
    };
  }

  /** Model DMA: through the mapping where the client gave an fd, by message where it did not. */
  #dmaAccess(address: bigint, length: number, data: Uint8Array | null): Uint8Array {
    if (this.#closed) throw new VfioUserConnectionError('DMA after the client disconnected');
    const write = data !== null;
    const out = write ? data : new Uint8Array(length);
    for (const s of this.#dma.segments(address, length, write)) {
      const area = s.mapping.area;
      const iova = s.mapping.iova + BigInt(s.offset);
      traceServerDmaRw.emit(write ? 'write' : 'read', iova, s.length, area ? 'mmap' : 'message');
      if (area) {
        // Through the area's windows: its u8 is only the first window of a large map.
        if (write) area.writeBytes(s.offset, out.subarray(s.at, s.at + s.length));
        else area.readBytes(s.offset, out.subarray(s.at, s.at + s.length));
        continue;
      }
      const chunk = this.#client?.maxDataXferSize ?? 1024 * 1024;
      for (let done = 0; done < s.length; done += chunk) {
        const n = Math.min(chunk, s.length - done);
        const addr = iova + BigInt(done);
        if (write) {
          this.#askClient(VFIO_USER_DMA_WRITE, {
            kind: 'dma-rw',
            addr,
            count: BigInt(n),
            data: out.subarray(s.at + done, s.at + done + n),
          });
        } else {
          const r = this.#askClient(VFIO_USER_DMA_READ, {
            kind: 'dma-rw',
            addr,
            count: BigInt(n),
            data: new Uint8Array(0),
          });
          if (r.kind !== 'dma-rw' || r.data.byteLength !== n) fail(EIO, 'DMA_READ reply of the wrong size');
          out.set(r.data, s.at + done);
        }
      }
    }
    return out;
  }

  /** Sends a request to the client and blocks until its reply; client requests arriving meanwhile wait their turn. */
  #askClient(cmd: number, body: VfioUserBody): VfioUserBody {
    const id = this.#nextId;
    this.#nextId = (this.#nextId + 1) & 0xffff;
    this.#channel.send(command(id, cmd, body));
    const deadline = Date.now() + this.#limits.dmaTimeoutMs;
    this.#busy = true;
    try {
      for (;;) {
        for (let m = this.#channel.take(); m; m = this.#channel.take()) {
          if (isReply(m.header.flags) && m.header.id === id && m.header.command === cmd) {
            for (const fd of m.fds) closeQuietly(fd);
            if (m.header.flags & 0x20)
              fail(m.header.error || EIO, `the client refused ${commandName(cmd)} (errno ${m.header.error})`);
            return decodeBody(cmd, m.header.flags, m.payload);
          }
          this.#inbox.push(m);
        }
        if (this.#channel.peerClosed)
          throw new VfioUserConnectionError(`the client left during ${commandName(cmd)}`);
        const left = deadline - Date.now();
        if (left <= 0)
          fail(ETIMEDOUT, `no reply to ${commandName(cmd)} within ${this.#limits.dmaTimeoutMs} ms`);
        this.#channel.wait(left);
      }
    } finally {
      this.#busy = false;
    }
  }
}
