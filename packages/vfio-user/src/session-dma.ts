/**
 * The client's DMA on the server side: DMA_MAP/DMA_UNMAP into the session's
 * map table, and the device's DMA into client memory, through the mapping
 * where the client gave an fd, or by DMA_READ/DMA_WRITE requests to the
 * client (blocking until the reply) where it did not.
 *
 * A device behind an IOMMU (an IommuTarget: a kernel device) DMAs by itself:
 * each map's memory also goes into the IOMMU at IOVA = the client's address,
 * and comes out of it before the server unmaps it. Such a device can only
 * reach memory the client gave as an fd, within the IOMMU's IOVA ranges: a
 * map without an fd is refused (ENOTSUP).
 */
import type { VfioUserCapabilities } from './capabilities.js';
import { closeQuietly, type IncomingMessage, type MessageChannel } from './channel.js';
import { command, decodeBody, isReply, type VfioUserBody } from './codec.js';
import { type DmaMapping, DmaMaps } from './dma-maps.js';
import { EINVAL, EIO, ENOTSUP, ERANGE, ETIMEDOUT, VfioUserConnectionError } from './errors.js';
import type { BodyOf } from './message-types.js';
import {
  commandName,
  VFIO_DMA_UNMAP_FLAG_ALL,
  VFIO_USER_DMA_READ,
  VFIO_USER_DMA_WRITE,
  VFIO_USER_F_DMA_REGION_READ,
  VFIO_USER_F_DMA_REGION_WRITE,
} from './protocol.js';
import type { IommuTarget } from './served-device.js';
import { fail, type Outcome } from './session-outcome.js';
import {
  traceServerDmaMap,
  traceServerDmaRw,
  traceServerDmaUnmap,
  traceServerIommuMap,
  traceServerIommuUnmap,
} from './trace.js';

export class SessionDma {
  readonly #channel: MessageChannel;
  readonly #maps: DmaMaps;
  readonly #timeoutMs: number;
  readonly #client: () => VfioUserCapabilities | null;
  readonly #defer: (message: IncomingMessage) => void;
  readonly #iommu: IommuTarget | null;
  /** Maps whose memory is in the IOMMU now (taken out before their memory is unmapped). */
  readonly #inIommu = new Set<DmaMapping>();
  #nextId = 1;
  #waiting = false;

  /**
   * `client` gives the client's capabilities once negotiated; `defer` queues a
   * client request that arrives while a DMA request waits for its reply;
   * `iommu` is the device's IOMMU when it DMAs by itself.
   */
  constructor(
    channel: MessageChannel,
    limits: { readonly maxDmaMaps: number; readonly dmaTimeoutMs: number },
    client: () => VfioUserCapabilities | null,
    defer: (message: IncomingMessage) => void,
    iommu: IommuTarget | null = null,
  ) {
    this.#channel = channel;
    this.#iommu = iommu;
    this.#maps = new DmaMaps(limits.maxDmaMaps, iommu === null ? null : (m) => this.#leaveIommu(m));
    this.#timeoutMs = limits.dmaTimeoutMs;
    this.#client = client;
    this.#defer = defer;
  }

  get mapCount(): number {
    return this.#maps.count;
  }

  /** True while a DMA request to the client waits for its reply (and pumps the channel itself). */
  get waiting(): boolean {
    return this.#waiting;
  }

