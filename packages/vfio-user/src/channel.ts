/**
 * One vfio-user connection: framing over a SOCK_STREAM socket. Incoming
 * bytes accumulate in a buffer and are cut into messages (header first, size
 * checked against our limit before any body is awaited). Which message
 * received fds belong to: Linux glues the bytes of several sendmsgs into one
 * recvmsg but stops right after the first one that carried fds, handing
 * those over (QEMU pipelines DMA_UNMAP and then DMA_MAP with its fd). Each
 * message goes out in one sendmsg, so the fds of a read belong to the last
 * message that starts within the bytes of that read (or, if none starts
 * there, to the one the read continues). Reads are large and stop at a short
 * read, so a small request costs one recvmsg. Each outgoing message is one
 * sendmsg with header, payload and fds together. The channel owns the socket
 * and every received fd until a message is taken from it.
 */

import { SysError } from '@vfio-ts/vfio-sys';
import * as libc from '@vfio-ts/vfio-sys/libc';
import {
  MSG_DONTWAIT,
  SocketReceiver,
  SocketSender,
  setNonBlocking,
  setReceiveTimeout,
} from '@vfio-ts/vfio-sys/libc';
import {
  bodySize,
  checkHeaderFlags,
  decodeHeader,
  encodeBody,
  encodeHeader,
  type VfioUserHeader,
  type VfioUserMessage,
} from './codec.js';
import { EAGAIN_ERRNO, VfioUserConnectionError, VfioUserProtocolError } from './errors.js';
import { HEADER_SIZE } from './protocol.js';

/** A complete message as received: header, raw payload, and the fds that came with it (now the taker's). */
export interface IncomingMessage {
  readonly header: VfioUserHeader;
  readonly payload: Uint8Array;
  readonly fds: number[];
}

export interface ChannelHooks {
  /** After a header was read and checked (QEMU: vfio_user_recv_hdr). */
  onHeader?(header: VfioUserHeader): void;
  /** After body bytes of message `id` were read (QEMU: vfio_user_recv_read). */
  onBodyRead?(id: number, bytes: number): void;
  /** After a message went out (QEMU: vfio_user_send_write). */
  onSent?(id: number, bytes: number): void;
}

export interface ChannelOptions {
  /** Largest message accepted; a header claiming more closes the stream. */
  readonly maxMessageSize: number;
  /** Most fds accepted with one message. */
  readonly maxFds: number;
  readonly hooks?: ChannelHooks;
}

interface FdGroup {
  /** Stream offset just past the bytes of the read these fds came with. */
  readonly end: number;
  readonly fds: number[];
}

const EINTR = 4;
const EAGAIN = EAGAIN_ERRNO;

export class MessageChannel implements Disposable {
  readonly #options: ChannelOptions;
  readonly #receiver: SocketReceiver;
  readonly #sender: SocketSender;
  #fd: number;
  /** Waits are blocking receives (SO_RCVTIMEO) instead of poll + receive. */
  #blockingWaits = false;
  #buf: Uint8Array;
  /** Buffer positions of unread bytes, and the stream offset of buf[0]. */
  #start = 0;
  #end = 0;
  #base = 0;
  #fdGroups: FdGroup[] = [];
  #peerClosed = false;
  #headerSeen = -1;
  readonly #ready: IncomingMessage[] = [];

  constructor(fd: number, options: ChannelOptions) {
    this.#fd = fd;
    this.#options = options;
    this.#receiver = new SocketReceiver(options.maxFds);
    this.#sender = new SocketSender(Math.max(options.maxFds, 16));
    this.#buf = new Uint8Array(Math.min(64 * 1024, Math.max(4096, options.maxMessageSize)));
  }

