/**
 * Unix-domain sockets with fd passing (SCM_RIGHTS), for the vfio-user
 * transport: socketpair, and sendmsg/recvmsg with a control message carrying
 * file descriptors. msghdr and cmsghdr are laid out in one koffi allocation
 * that does not move while the call runs (x86-64: msghdr is 56 bytes, iov at
 * 16, control at 32, controllen at 40, flags at 48; CMSG_SPACE(4n) = 16 + 4n
 * rounded to 8).
 */
import koffi from 'koffi';
import { SysError, VfioArgumentError, VfioDecodeError } from './errors.js';
import { sysClose } from './libc.js';
import { assertLinux } from './linux-only.js';

assertLinux();
const libc = koffi.load('libc.so.6');
const raw = {
  socketpair: libc.func('int socketpair(int domain, int type, int protocol, void *sv)'),
  sendmsg: libc.func('intptr_t sendmsg(int fd, void *msg, int flags)'),
  recvmsg: libc.func('intptr_t recvmsg(int fd, void *msg, int flags)'),
};

export const AF_UNIX = 1;
export const SOCK_STREAM = 1;
export const SOCK_SEQPACKET = 5;
export const SOCK_CLOEXEC = 0o2000000;
export const MSG_CMSG_CLOEXEC = 0x40000000;
export const MSG_CTRUNC = 0x8;
export const MSG_NOSIGNAL = 0x4000;
const SOL_SOCKET = 1;
const SCM_RIGHTS = 1;
const MAX_FDS = 253; // SCM_MAX_FD

function fail(syscall: string): never {
  throw new SysError(syscall, koffi.errno());
}

/** socketpair(AF_UNIX): two connected sockets, close-on-exec. The caller owns both fds. */
export function socketPair(type: number = SOCK_STREAM): [number, number] {
  const sv = Buffer.alloc(8);
  if ((raw.socketpair(AF_UNIX, type | SOCK_CLOEXEC, 0, sv) as number) < 0) fail('socketpair');
  return [sv.readInt32LE(0), sv.readInt32LE(4)];
}

const cmsgSpace = (n: number) => 16 + Math.ceil((4 * n) / 8) * 8;

function buildMsghdr(block: Buffer, data: Uint8Array, controlLen: number): void {
  // iovec at 56: base, len
  block.fill(0);
  block.writeBigUInt64LE(koffi.address(block) + 56n, 16); // msg_iov
  block.writeBigUInt64LE(1n, 24); // msg_iovlen
  block.writeBigUInt64LE(controlLen > 0 ? koffi.address(block) + 72n : 0n, 32); // msg_control
  block.writeBigUInt64LE(BigInt(controlLen), 40); // msg_controllen
  block.writeBigUInt64LE(koffi.address(data), 56); // iov_base
  block.writeBigUInt64LE(BigInt(data.byteLength), 64); // iov_len
}

/** Sends `data` with `fds` attached (the kernel dups them into the peer). Returns bytes sent. */
export function sendWithFds(socket: number, data: Uint8Array, fds: readonly number[] = []): number {
  if (fds.length > MAX_FDS)
    throw new VfioArgumentError(`cannot pass ${fds.length} fds in one message (at most ${MAX_FDS})`);
  if (data.byteLength === 0) throw new VfioArgumentError('sendWithFds needs at least one byte of data');
  const controlLen = fds.length > 0 ? cmsgSpace(fds.length) : 0;
  const block = Buffer.alloc(72 + controlLen);
  const payload = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  buildMsghdr(block, payload, controlLen);
  if (fds.length > 0) {
    block.writeBigUInt64LE(BigInt(16 + 4 * fds.length), 72); // cmsg_len = CMSG_LEN
    block.writeInt32LE(SOL_SOCKET, 80);
    block.writeInt32LE(SCM_RIGHTS, 84);
    for (const [i, fd] of fds.entries()) block.writeInt32LE(fd, 88 + 4 * i);
  }
  const n = raw.sendmsg(socket, block, MSG_NOSIGNAL) as number;
  if (n < 0) fail('sendmsg');
  return n;
}

/**
 * Receives up to `maxBytes` and up to `maxFds` descriptors (close-on-exec;
 * the caller owns them). A truncated control message is an error, after the
 * fds that did arrive are closed.
 */
