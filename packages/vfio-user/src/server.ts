/**
 * `VfioUserServer`: serves any VfioDeviceIo to vfio-user clients (QEMU's
 * vfio-user-pci, our client, libvfio-user's) on a Unix socket. One client at
 * a time: while one is attached the listening socket is not polled, so the
 * next waits in the backlog and is served when the first leaves. A peer whose
 * uid is neither ours nor allowed is refused at accept (SO_PEERCRED). When a
 * client leaves, its eventfds are dropped from the device and its DMA maps
 * unmapped; a device with a ClientLifecycle (a kernel device) is made
 * quiescent in between; otherwise the device, and its state, stay.
 */
import type { VfioDeviceIo } from '@vfio-ts/vfio-sys';
import { acceptConnection, peerCredentials } from '@vfio-ts/vfio-sys/libc';
import { closeQuietly, MessageChannel } from './channel.js';
import { VfioUserProtocolError } from './errors.js';
import { type PollHandle, pollReadable } from './poll.js';
import { maxMessageSize, OUR_MAX_DATA_XFER, OUR_MAX_DMA_MAPS, OUR_MAX_MSG_FDS } from './protocol.js';
import { ServerSession } from './session.js';
import { type ListeningSocket, listenUnixSocket } from './socket-path.js';
import { traceServerAccept, traceServerDisconnect, traceServerListen, traceServerRefuse } from './trace.js';

export interface VfioUserServerOptions {
  /** Uids allowed besides the server's own. */
  readonly allowUids?: readonly number[];
  /** Human-readable events (client attached, refused, left), for a CLI to print. */
  readonly log?: (line: string) => void;
  /** Limits we advertise and enforce (defaults: 16 fds, 1 MiB per transfer, 65535 DMA maps). */
  readonly maxMsgFds?: number;
  readonly maxDataXferSize?: number;
  readonly maxDmaMaps?: number;
  /** How long a server-to-client DMA request waits for its reply (default 5000 ms). */
  readonly dmaTimeoutMs?: number;
  /**
   * How long a message may stay half-received with no new byte before the
   * client is disconnected (default 5000 ms): a peer that stopped mid-message
   * would otherwise hold the one client slot forever.
   */
  readonly partialTimeoutMs?: number;
  /**
   * After answering, keep waiting up to this long for the client's next
   * message with a blocking receive before returning to the event loop
   * (default 0: never). A request then costs one receive and one send, as
   * in a C server, instead of an event-loop wake-up as well; the event loop
   * waits meanwhile (at most `holdMs` after the client goes quiet, and bursts
   * yield to it every 20 ms). For a process that only serves (`vfio-ts serve`);
   * never with the client in the same thread.
   */
  readonly holdMs?: number;
}

export interface ServerStats {
  readonly served: number;
  readonly refused: number;
  readonly connected: boolean;
}

export class VfioUserServer implements Disposable {
  readonly device: VfioDeviceIo;
  readonly socketPath: string;
  readonly #listener: ListeningSocket;
  readonly #listenPoll: PollHandle;
  readonly #options: VfioUserServerOptions;
  readonly #allowed: Set<number>;
  #client: { channel: MessageChannel; session: ServerSession; poll: PollHandle; pid: number } | null = null;
  #served = 0;
  #refused = 0;
  #closed = false;
  readonly #idle: (() => void)[] = [];

