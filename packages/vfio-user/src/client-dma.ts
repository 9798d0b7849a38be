/**
 * Client memory the server may reach by DMA: the regions registered with
 * DMA_MAP, and the answers to the server's DMA_READ/DMA_WRITE from them.
 * Every other request from the server is refused.
 */
import type { IncomingMessage } from './channel.js';
import { decodeBody, errorReply, reply, type VfioUserBody, type VfioUserMessage } from './codec.js';
import { EFAULT, EINVAL, VfioUserProtocolError } from './errors.js';
import { VFIO_USER_DMA_READ, VFIO_USER_DMA_WRITE } from './protocol.js';

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

export class ClientDmaMemory {
  readonly #regions: ClientDmaRegion[] = [];

  add(region: ClientDmaRegion): void {
    this.#regions.push(region);
  }

  /** Forgets the region mapped at exactly `iova` with `size` bytes, if there is one. */
  remove(iova: bigint, size: number): void {
    const i = this.#regions.findIndex((r) => r.iova === iova && r.memory.byteLength === size);
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
      (r) => body.addr >= r.iova && body.addr + count <= r.iova + BigInt(r.memory.byteLength),
    );
    if (!region || (write ? region.write === false : region.read === false)) return errorReply(h, EFAULT);
    const at = Number(body.addr - region.iova);
    if (write) {
      region.memory.set(body.data, at);
      return reply(h, { kind: 'dma-rw', addr: body.addr, count, data: new Uint8Array(0) });
    }
    return reply(h, {
      kind: 'dma-rw',
      addr: body.addr,
      count,
      data: region.memory.slice(at, at + Number(count)),
    });
  }
}