export function recvWithFds(
  socket: number,
  maxBytes: number,
  maxFds = 16,
): { data: Uint8Array; fds: number[] } {
  const controlLen = cmsgSpace(maxFds);
  const block = Buffer.alloc(72 + controlLen);
  const payload = Buffer.alloc(maxBytes);
  buildMsghdr(block, payload, controlLen);
  const n = raw.recvmsg(socket, block, MSG_CMSG_CLOEXEC) as number;
  if (n < 0) fail('recvmsg');
  const fds: number[] = [];
  const usedControl = Number(block.readBigUInt64LE(40));
  let at = 72;
  while (at + 16 <= 72 + usedControl) {
    const len = Number(block.readBigUInt64LE(at));
    if (len < 16 || at + len > 72 + usedControl)
      throw new VfioDecodeError('malformed control message', at - 72);
    if (block.readInt32LE(at + 8) === SOL_SOCKET && block.readInt32LE(at + 12) === SCM_RIGHTS) {
      for (let p = at + 16; p + 4 <= at + len; p += 4) fds.push(block.readInt32LE(p));
    }
    at += Math.ceil(len / 8) * 8;
  }
  if (block.readInt32LE(48) & MSG_CTRUNC) {
    for (const fd of fds) sysClose(fd);
    throw new SysError('recvmsg', 90, {
      detail: `more than ${maxFds} fds arrived (MSG_CTRUNC); the extra ones were dropped by the kernel`,
    });
  }
  return { data: payload.subarray(0, n), fds };
}

// Listening and connecting (the vfio-user server and client).
const rawConn = {
  socket: libc.func('int socket(int domain, int type, int protocol)'),
  bind: libc.func('int bind(int fd, const void *addr, uint32_t len)'),
  listen: libc.func('int listen(int fd, int backlog)'),
  accept4: libc.func('int accept4(int fd, void *addr, void *len, int flags)'),
  connect: libc.func('int connect(int fd, const void *addr, uint32_t len)'),
  getsockopt: libc.func('int getsockopt(int fd, int level, int name, void *value, void *len)'),
  fcntl: libc.func('fcntl', 'int', ['int', 'int', 'int']),
};

export const SOCK_NONBLOCK = 0o4000;
const SO_PEERCRED = 17;
const F_GETFL = 3;
const F_SETFL = 4;
const O_NONBLOCK = 0o4000;
/** sun_path is 108 bytes including the terminating NUL. */
export const UNIX_PATH_MAX = 107;

function sockaddrUn(path: string): Buffer {
  const bytes = Buffer.from(path, 'utf8');
  if (bytes.byteLength === 0 || bytes.byteLength > UNIX_PATH_MAX || bytes.includes(0)) {
    throw new VfioArgumentError(
      `socket path "${path}" is ${bytes.byteLength} bytes; AF_UNIX allows 1 to ${UNIX_PATH_MAX} without NUL`,
      'use a shorter path (a relative path, or a directory nearer the root)',
    );
  }
  const addr = Buffer.alloc(110);
  addr.writeUInt16LE(AF_UNIX, 0);
  bytes.copy(addr, 2);
  return addr;
}

/** socket(AF_UNIX, type | SOCK_CLOEXEC [| SOCK_NONBLOCK]). The caller owns the fd. */
export function unixSocket(type: number = SOCK_STREAM, options: { nonBlocking?: boolean } = {}): number {
  const fd = rawConn.socket(
    AF_UNIX,
    type | SOCK_CLOEXEC | (options.nonBlocking ? SOCK_NONBLOCK : 0),
    0,
  ) as number;
  if (fd < 0) fail('socket');
  return fd;
}

export function bindUnix(fd: number, path: string): void {
  const addr = sockaddrUn(path);
  if ((rawConn.bind(fd, addr, 2 + Buffer.byteLength(path) + 1) as number) < 0)
    throw new SysError('bind', koffi.errno(), { detail: `"${path}"` });
}

export function listenSocket(fd: number, backlog = 16): void {
  if ((rawConn.listen(fd, backlog) as number) < 0) fail('listen');
}

