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
