/**
 * The client's side of the socket: version negotiation, and requests that
 * block until their reply. The seam is synchronous, so a request waits on
 * the socket; while it waits (and, through an event-loop poll, while idle)
 * requests from the server are handed to `answer` and its reply is sent.
 * Error replies become SysErrors with the server's errno, as the kernel's
 * failures are.
 */
import { SysError } from '@vfio-ts/vfio-sys';
import { parseCapabilities, type VfioUserCapabilities } from './capabilities.js';
import { closeQuietly, type IncomingMessage, MessageChannel } from './channel.js';
import { command, decodeBody, isReply, type VfioUserBody, type VfioUserMessage } from './codec.js';
import { EIO, VfioUserConnectionError, VfioUserProtocolError } from './errors.js';
import { type PollHandle, pollReadable } from './poll.js';
import {
  commandName,
  maxMessageSize,
  OUR_MAX_DATA_XFER,
  OUR_MAX_MSG_FDS,
  VFIO_USER_F_ERROR,
  VFIO_USER_MAJOR,
  VFIO_USER_MINOR,
  VFIO_USER_VERSION,
} from './protocol.js';
import { traceRecvHdr, traceRecvRead, traceRecvRequest, traceSendWrite, traceVersion } from './trace.js';

export interface ClientConnectionOptions {
  readonly socketPath: string;
  /** Name for error messages. */
  readonly name: string;
  /** How long one request waits for its reply before the connection is declared dead. */
  readonly timeoutMs: number;
  /** Answers a request from the server (its fds are already closed). */
  readonly answer: (message: IncomingMessage) => VfioUserMessage;
  /** Called when framing is lost: nothing after it can be trusted, the owner closes everything. */
  readonly lost: () => void;
}

export interface ClientReply {
  readonly body: VfioUserBody;
  /** The fds that came with the reply, owned by the caller. */
  readonly fds: number[];
}

/** A reply that decoded but is not the one asked for. */
export function unexpectedReply(what: string): VfioUserProtocolError {
  return new VfioUserProtocolError(`${what} reply does not have the expected shape`);
}

export class ClientConnection {
  readonly #channel: MessageChannel;
  readonly #options: ClientConnectionOptions;
  #nextId = 0;
  #idlePoll: PollHandle | null = null;
  #waiting = false;
  #closed = false;

  /** Takes ownership of the connected socket `fd`. */
  constructor(fd: number, options: ClientConnectionOptions) {
    this.#options = options;
    const sockname = options.socketPath;
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

  /** VERSION: proposes ours, returns the server's capabilities (its limits bound what we send). */
  negotiate(): VfioUserCapabilities {
    const ours = JSON.stringify({
      capabilities: { max_msg_fds: OUR_MAX_MSG_FDS, max_data_xfer_size: OUR_MAX_DATA_XFER, pgsizes: 4096 },
    });
    const r = this.request(
      VFIO_USER_VERSION,
      { kind: 'version', major: VFIO_USER_MAJOR, minor: VFIO_USER_MINOR, capabilities: ours },
      'VERSION',
    );
    if (r.body.kind !== 'version') throw unexpectedReply('VERSION');
    traceVersion.emit(r.body.major, r.body.minor, r.body.capabilities ?? '');
    if (r.body.major !== VFIO_USER_MAJOR)
      throw new VfioUserProtocolError(
        `server speaks vfio-user ${r.body.major}.${r.body.minor}, we speak ${VFIO_USER_MAJOR}.x`,
      );
    const server = parseCapabilities(r.body.capabilities);
    // Answer requests that arrive while nothing waits on the socket (after posted work).
    this.#idlePoll = pollReadable(this.#channel.fd, () => this.#serviceIdle());
    this.#idlePoll.unref();
    // After libuv started watching (it makes the fd non-blocking): waits become one blocking receive.
    this.#channel.useBlockingWaits(Math.min(this.#options.timeoutMs, 1000));
    return server;
  }

  /** Sends a request and blocks until its reply, answering the server's requests meanwhile. */
  request(cmd: number, body: VfioUserBody, what: string, fds: readonly number[] = []): ClientReply {
    if (this.#waiting)
      throw new VfioUserConnectionError(`${what} issued while another request waits (re-entrant use)`);
    const id = this.#nextId;
    this.#nextId = (this.#nextId + 1) & 0xffff;
    this.#waiting = true;
    try {
      this.#channel.send(command(id, cmd, body), fds);
      const deadline = Date.now() + this.#options.timeoutMs;
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
            throw new SysError('vfio-user', m.header.error || EIO, {
              detail: `${what} on ${this.#options.name}`,
            });
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
            `the vfio-user server on ${this.#options.socketPath} closed the connection during ${what}`,
          );
        const left = deadline - Date.now();
        if (left <= 0)
          throw new VfioUserConnectionError(
            `no reply to ${what} from ${this.#options.socketPath} within ${this.#options.timeoutMs} ms`,
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
      this.#options.lost(); // framing is lost: nothing after this can be trusted
      throw err;
    }
  }

  #pump(): void {
    try {
      this.#channel.pump();
    } catch (err) {
      // Framing is lost: nothing after this can be trusted.
      this.#options.lost();
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

  /** A request from the server: `answer` decides the reply. */
  #answer(m: IncomingMessage): void {
    for (const fd of m.fds) closeQuietly(fd);
    traceRecvRequest.emit(m.header.command);
    this.#channel.send(this.#options.answer(m));
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#idlePoll?.close();
    this.#idlePoll = null;
    this.#channel.close();
  }
}