  private constructor(device: VfioDeviceIo, listener: ListeningSocket, options: VfioUserServerOptions) {
    this.device = device;
    this.#listener = listener;
    this.socketPath = listener.path;
    this.#options = options;
    const own = typeof process.getuid === 'function' ? process.getuid() : 0;
    this.#allowed = new Set([own, ...(options.allowUids ?? [])]);
    this.#listenPoll = pollReadable(listener.fd, (status) => {
      if (status >= 0) this.#acceptPending();
    });
  }

  /** Creates the socket at `socketPath` (0600; a stale socket is replaced) and starts serving `device`. */
  static listen(
    device: VfioDeviceIo,
    socketPath: string,
    options: VfioUserServerOptions = {},
  ): VfioUserServer {
    const listener = listenUnixSocket(socketPath);
    try {
      const server = new VfioUserServer(device, listener, options);
      traceServerListen.emit(device.name, listener.path);
      return server;
    } catch (err) {
      listener.close();
      throw err;
    }
  }

  get stats(): ServerStats {
    return { served: this.#served, refused: this.#refused, connected: this.#client !== null };
  }

  /** Resolves when no client is attached (at once if none is). */
  idle(): Promise<void> {
    if (this.#client === null) return Promise.resolve();
    return new Promise((resolve) => this.#idle.push(resolve));
  }

  /** Lets the process exit while the server is the only thing on the event loop. */
  unref(): void {
    this.#listenPoll.unref();
    this.#client?.poll.unref();
  }

  /** Disconnects the client (releasing what it gave) and removes the socket. The device stays open. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#endClient('server closing');
    this.#listenPoll.close();
    this.#listener.close();
  }

  [Symbol.dispose](): void {
    this.close();
  }

  #log(line: string): void {
    this.#options.log?.(line);
  }

  #acceptPending(): void {
    while (!this.#closed && this.#client === null) {
      let fd: number | null;
      try {
        fd = acceptConnection(this.#listener.fd, { nonBlocking: true });
      } catch (err) {
        this.#log(`accept failed: ${(err as Error).message}`);
        return;
      }
      if (fd === null) return;
      const peer = peerCredentials(fd);
      if (!this.#allowed.has(peer.uid)) {
        this.#refused++;
        const why = `uid ${peer.uid} is not allowed (allowed: ${[...this.#allowed].join(', ')}; see --allow-uid)`;
        traceServerRefuse.emit(this.socketPath, peer.pid, peer.uid, why);
        this.#log(`refused client pid ${peer.pid}: ${why}`);
        closeQuietly(fd);
        continue;
      }
      this.#attach(fd, peer.pid, peer.uid);
    }
  }

  #attach(fd: number, pid: number, uid: number): void {
    const maxDataXferSize = this.#options.maxDataXferSize ?? OUR_MAX_DATA_XFER;
    const maxMsgFds = this.#options.maxMsgFds ?? OUR_MAX_MSG_FDS;
    const channel = new MessageChannel(fd, {
      maxMessageSize: maxMessageSize(maxDataXferSize),
      maxFds: maxMsgFds,
    });
    const session = new ServerSession(
      this.device,
      channel,
      {
        maxMsgFds,
        maxDataXferSize,
        maxDmaMaps: this.#options.maxDmaMaps ?? OUR_MAX_DMA_MAPS,
        dmaTimeoutMs: this.#options.dmaTimeoutMs ?? 5000,
      },
      (err) => this.#log(`client pid ${pid}: ${(err as Error).message}`),
      () => {
        // Requests set aside during a DMA wait outside any request (see ServerSession).
        if (this.#client?.session === session && !session.service()) end('connection closed');
      },
    );
    this.#listenPoll.stop();
    let stalled: NodeJS.Timeout | null = null;
    const partialTimeoutMs = this.#options.partialTimeoutMs ?? 5000;
    const watchPartial = () => {
      if (stalled !== null || !channel.partial) return;
      const at = channel.received;
      stalled = setTimeout(() => {
        stalled = null;
        if (this.#client?.channel !== channel) return;
        if (channel.partial && channel.received === at)
          this.#endClient(`stopped mid-message for ${partialTimeoutMs} ms`);
        else watchPartial();
      }, partialTimeoutMs);
      stalled.unref();
    };
    const holdMs = this.#options.holdMs ?? 0;
    const end = (why: string) => {
      if (stalled !== null) clearTimeout(stalled);
      this.#endClient(why);
    };
    const poll = pollReadable(fd, (status) => {
      if (status < 0 || !session.service()) {
        end(status < 0 ? `poll error ${status}` : 'connection closed');
        return;
      }
      // Holding: answer the next requests straight from blocking receives, within a 20 ms burst.
      for (const until = Date.now() + 20; holdMs > 0 && !channel.partial && Date.now() < until; ) {
        const r = session.hold(holdMs);
        if (r === 'closed') {
          end('connection closed');
          return;
        }
        if (r === 'idle') break;
      }
      watchPartial();
    });
    if (holdMs > 0) channel.useBlockingWaits(holdMs);
    this.#client = { channel, session, poll, pid };
    this.#served++;
    traceServerAccept.emit(this.socketPath, pid, uid);
    this.#log(`client pid ${pid} (uid ${uid}) attached`);
  }

  #endClient(reason: string): void {
    const client = this.#client;
    if (client === null) return;
    this.#client = null;
    client.poll.close();
    const released = client.session.close();
    const partial = client.channel.partial;
    client.channel.close();
    const why = partial ? `${reason} (mid-message)` : reason;
    traceServerDisconnect.emit(this.socketPath, why, released.dmaMaps, released.irqIndexes);
    this.#log(
      `client pid ${client.pid} left: ${why}; released ${released.dmaMaps} DMA maps, ${released.irqIndexes} IRQ indexes${released.device === null ? '' : `; device: ${released.device}`}`,
    );
    for (const resolve of this.#idle.splice(0)) resolve();
    if (!this.#closed) {
      this.#listenPoll.start({ readable: true, disconnect: true }, (status) => {
        if (status >= 0) this.#acceptPending();
      });
      // A client may already wait in the backlog.
      setImmediate(() => this.#acceptPending());
    }
  }
}

export { VfioUserProtocolError };