/** accept4 with close-on-exec (and non-blocking if asked); null when no connection is pending (EAGAIN). */
export function acceptConnection(fd: number, options: { nonBlocking?: boolean } = {}): number | null {
  const r = rawConn.accept4(
    fd,
    null,
    null,
    SOCK_CLOEXEC | (options.nonBlocking ? SOCK_NONBLOCK : 0),
  ) as number;
  if (r >= 0) return r;
  const errno = koffi.errno();
  if (errno === 11) return null;
  throw new SysError('accept4', errno);
}

export function connectUnix(fd: number, path: string): void {
  const addr = sockaddrUn(path);
  if ((rawConn.connect(fd, addr, 2 + Buffer.byteLength(path) + 1) as number) < 0)
    throw new SysError('connect', koffi.errno(), { detail: `"${path}"` });
}

/** The credentials of the process that connected (SO_PEERCRED), fixed at connect time. */
export function peerCredentials(fd: number): { pid: number; uid: number; gid: number } {
  const cred = Buffer.alloc(12);
  const len = Buffer.alloc(4);
  len.writeUInt32LE(12);
  if ((rawConn.getsockopt(fd, SOL_SOCKET, SO_PEERCRED, cred, len) as number) < 0) fail('getsockopt');
  return { pid: cred.readInt32LE(0), uid: cred.readUInt32LE(4), gid: cred.readUInt32LE(8) };
}

export function setNonBlocking(fd: number, on: boolean): void {
  const flags = rawConn.fcntl(fd, F_GETFL, 0) as number;
  if (flags < 0) fail('fcntl');
  if ((rawConn.fcntl(fd, F_SETFL, on ? flags | O_NONBLOCK : flags & ~O_NONBLOCK) as number) < 0)
    fail('fcntl');
}

/**
 * A reusable receiver for a hot path: one msghdr block allocated once, data
 * received straight into the caller's buffer. `receive` returns the byte
 * count (0: the peer closed), or -errno (EAGAIN on a non-blocking socket is
 * an answer, not an exception). Received fds are appended to `fds`; when the
 * peer sent more than `maxFds`, the kernel dropped the rest and
 * `fdsTruncated` is true after that call.
 */
export class SocketReceiver {
  fdsTruncated = false;
  readonly #block: Buffer;
  readonly #controlLen: number;
  readonly #address: bigint;

  /** The last target buffer and its address: koffi.address is not free, and the target rarely changes. */
  #target: Uint8Array | null = null;
  #targetAddress = 0n;

  constructor(readonly maxFds = 16) {
    this.#controlLen = cmsgSpace(maxFds);
    this.#block = Buffer.alloc(72 + this.#controlLen);
    this.#address = koffi.address(this.#block) as bigint;
    // The fields that never change: msg_iov -> the iovec at 56, one of them, msg_control at 72.
    this.#block.writeBigUInt64LE(this.#address + 56n, 16);
    this.#block.writeBigUInt64LE(1n, 24);
    this.#block.writeBigUInt64LE(this.#address + 72n, 32);
  }

