/**
 * One client of the server: reads its messages in order, answers each from
 * the device, and keeps what the client gave (DMA maps, eventfds in the
 * device) so that all of it is released when the client goes. The device's
 * DMA reaches this client's memory through the maps, or, for fd-less maps,
 * through DMA_READ/DMA_WRITE requests sent while the current request waits.
 *
 * This module negotiates VERSION and dispatches; the requests are answered
 * by area: session-device (device and regions), session-irqs, session-dma.
 */
import type { DmaHost } from '@vfio-ts/plugin-host';
import type { VfioDeviceIo } from '@vfio-ts/vfio-sys';
import { parseCapabilities, type VfioUserCapabilities } from './capabilities.js';
import { closeQuietly, type IncomingMessage, type MessageChannel } from './channel.js';
import { checkHeaderFlags, decodeBody, errorReply, isReply, reply, type VfioUserBody } from './codec.js';
import { EINVAL, ENOTSUP, VfioUserConnectionError, VfioUserProtocolError } from './errors.js';
import type { BodyOf } from './message-types.js';
import {
  commandName,
  VFIO_USER_DEVICE_GET_INFO,
  VFIO_USER_DEVICE_GET_IRQ_INFO,
  VFIO_USER_DEVICE_GET_REGION_INFO,
  VFIO_USER_DEVICE_GET_REGION_IO_FDS,
  VFIO_USER_DEVICE_RESET,
  VFIO_USER_DEVICE_SET_IRQS,
  VFIO_USER_DMA_MAP,
  VFIO_USER_DMA_UNMAP,
  VFIO_USER_F_NO_REPLY,
  VFIO_USER_MAJOR,
  VFIO_USER_MINOR,
  VFIO_USER_REGION_READ,
  VFIO_USER_REGION_WRITE,
  VFIO_USER_VERSION,
} from './protocol.js';
import { clientLifecycleOf, dmaTargetOf, iommuTargetOf } from './served-device.js';
import { DeviceRequests } from './session-device.js';
import { SessionDma } from './session-dma.js';
import { ClientIrqs } from './session-irqs.js';
import { errnoOf, fail, type Outcome } from './session-outcome.js';
import { traceServerError, traceServerRequest } from './trace.js';

export interface SessionLimits {
  readonly maxMsgFds: number;
  readonly maxDataXferSize: number;
  readonly maxDmaMaps: number;
  /** How long a server-to-client DMA request may wait for its reply. */
  readonly dmaTimeoutMs: number;
}

export class ServerSession {
  readonly #device: VfioDeviceIo;
  readonly #channel: MessageChannel;
  readonly #limits: SessionLimits;
  readonly #inbox: IncomingMessage[] = [];
  readonly #requests: DeviceRequests;
  readonly #irqs: ClientIrqs;
  readonly #dma: SessionDma;
  #client: VfioUserCapabilities | null = null;
  #closed = false;
  /** True while #service dispatches: requests deferred then are answered before it returns. */
  #servicing = false;
  #wakeQueued = false;
  readonly #wake: () => void;
  readonly #onError: (err: unknown) => void;