  get fd(): number {
    if (this.#fd < 0) throw new VfioUserConnectionError('the vfio-user connection is closed');
    return this.#fd;
  }

  get closed(): boolean {
    return this.#fd < 0;
  }

  /** True once the peer closed its end (queued messages can still be taken). */
  get peerClosed(): boolean {
    return this.#peerClosed;
  }

  /**
   * Reads whatever is available without blocking and cuts complete messages.
   * Throws a fatal VfioUserProtocolError when framing breaks (the caller closes).
   */
  pump(): void {
    if (this.#fd < 0 || this.#peerClosed) return;
    // Bounded: a peer that never stops sending must not keep us here forever.
    for (let reads = 0; reads < 64; reads++) {
      const want = this.#room();
      const n = this.#read(want, MSG_DONTWAIT);
      if (n <= 0 || n < want) break; // drained (a short read), or nothing, or gone
    }
  }

  /**
   * Blocks until bytes arrive or `timeoutMs` passes, then reads what is
   * there (cutting messages). Returns false on timeout.
   */
  wait(timeoutMs: number): boolean {
    if (this.#fd < 0 || this.#peerClosed) return true;
    if (this.#blockingWaits) {
      const want = this.#room();
      const n = this.#read(want, 0);
      if (n === -EAGAIN) return false; // SO_RCVTIMEO expired
      if (n === want) this.pump(); // the buffer filled up: more may be waiting (a short read means drained)
      return true;
    }
    let revents: number | undefined;
    try {
      [revents] = libc.sysPoll([{ fd: this.fd, events: libc.POLLIN }], timeoutMs);
    } catch (err) {
      if (isEintr(err)) return true; // a signal (profiler, Ctrl-C): look again
      throw err;
    }
    if (!revents) return false;
    this.pump();
    return true;
  }

  /**
   * Switches waits to blocking receives with a timeout (one syscall instead
   * of poll and receive). Reads elsewhere keep MSG_DONTWAIT, and sends never
   * block. Call it after any libuv poll handle on the fd was created: libuv
   * sets O_NONBLOCK when it starts watching.
   */
  useBlockingWaits(timeoutMs: number): void {
    setNonBlocking(this.fd, false);
    setReceiveTimeout(this.fd, timeoutMs);
    this.#blockingWaits = true;
  }

  /** One recvmsg of up to `want` bytes; cuts what arrived. Returns the count, 0 at EOF, -errno. */
  #read(want: number, flags: number): number {
    const fds: number[] = [];
    const at = this.#end;
    const n = this.#receiver.receive(this.#fd, this.#buf, at, want, fds, flags);
    if (fds.length > 0) this.#fdGroups.push({ end: this.#base + at + Math.max(n, 1), fds });
    if (this.#receiver.fdsTruncated) {
      throw new VfioUserProtocolError(
        `the peer sent more than ${this.#options.maxFds} fds with one message`,
        {
          fatal: true,
        },
      );
    }
    if (n === -EAGAIN || n === -EINTR) return n;
    if (n <= 0) {
      this.#peerClosed = true; // EOF, or ECONNRESET and friends: the peer is gone
      return n;
    }
    this.#end += n;
    this.#cut(n);
    return n;
  }

  /** Space after #end for the next read: at least the rest of the message being received. */
  #room(): number {
    const need = Math.max(this.#bytesToMessageEnd(), 4096);
    if (this.#end + need > this.#buf.byteLength) this.#makeRoom(need);
    return this.#buf.byteLength - this.#end;
  }

  /** The next complete message, or undefined. */
  take(): IncomingMessage | undefined {
    return this.#ready.shift();
  }

  /** Stream offset of the first byte not yet read: grows with every byte received. */
  get received(): number {
    return this.#base + this.#end;
  }

  /** Bytes of a message that has begun arriving but is not complete (a peer that stopped mid-message). */
  get partial(): boolean {
    return this.#end > this.#start;
  }

  /** Sends one message (header, payload and fds in one sendmsg). */
  send(message: VfioUserMessage, fds: readonly number[] = []): void {
    const size = HEADER_SIZE + bodySize(message.body);
    const bytes = new Uint8Array(size);
    encodeHeader(bytes, {
      id: message.id,
      command: message.command,
      size,
      flags: message.flags,
      error: message.error,
    });
    encodeBody(bytes.subarray(HEADER_SIZE), message.body);
    this.sendBytes(message.id, bytes, fds);
  }

  sendBytes(id: number, bytes: Uint8Array, fds: readonly number[] = []): void {
    let sent = 0;
    let attach = fds;
    while (sent < bytes.byteLength) {
      const n = this.#sender.send(this.fd, sent === 0 ? bytes : bytes.subarray(sent), attach);
      if (n === -EAGAIN) {
        // The peer's receive buffer is full: wait for room (a slow peer, not a protocol error).
        let revents: number | undefined;
        try {
          [revents] = libc.sysPoll([{ fd: this.fd, events: libc.POLLOUT }], 5000);
        } catch (err) {
          if (isEintr(err)) continue;
          throw err;
        }
        if (!revents)
          throw new VfioUserConnectionError('the vfio-user peer stopped reading (send blocked for 5 s)');
        continue;
      }
      if (n === -EINTR) continue;
      if (n < 0) throw new VfioUserConnectionError(`sending to the vfio-user peer failed (errno ${-n})`);
      sent += n;
      attach = [];
    }
    this.#options.hooks?.onSent?.(id, bytes.byteLength);
  }

  /** Closes the socket and every fd not yet handed out. Idempotent. */
  close(): void {
    if (this.#fd < 0) return;
    for (const g of this.#fdGroups) for (const fd of g.fds) closeQuietly(fd);
    for (const m of this.#ready) for (const fd of m.fds) closeQuietly(fd);
    this.#fdGroups = [];
    this.#ready.length = 0;
    closeQuietly(this.#fd);
    this.#fd = -1;
  }

  [Symbol.dispose](): void {
    this.close();
  }

  #cut(justRead: number): void {
    for (;;) {
      const available = this.#end - this.#start;
      if (available < HEADER_SIZE) {
        return;
      }
      const header = decodeHeader(
        this.#buf.subarray(this.#start, this.#start + HEADER_SIZE),
        this.#options.maxMessageSize,
      );
      const streamStart = this.#base + this.#start;
      if (this.#headerSeen !== streamStart) {
        this.#headerSeen = streamStart;
        this.#options.hooks?.onHeader?.(header);
      }
      if (available < header.size) {
        if (header.size > this.#buf.byteLength) this.#grow(header.size);
        if (header.size > HEADER_SIZE && this.#options.hooks?.onBodyRead)
          this.#options.hooks.onBodyRead(header.id, Math.min(justRead, available - HEADER_SIZE));
        return;
      }
      if (header.size > HEADER_SIZE) this.#options.hooks?.onBodyRead?.(header.id, header.size - HEADER_SIZE);
      const payload = this.#buf.slice(this.#start + HEADER_SIZE, this.#start + header.size);
      // The fds of a read go to the last message starting in it: the one whose end reaches the read's end.
      const end = streamStart + header.size;
      const fds: number[] = [];
      while (this.#fdGroups.length > 0 && this.#fdGroups[0]!.end <= end)
        fds.push(...this.#fdGroups.shift()!.fds);
      this.#start += header.size;
      this.#ready.push({ header, payload, fds });
    }
  }

  /** Bytes still missing from the message being received (its header first; #cut checked a complete header). */
  #bytesToMessageEnd(): number {
    const available = this.#end - this.#start;
    if (available < HEADER_SIZE) return HEADER_SIZE - available;
    const header = decodeHeader(
      this.#buf.subarray(this.#start, this.#start + HEADER_SIZE),
      this.#options.maxMessageSize,
    );
    return header.size - available;
  }

  /** Makes room for `want` more bytes after #end. */
  #makeRoom(want: number): void {
    if (this.#start > 0) {
      this.#buf.copyWithin(0, this.#start, this.#end);
      this.#base += this.#start;
      this.#end -= this.#start;
      this.#start = 0;
    }
    if (this.#end + want > this.#buf.byteLength)
      this.#grow(Math.max(this.#buf.byteLength * 2, this.#end + want));
  }

  #grow(size: number): void {
    const bigger = new Uint8Array(Math.max(size, this.#buf.byteLength));
    bigger.set(this.#buf.subarray(this.#start, this.#end));
    this.#base += this.#start;
    this.#end -= this.#start;
    this.#start = 0;
    this.#buf = bigger;
  }
}

/** Validates the non-fatal header bits of a received message; throws a VfioUserProtocolError. */
export function checkIncoming(message: IncomingMessage): void {
  checkHeaderFlags(message.header);
}

function isEintr(err: unknown): boolean {
  return err instanceof SysError && err.errno === EINTR;
}

export function closeQuietly(fd: number): void {
  try {
    libc.sysClose(fd);
  } catch {
    // Already gone: nothing else to release.
  }
}
