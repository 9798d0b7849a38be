/**
 * libc through koffi: the few calls VFIO needs. Each wrapper reads errno
 * immediately after a failure (the next koffi call may overwrite it) and throws
 * a SysError. Internal: the package exports typed helpers built on these.
 */
import koffi from 'koffi';
import { SysError } from './errors.js';
import { assertLinux } from './linux-only.js';

assertLinux();
const libc = koffi.load('libc.so.6');

const raw = {
  open: libc.func('int open(const char *path, int flags, int mode)'),
  close: libc.func('int close(int fd)'),
  ioctlPtr: libc.func('int ioctl(int fd, unsigned long request, void *arg)'),
  ioctlInt: libc.func('ioctl', 'int', ['int', 'unsigned long', 'unsigned long']),
  pread: libc.func('intptr_t pread(int fd, void *buf, size_t count, int64_t offset)'),
  pwrite: libc.func('intptr_t pwrite(int fd, const void *buf, size_t count, int64_t offset)'),
  read: libc.func('intptr_t read(int fd, void *buf, size_t count)'),
  write: libc.func('intptr_t write(int fd, const void *buf, size_t count)'),
  mmap: libc.func('intptr_t mmap(intptr_t addr, size_t length, int prot, int flags, int fd, int64_t offset)'),
  munmap: libc.func('int munmap(intptr_t addr, size_t length)'),
  memfdCreate: libc.func('int memfd_create(const char *name, unsigned int flags)'),
  ftruncate: libc.func('int ftruncate(int fd, int64_t length)'),
  fallocate: libc.func('int fallocate(int fd, int mode, int64_t offset, int64_t len)'),
  eventfd: libc.func('int eventfd(unsigned int initval, int flags)'),
  poll: libc.func('int poll(void *fds, unsigned long nfds, int timeout)'),
  getpagesize: libc.func('int getpagesize(void)'),
  fcntl: libc.func('fcntl', 'int', ['int', 'int', 'int']),
};

export const O_RDONLY = 0;
export const O_WRONLY = 1;
export const O_RDWR = 2;
export const O_CLOEXEC = 0o2000000;
export const O_NONBLOCK = 0o4000;

export const PROT_NONE = 0;
export const PROT_READ = 1;
export const PROT_WRITE = 2;
export const MAP_SHARED = 0x01;
export const MAP_PRIVATE = 0x02;
export const MAP_FIXED = 0x10;
export const MAP_ANONYMOUS = 0x20;
export const MAP_NORESERVE = 0x4000;

export const MFD_CLOEXEC = 1;
export const EFD_CLOEXEC = 0o2000000;
export const EFD_NONBLOCK = 0o4000;

export const POLLIN = 0x001;
export const POLLOUT = 0x004;
export const POLLERR = 0x008;
export const POLLHUP = 0x010;

function fail(syscall: string, detail?: string, hint?: string): never {
  const errno = koffi.errno();
  const options: { detail?: string; hint?: string } = {};
  if (detail !== undefined) options.detail = detail;
  if (hint !== undefined) options.hint = hint;
  throw new SysError(syscall, errno, options);
}

export function sysOpen(path: string, flags: number, mode = 0): number {
  const fd = raw.open(path, flags | O_CLOEXEC, mode) as number;
  if (fd < 0) fail('open', `"${path}"`);
  return fd;
}

export function sysClose(fd: number): void {
  if ((raw.close(fd) as number) < 0) fail('close', `fd ${fd}`);
}

/** ioctl with a pointer argument (a Buffer the kernel reads and/or fills). Returns the result (>= 0). */
export function sysIoctl(fd: number, request: number, arg: Buffer | null, name?: string): number {
  const r = raw.ioctlPtr(fd, request, arg) as number;
  if (r < 0) fail('ioctl', name ?? `0x${request.toString(16)}`);
  return r;
}

/** ioctl with an integer argument (VFIO_SET_IOMMU, VFIO_CHECK_EXTENSION, ...). */
export function sysIoctlInt(fd: number, request: number, arg: number, name?: string): number {
  const r = raw.ioctlInt(fd, request, arg) as number;
  if (r < 0) fail('ioctl', name ?? `0x${request.toString(16)}`);
  return r;
}

/** ioctl returning -errno instead of throwing, for probes where failure is an answer. */
export function sysIoctlTry(fd: number, request: number, arg: Buffer | number | null): number {
  const r = (
    typeof arg === 'number' ? raw.ioctlInt(fd, request, arg) : raw.ioctlPtr(fd, request, arg)
  ) as number;
  return r < 0 ? -koffi.errno() : r;
}

export function sysPread(fd: number, buf: Buffer | Uint8Array, offset: number): number {
  const n = raw.pread(fd, buf, buf.byteLength, offset) as number;
  if (n < 0) fail('pread', `fd ${fd}, ${buf.byteLength} bytes at 0x${offset.toString(16)}`);
  return n;
}