  constructor(
    device: VfioDeviceIo,
    channel: MessageChannel,
    limits: SessionLimits,
    onError: (err: unknown) => void,
    wake: () => void = () => {},
  ) {
    this.#wake = wake;
    this.#device = device;
    this.#channel = channel;
    this.#limits = limits;
    const client = () => this.#client;
    this.#requests = new DeviceRequests(device, limits.maxDataXferSize, client);
    this.#irqs = new ClientIrqs(device);
    this.#dma = new SessionDma(channel, limits, client, (m) => this.#inbox.push(m), iommuTargetOf(device));
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
    return this.#dma.mapCount;
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
    if (this.#dma.waiting) return true; // a DMA wait inside a request is pumping already
    try {
      read();
    } catch (err) {
      this.#onError(err);
      return false;
    }
    for (let m = this.#channel.take(); m; m = this.#channel.take()) this.#inbox.push(m);
    this.#servicing = true;
    try {
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
    } finally {
      this.#servicing = false;
    }
    return !this.#channel.peerClosed;
  }

  /**
   * Releases everything the client gave, in this order: eventfds in the
   * device (its IRQ indexes disabled), the device's own cleanup for the next
   * client (ClientLifecycle: a kernel device turns bus mastering off and
   * resets), then DMA maps (out of the IOMMU, then unmapped), queued fds.
   * Returns what was released and what the device did.
   */
  close(): { dmaMaps: number; irqIndexes: number; device: string | null } {
    if (this.#closed) return { dmaMaps: 0, irqIndexes: 0, device: null };
    this.#closed = true;
    dmaTargetOf(this.#device)?.attachDmaHost(null);
    const irqIndexes = this.#irqs.release();
    let device: string | null = null;
    const lifecycle = clientLifecycleOf(this.#device);
    if (lifecycle !== null) {
      try {
        device = lifecycle.clientGone();
      } catch (err) {
        device = `cleanup failed: ${(err as Error).message}`;
      }
    }
    for (const m of this.#inbox) for (const fd of m.fds) closeQuietly(fd);
    this.#inbox.length = 0;
    const dmaMaps = this.#dma.removeAll();
    return { dmaMaps, irqIndexes, device };
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
        return this.#version(body as BodyOf<'version'>);
      case VFIO_USER_DMA_MAP:
        return this.#dma.map(body as BodyOf<'dma-map'>, fds);
      case VFIO_USER_DMA_UNMAP:
        return this.#dma.unmap(body as BodyOf<'dma-unmap'>);
      case VFIO_USER_DEVICE_GET_INFO:
        return this.#requests.deviceInfo(body as BodyOf<'device-info'>);
      case VFIO_USER_DEVICE_GET_REGION_INFO:
        return this.#requests.regionInfo(body as BodyOf<'region-info'>);
      case VFIO_USER_DEVICE_GET_REGION_IO_FDS:
        return this.#requests.regionIoFds(body as BodyOf<'region-io-fds'>);
      case VFIO_USER_DEVICE_GET_IRQ_INFO:
        return this.#irqs.irqInfo(body as BodyOf<'irq-info'>);
      case VFIO_USER_DEVICE_SET_IRQS:
        return this.#irqs.setIrqs(body as BodyOf<'set-irqs'>, fds);
      case VFIO_USER_REGION_READ:
        return this.#requests.regionRead(body as BodyOf<'region-rw'>);
      case VFIO_USER_REGION_WRITE:
        return this.#requests.regionWrite(body as BodyOf<'region-rw'>);
      case VFIO_USER_DEVICE_RESET:
        return this.#requests.reset();
      default:
        // DMA_READ/DMA_WRITE are ours to send; REGION_WRITE_MULTI (never advertised), DEVICE_FEATURE,
        // migration, the obsolete DIRTY_PAGES and unknown numbers are not implemented.
        return { errno: ENOTSUP };
    }
  }

  #version(b: BodyOf<'version'>): Outcome {
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

  /** Model DMA (the device's DmaHost): refused once the client has gone. */
  #dmaAccess(address: bigint, length: number, data: Uint8Array | null): Uint8Array {
    if (this.#closed) throw new VfioUserConnectionError('DMA after the client disconnected');
    try {
      return this.#dma.access(address, length, data);
    } finally {
      this.#wakeForDeferred();
    }
  }

  /**
   * A message-based DMA started outside a request (a model's timer) pumps the
   * channel while it waits, setting aside the client's requests; the socket
   * may then stay quiet, so ask the server to service them soon.
   */
  #wakeForDeferred(): void {
    if (this.#servicing || this.#wakeQueued || this.#closed || this.#inbox.length === 0) return;
    this.#wakeQueued = true;
    setImmediate(() => {
      this.#wakeQueued = false;
      if (!this.#closed) this.#wake();
    });
  }
}
