/**
 * `@vfio-ts/vfio-sys/libc`: the raw libc layer through koffi (open, ioctl,
 * pread/pwrite, mmap/munmap, eventfd, memfd, poll, AF_UNIX sockets with
 * SCM_RIGHTS). These take and return bare fds and addresses and own
 * nothing: prefer the root's owned objects (`MappedArea`, `EventFd`, the
 * kernel backend). A raw `sysMunmap` of a mapping still viewed by a typed
 * array crashes the process; `MappedArea.unmap()` does not.
 */
export * from './libc.js';
export * from './sockets.js';
