/**
 * The client's DMA on the server side: DMA_MAP/DMA_UNMAP into the session's
 * map table, and the device's DMA into client memory, through the mapping
 * where the client gave an fd, or by DMA_READ/DMA_WRITE requests to the
 * client (blocking until the reply) where it did not.
 */
import type { VfioUserCapabilities } from './capabilities.js';
import { closeQuietly, type IncomingMessage, type MessageChannel } from './channel.js';
import { command, decodeBody, isReply, type VfioUserBody } from './codec.js';
import { DmaMaps } from './dma-maps.js';
import { EINVAL, EIO, ENOTSUP, ETIMEDOUT, VfioUserConnectionError } from './errors.js';
import type { BodyOf } from './message-types.js';
import { commandName, VFIO_DMA_UNMAP_FLAG_ALL, VFIO_USER_DMA_READ, VFIO_USER_DMA_WRITE } from './protocol.js';
import { fail, type Outcome } from './session-outcome.js';
import { traceServerDmaMap, traceServerDmaRw, traceServerDmaUnmap } from './trace.js';

export class SessionDma {
  readonly #channel: MessageChannel;
  readonly #maps: DmaMaps;
  readonly #timeoutMs: number;
  readonly #client: () => VfioUserCapabilities | null;
  readonly #defer: (message: IncomingMessage) => void;
  #nextId = 1;
  #waiting = false;

  /**
   * `client` gives the client's capabilities once negotiated; `defer` queues a
   * client request that arrives while a DMA request waits for its reply.
   */
  constructor(
    channel: MessageChannel,
    limits: { readonly maxDmaMaps: number; readonly dmaTimeoutMs: number },
    client: () => VfioUserCapabilities | null,
    defer: (message: IncomingMessage) => void,
  ) {
    this.#channel = channel;
    this.#maps = new DmaMaps(limits.maxDmaMaps);
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
    this.#maps.add(b.addr, b.size, b.flags, b.offset, fd, closeQuietly);
    return { body: { kind: 'empty' } };
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