export function sysPwrite(fd: number, buf: Buffer | Uint8Array, offset: number): number {
  const n = raw.pwrite(fd, buf, buf.byteLength, offset) as number;
  if (n < 0) fail('pwrite', `fd ${fd}, ${buf.byteLength} bytes at 0x${offset.toString(16)}`);
  return n;
}

export function sysRead(fd: number, buf: Buffer | Uint8Array): number {
  const n = raw.read(fd, buf, buf.byteLength) as number;
  if (n < 0) fail('read', `fd ${fd}`);
  return n;
}

/** read() returning -errno instead of throwing (EAGAIN on a non-blocking fd is an answer). */
export function sysReadTry(fd: number, buf: Buffer | Uint8Array): number {
  const n = raw.read(fd, buf, buf.byteLength) as number;
  return n < 0 ? -koffi.errno() : n;
}

export function sysWrite(fd: number, buf: Buffer | Uint8Array): number {
  const n = raw.write(fd, buf, buf.byteLength) as number;
  if (n < 0) fail('write', `fd ${fd}`);
  return n;
}

/** mmap returning the address as a bigint. */
export function sysMmap(
  addr: bigint,
  length: number,
  prot: number,
  flags: number,
  fd: number,
  offset: number,
): bigint {
  const p = raw.mmap(addr, length, prot, flags, fd, offset) as number | bigint;
  if (BigInt(p) === -1n) fail('mmap', `fd ${fd}, 0x${length.toString(16)} bytes at 0x${offset.toString(16)}`);
  return BigInt.asUintN(64, BigInt(p));
}

export function sysMunmap(addr: bigint, length: number): void {
  if ((raw.munmap(addr, length) as number) < 0)
    fail('munmap', `0x${addr.toString(16)}, 0x${length.toString(16)} bytes`);
}

const F_DUPFD_CLOEXEC = 1030;

/** A new fd (close-on-exec) for the same open file: how a backend keeps its own reference to a user's eventfd. */
export function sysDup(fd: number): number {
  const r = raw.fcntl(fd, F_DUPFD_CLOEXEC, 0) as number;
  if (r < 0) fail('fcntl', `F_DUPFD_CLOEXEC of fd ${fd}`);
  return r;
}

/** Signals an eventfd (adds 1 to its counter). */
export function eventfdSignal(fd: number): void {
  const one = Buffer.alloc(8);
  one.writeBigUInt64LE(1n);
  sysWrite(fd, one);
}

/** Reads and resets an eventfd's counter; 0 when it was not signalled (the fd must be non-blocking). */
export function eventfdConsume(fd: number): bigint {
  const buf = Buffer.alloc(8);
  const n = sysReadTry(fd, buf);
  if (n === -11) return 0n; // EAGAIN: nothing pending
  if (n < 0) throw new SysError('read', -n, { detail: `eventfd ${fd}` });
  return buf.readBigUInt64LE(0);
}

export function sysMemfdCreate(name: string, flags = MFD_CLOEXEC): number {
  const fd = raw.memfdCreate(name, flags) as number;
  if (fd < 0) fail('memfd_create', `"${name}"`);
  return fd;
}

export function sysFtruncate(fd: number, length: number): void {
  if ((raw.ftruncate(fd, length) as number) < 0) fail('ftruncate', `fd ${fd}, ${length}`);
}

export const FALLOC_FL_KEEP_SIZE = 0x01;
export const FALLOC_FL_PUNCH_HOLE = 0x02;

/**
 * Gives the pages of [offset, offset + length) of a file back: they read as
 * zeros, and every mapping of the file sees that at once (no SIGBUS window,
 * unlike truncating and growing it again).
 */
export function sysPunchHole(fd: number, offset: number, length: number): void {
  if ((raw.fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, offset, length) as number) < 0)
    fail(
      'fallocate',
      `FALLOC_FL_PUNCH_HOLE of fd ${fd}, 0x${length.toString(16)} bytes at 0x${offset.toString(16)}`,
    );
}

export function sysEventfd(initval = 0, flags = EFD_CLOEXEC): number {
  const fd = raw.eventfd(initval, flags) as number;
  if (fd < 0) fail('eventfd');
  return fd;
}

export interface PollRequest {
  readonly fd: number;
  readonly events: number;
}

/** poll(2) on a few fds; returns the revents per request, in order. timeoutMs -1 blocks. */
export function sysPoll(requests: readonly PollRequest[], timeoutMs: number): number[] {
  const buf = Buffer.alloc(8 * requests.length);
  requests.forEach((r, i) => {
    buf.writeInt32LE(r.fd, i * 8);
    buf.writeInt16LE(r.events, i * 8 + 4);
  });
  const n = raw.poll(buf, requests.length, timeoutMs) as number;
  if (n < 0) fail('poll');
  return requests.map((_, i) => buf.readInt16LE(i * 8 + 6));
}

let pageSize: number | undefined;
/** The host page size (what mmap offsets and sizes must be multiples of). */
export function hostPageSize(): number {
  pageSize ??= raw.getpagesize() as number;
  return pageSize;
}