  /** `flags` add to MSG_CMSG_CLOEXEC: MSG_DONTWAIT reads without blocking whatever the socket's mode. */
  receive(
    socket: number,
    target: Uint8Array,
    offset: number,
    length: number,
    fds: number[],
    flags = 0,
  ): number {
    const block = this.#block;
    if (target !== this.#target) {
      this.#target = target;
      this.#targetAddress = koffi.address(target) as bigint;
    }
    block.writeUInt32LE(this.#controlLen, 40); // msg_controllen (the kernel shrinks it to what it used)
    block.writeUInt32LE(0, 44);
    block.writeUInt32LE(0, 48); // msg_flags
    block.writeBigUInt64LE(this.#targetAddress + BigInt(offset), 56);
    block.writeUInt32LE(length, 64); // iov_len (lengths stay far below 4 GiB)
    block.writeUInt32LE(0, 68);
    const n = raw.recvmsg(socket, block, MSG_CMSG_CLOEXEC | flags) as number;
    if (n < 0) return -koffi.errno();
    if (usedControlIsEmpty(block)) {
      this.fdsTruncated = false;
      return n;
    }
    const usedControl = Number(block.readBigUInt64LE(40));
    let at = 72;
    const got: number[] = [];
    while (at + 16 <= 72 + usedControl) {
      const len = Number(block.readBigUInt64LE(at));
      if (len < 16 || at + len > 72 + usedControl) break;
      if (block.readInt32LE(at + 8) === SOL_SOCKET && block.readInt32LE(at + 12) === SCM_RIGHTS) {
        for (let p = at + 16; p + 4 <= at + len; p += 4) got.push(block.readInt32LE(p));
      }
      at += Math.ceil(len / 8) * 8;
    }
    fds.push(...got);
    this.fdsTruncated = (block.readInt32LE(48) & MSG_CTRUNC) !== 0;
    return n;
  }
}

/** sendmsg returning -errno instead of throwing (EAGAIN on a full non-blocking socket is an answer). */
export function sendTry(socket: number, data: Uint8Array, fds: readonly number[] = []): number {
  try {
    return sendWithFds(socket, data, fds);
  } catch (err) {
    if (err instanceof SysError) return -err.errno;
    throw err;
  }
}

function usedControlIsEmpty(block: Buffer): boolean {
  return (
    block.readUInt32LE(40) === 0 && block.readUInt32LE(44) === 0 && (block.readInt32LE(48) & MSG_CTRUNC) === 0
  );
}

export const MSG_DONTWAIT = 0x40;

/**
 * A reusable sender for a hot path: one msghdr block allocated once; each
 * `send` is one sendmsg (MSG_NOSIGNAL | MSG_DONTWAIT) of `data` with `fds`.
 * Returns bytes sent or -errno (EAGAIN when the peer's buffer is full).
 */
export class SocketSender {
  readonly #block: Buffer;
  readonly #address: bigint;
  readonly #maxFds: number;

  constructor(maxFds = 16) {
    this.#maxFds = Math.min(maxFds, MAX_FDS);
    this.#block = Buffer.alloc(72 + cmsgSpace(this.#maxFds));
    this.#address = koffi.address(this.#block) as bigint;
    this.#block.writeBigUInt64LE(this.#address + 56n, 16); // msg_iov, never changes
    this.#block.writeBigUInt64LE(1n, 24);
  }

  send(socket: number, data: Uint8Array, fds: readonly number[] = []): number {
    if (fds.length > this.#maxFds)
      throw new VfioArgumentError(
        `cannot pass ${fds.length} fds in one message (this sender allows ${this.#maxFds})`,
      );
    if (data.byteLength === 0) throw new VfioArgumentError('a message needs at least one byte of data');
    const block = this.#block;
    const controlLen = fds.length > 0 ? cmsgSpace(fds.length) : 0;
    block.writeBigUInt64LE(controlLen > 0 ? this.#address + 72n : 0n, 32);
    block.writeUInt32LE(controlLen, 40);
    block.writeBigUInt64LE(koffi.address(data) as bigint, 56);
    block.writeUInt32LE(data.byteLength, 64);
    if (fds.length > 0) {
      block.fill(0, 72, 72 + controlLen);
      block.writeBigUInt64LE(BigInt(16 + 4 * fds.length), 72);
      block.writeInt32LE(SOL_SOCKET, 80);
      block.writeInt32LE(SCM_RIGHTS, 84);
      for (const [i, fd] of fds.entries()) block.writeInt32LE(fd, 88 + 4 * i);
    }
    const n = raw.sendmsg(socket, block, MSG_NOSIGNAL | MSG_DONTWAIT) as number;
    return n < 0 ? -koffi.errno() : n;
  }
}

const SO_RCVTIMEO = 20;
const rawSetsockopt = libc.func(
  'int setsockopt(int fd, int level, int name, const void *value, uint32_t len)',
);

/** SO_RCVTIMEO: a blocking receive on `fd` gives up with EAGAIN after `ms` (0: never). */
export function setReceiveTimeout(fd: number, ms: number): void {
  const tv = Buffer.alloc(16);
  tv.writeBigInt64LE(BigInt(Math.floor(ms / 1000)), 0);
  tv.writeBigInt64LE(BigInt((ms % 1000) * 1000), 8);
  if ((rawSetsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, tv, 16) as number) < 0) fail('setsockopt');
}