  /** `fds` are the message's fds: the one taken for the map is removed from the array. */
  map(b: BodyOf<'dma-map'>, fds: number[]): Outcome {
    if (b.argsz !== 32) fail(EINVAL, `DMA_MAP argsz ${b.argsz} (must be 32)`);
    if (fds.length > 1) fail(EINVAL, `DMA_MAP with ${fds.length} fds`);
    const fd = fds.length === 1 ? fds.pop()! : null;
    traceServerDmaMap.emit(b.addr, b.size, b.offset, b.flags, fd ?? -1);
    if (this.#iommu !== null) this.#mapIntoIommu(this.#iommu, b, fd);
    else this.#maps.add(b.addr, b.size, b.flags, b.offset, fd, closeQuietly);
    return { body: { kind: 'empty' } };
  }

  #mapIntoIommu(iommu: IommuTarget, b: BodyOf<'dma-map'>, fd: number | null): void {
    const what = `DMA_MAP [0x${b.addr.toString(16)}, +0x${b.size.toString(16)})`;
    if (fd === null)
      fail(
        ENOTSUP,
        `${what} without an fd: this device DMAs through its IOMMU with no server in the path, so it can only reach client memory given as an fd (QEMU: a shared memory backend, e.g. -object memory-backend-memfd,share=on)`,
      );
    try {
      const ranges = iommu.iovaRanges();
      const last = b.addr + b.size - 1n;
      if (b.size === 0n || !ranges.some((r) => b.addr >= r.start && last <= r.last))
        fail(
          ERANGE,
          `${what} is outside the IOMMU's IOVA ranges (${ranges.map((r) => `0x${r.start.toString(16)}-0x${r.last.toString(16)}`).join(', ') || 'none'})`,
        );
    } catch (err) {
      closeQuietly(fd);
      throw err;
    }
    const mapping = this.#maps.add(b.addr, b.size, b.flags, b.offset, fd, closeQuietly);
    const read = (b.flags & VFIO_USER_F_DMA_REGION_READ) !== 0;
    const write = (b.flags & VFIO_USER_F_DMA_REGION_WRITE) !== 0;
    try {
      traceServerIommuMap.emit(b.addr, b.size, mapping.area!.address, read ? 1 : 0, write ? 1 : 0);
      iommu.iommuMap(b.addr, b.size, mapping.area!.address, read, write);
    } catch (err) {
      this.#maps.remove(b.addr, b.size); // not in the IOMMU: only our mapping goes
      throw err;
    }
    this.#inIommu.add(mapping);
  }

  /** Takes a map's memory out of the IOMMU (before the server unmaps it); throws, keeping it, if the IOMMU refuses. */
  #leaveIommu(mapping: DmaMapping): void {
    if (!this.#inIommu.has(mapping)) return;
    traceServerIommuUnmap.emit(mapping.iova, mapping.size);
    this.#iommu!.iommuUnmap(mapping.iova, mapping.size);
    this.#inIommu.delete(mapping);
  }

  unmap(b: BodyOf<'dma-unmap'>): Outcome {
    if (b.argsz !== 24) fail(EINVAL, `DMA_UNMAP argsz ${b.argsz} (must be 24)`);
    traceServerDmaUnmap.emit(b.addr, b.size, b.flags);
    if (b.flags === VFIO_DMA_UNMAP_FLAG_ALL) {
      if (b.addr !== 0n || b.size !== 0n) fail(EINVAL, 'DMA_UNMAP of all maps needs addr and size 0');
      this.#maps.removeAll();
    } else if (b.flags === 0) {
      this.#maps.remove(b.addr, b.size);
    } else {
      fail(b.flags & 1 ? ENOTSUP : EINVAL, `DMA_UNMAP flags 0x${b.flags.toString(16)}`);
    }
    return { body: b };
  }

  /** Removes every map; returns how many there were. */
  removeAll(): number {
    return this.#maps.removeAll();
  }

  /** Model DMA: through the mapping where the client gave an fd, by message where it did not. */
  access(address: bigint, length: number, data: Uint8Array | null): Uint8Array {
    const write = data !== null;
    const out = write ? data : new Uint8Array(length);
    for (const s of this.#maps.segments(address, length, write)) {
      const area = s.mapping.area;
      const iova = s.mapping.iova + BigInt(s.offset);
      traceServerDmaRw.emit(write ? 'write' : 'read', iova, s.length, area ? 'mmap' : 'message');
      if (area) {
        // Through the area's windows: its u8 is only the first window of a large map.
        if (write) area.writeBytes(s.offset, out.subarray(s.at, s.at + s.length));
        else area.readBytes(s.offset, out.subarray(s.at, s.at + s.length));
        continue;
      }
      const chunk = this.#client()?.maxDataXferSize ?? 1024 * 1024;
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
    const deadline = Date.now() + this.#timeoutMs;
    this.#waiting = true;
    try {
      for (;;) {
        for (let m = this.#channel.take(); m; m = this.#channel.take()) {
          if (isReply(m.header.flags) && m.header.id === id && m.header.command === cmd) {
            for (const fd of m.fds) closeQuietly(fd);
            if (m.header.flags & 0x20)
              fail(m.header.error || EIO, `the client refused ${commandName(cmd)} (errno ${m.header.error})`);
            return decodeBody(cmd, m.header.flags, m.payload);
          }
          this.#defer(m);
        }
        if (this.#channel.peerClosed)
          throw new VfioUserConnectionError(`the client left during ${commandName(cmd)}`);
        const left = deadline - Date.now();
        if (left <= 0) fail(ETIMEDOUT, `no reply to ${commandName(cmd)} within ${this.#timeoutMs} ms`);
        this.#channel.wait(left);
      }
    } finally {
      this.#waiting = false;
    }
  }
}
