/**
 * Client memory the server may reach by DMA: the regions registered with
 * DMA_MAP, and the answers to the server's DMA_READ/DMA_WRITE from them.
 * Every other request from the server is refused.
 */
import type { MappedArea } from '@vfio-ts/vfio-sys';
import type { IncomingMessage } from './channel.js';
import { decodeBody, errorReply, reply, type VfioUserBody, type VfioUserMessage } from './codec.js';
import { EFAULT, EINVAL, VfioUserProtocolError } from './errors.js';
import { VFIO_USER_DMA_READ, VFIO_USER_DMA_WRITE } from './protocol.js';

/** Client memory the server may reach by DMA (see `dmaMap`). */
export interface ClientDmaRegion {
  /** Bus address (IOVA) the device sees. */
  readonly iova: bigint;
  /**
   * The bytes behind it; the client answers the server's DMA_READ/DMA_WRITE
   * from them. A MappedArea may be of any size (its `u8` is only its first
   * window: pass the area itself for memory over 16 MiB).
   */
  readonly memory: Uint8Array | MappedArea;
  /** An fd (and offset) backing `memory`, sent so the server maps it and DMAs without messages. */
  readonly fd?: { readonly fd: number; readonly offset: number };
  /** What the device may do (default both). */
  readonly read?: boolean;
  readonly write?: boolean;
}

/** How many bytes a region's memory has. */
export function dmaRegionSize(region: ClientDmaRegion): number {
  const m = region.memory;
  return m instanceof Uint8Array ? m.byteLength : m.size;
}

export class ClientDmaMemory {
  readonly #regions: ClientDmaRegion[] = [];

  add(region: ClientDmaRegion): void {
    this.#regions.push(region);
  }

  /** Forgets the region mapped at exactly `iova` with `size` bytes, if there is one. */
  remove(iova: bigint, size: number): void {
    const i = this.#regions.findIndex((r) => r.iova === iova && dmaRegionSize(r) === size);
    if (i >= 0) this.#regions.splice(i, 1);
  }

  clear(): void {
    this.#regions.length = 0;
  }

  /** The reply to a request from the server: DMA_READ/DMA_WRITE against registered memory; anything else is refused. */
  answer(m: IncomingMessage): VfioUserMessage {
    const h = m.header;
    let body: VfioUserBody;
    try {
      body = decodeBody(h.command, h.flags, m.payload);
    } catch (err) {
      return errorReply(h, err instanceof VfioUserProtocolError ? err.errno : EINVAL);
    }
    if ((h.command !== VFIO_USER_DMA_READ && h.command !== VFIO_USER_DMA_WRITE) || body.kind !== 'dma-rw')
      return errorReply(h, EINVAL);
    const write = h.command === VFIO_USER_DMA_WRITE;
    const count = body.count;
    const region = this.#regions.find(
      (r) => body.addr >= r.iova && body.addr + count <= r.iova + BigInt(dmaRegionSize(r)),
    );
    if (!region || (write ? region.write === false : region.read === false)) return errorReply(h, EFAULT);
    const at = Number(body.addr - region.iova);
    const memory = region.memory;
    if (write) {
      if (memory instanceof Uint8Array) memory.set(body.data, at);
      else memory.writeBytes(at, body.data);
      return reply(h, { kind: 'dma-rw', addr: body.addr, count, data: new Uint8Array(0) });
    }
    let data: Uint8Array;
    if (memory instanceof Uint8Array) data = memory.slice(at, at + Number(count));
    else {
      data = new Uint8Array(Number(count));
      memory.readBytes(at, data);
    }
    return reply(h, { kind: 'dma-rw', addr: body.addr, count, data });
  }
}
