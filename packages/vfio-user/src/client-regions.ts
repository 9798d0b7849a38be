/**
 * Regions as the client sees them: DEVICE_GET_REGION_INFO with the
 * grow-and-retry for its capability chain and the fd the server shares for
 * mmap, and the checks an mmap of that fd must pass first.
 */
import { type RegionCapability, SysError, type VfioRegionInfo } from '@vfio-ts/vfio-sys';
import * as libc from '@vfio-ts/vfio-sys/libc';
import { VFIO_REGION_INFO_FLAG_MMAP } from '@vfio-ts/vfio-sys/uapi';
import { closeQuietly } from './channel.js';
import { type ClientConnection, unexpectedReply } from './client-connection.js';
import { EINVAL, VfioUserProtocolError } from './errors.js';
import { VFIO_USER_DEVICE_GET_REGION_INFO } from './protocol.js';
import { decodeRegionCapabilities } from './region-caps.js';
import { traceGetRegionInfo } from './trace.js';

export interface RegionEntry {
  readonly info: VfioRegionInfo;
  /** The fd the server sent for mmap, owned by the caller. */
  readonly fd: number | null;
}

/** Asks the server for region `index` (which the caller checked exists). */
export function fetchRegionInfo(connection: ClientConnection, index: number): RegionEntry {
  let argsz = 32;
  for (let attempt = 0; ; attempt++) {
    const r = connection.request(
      VFIO_USER_DEVICE_GET_REGION_INFO,
      {
        kind: 'region-info',
        argsz,
        flags: 0,
        index,
        capOffset: 0,
        size: 0n,
        offset: 0n,
        tail: new Uint8Array(argsz - 32),
      },
      `DEVICE_GET_REGION_INFO index ${index}`,
    );
    const b = r.body;
    if (b.kind !== 'region-info' || b.index !== index) {
      for (const fd of r.fds) closeQuietly(fd);
      throw unexpectedReply('DEVICE_GET_REGION_INFO');
    }
    traceGetRegionInfo.emit(b.index, b.flags, b.size);
    if (b.argsz > argsz && attempt === 0) {
      // Grow and retry with the size the server asked for (bounded like the kernel's).
      for (const fd of r.fds) closeQuietly(fd);
      if (b.argsz > 64 * 1024) throw new VfioUserProtocolError(`region ${index} info needs ${b.argsz} bytes`);
      argsz = b.argsz;
      continue;
    }
    if (r.fds.length > 1) {
      for (const fd of r.fds) closeQuietly(fd);
      throw new VfioUserProtocolError(`region ${index} info came with ${r.fds.length} fds`);
    }
    let capabilities: RegionCapability[];
    try {
      capabilities = decodeRegionCapabilities(b);
    } catch (err) {
      for (const fd of r.fds) closeQuietly(fd);
      throw err;
    }
    const fd = r.fds[0] ?? null;
    const size = Number(b.size);
    if (!Number.isSafeInteger(size)) {
      if (fd !== null) closeQuietly(fd);
      throw new VfioUserProtocolError(`region ${index} size 0x${b.size.toString(16)} beyond 2^53`);
    }
    const info: VfioRegionInfo = {
      index,
      // Without an fd there is nothing to map, whatever the flags say.
      flags: fd === null ? b.flags & ~VFIO_REGION_INFO_FLAG_MMAP : b.flags,
      size,
      fdOffset: fd === null ? null : Number(b.offset),
      capabilities,
    };
    return { info, fd };
  }
}

/** The fd to mmap `size` bytes at `offset` of region `index` from; throws unless that window may be mapped. */
export function mmapFdOf(
  name: string,
  index: number,
  entry: RegionEntry,
  offset: number,
  size: number,
): number {
  const { info, fd } = entry;
  if (fd === null || (info.flags & VFIO_REGION_INFO_FLAG_MMAP) === 0)
    throw new SysError('mmap', EINVAL, {
      detail: `${name} region ${index} is not mmap-able (no fd from the server)`,
    });
  const page = libc.hostPageSize();
  if (!Number.isSafeInteger(offset) || offset < 0 || offset % page !== 0)
    throw new SysError('mmap', EINVAL, {
      detail: `offset 0x${offset.toString(16)} of region ${index} is not page aligned`,
    });
  if (!Number.isSafeInteger(size) || size <= 0 || offset + size > Math.ceil(info.size / page) * page)
    throw new SysError('mmap', EINVAL, {
      detail: `0x${size.toString(16)} bytes at 0x${offset.toString(16)} exceed region ${index}`,
    });
  const sparse = info.capabilities.find((c) => c.kind === 'sparse-mmap');
  if (
    sparse &&
    !sparse.areas.some(
      (a) => offset >= a.offset && offset + size <= Math.ceil((a.offset + a.size) / page) * page,
    )
  )
    throw new SysError('mmap', EINVAL, {
      detail: `0x${size.toString(16)} bytes at 0x${offset.toString(16)} are outside the sparse areas of region ${index}`,
    });
  return fd;
}
