/**
 * The client's DMA maps as the server keeps them. fd-backed maps are mmap'd
 * here (the fd is closed once mapped); fd-less ones are reached with
 * DMA_READ/DMA_WRITE messages. A map past the end of its file is refused
 * (EINVAL), not left to SIGBUS the server. Overlapping maps are refused with EEXIST as
 * the spec says (libvfio-user answers EINVAL); an unmap must match a map
 * exactly (ENOENT otherwise).
 */
import { fstatSync } from 'node:fs';
import { MappedArea } from '@vfio-ts/vfio-sys';
import { EEXIST, EFAULT, EINVAL, ENOENT, ENOSPC, VfioUserProtocolError } from './errors.js';
import { VFIO_USER_F_DMA_REGION_READ, VFIO_USER_F_DMA_REGION_WRITE } from './protocol.js';

export interface DmaMapping {
  readonly iova: bigint;
  readonly size: bigint;
  readonly flags: number;
  readonly fdOffset: bigint;
  /** The mapped client memory, or null for a message-based map. */
  readonly area: MappedArea | null;
}

/** One piece of an access: inside `mapping`, at `offset` into it, `length` bytes. */
export interface DmaSegment {
  readonly mapping: DmaMapping;
  readonly offset: number;
  readonly length: number;
  /** Offset of this piece within the whole access. */
  readonly at: number;
}

const U64_END = 1n << 64n;

function refuse(errno: number, message: string): never {
  throw new VfioUserProtocolError(message, { errno });
}

/**
 * A file-backed map (a memfd, a file in /dev/shm or hugetlbfs) must lie inside
 * the file: mmap accepts pages past its end, and touching one raises SIGBUS,
 * which would kill the server at the device's first DMA there. Other fds
 * (no size to check) are left to mmap. A client that shrinks its file after
 * mapping it can still do that: seal it (F_SEAL_SHRINK, as QEMU's
 * memory-backend-memfd does by default).
 */
function checkFileCovers(fd: number, offset: bigint, size: bigint, iova: bigint): void {
  let stat: { isFile(): boolean; size: bigint };
  try {
    stat = fstatSync(fd, { bigint: true });
  } catch {
    return; // Not something fstat knows: mmap decides.
  }
  if (stat.isFile() && offset + size > stat.size)
    throw new VfioUserProtocolError(
      `DMA_MAP [0x${iova.toString(16)}, +0x${size.toString(16)}) at offset 0x${offset.toString(16)} runs past the end of its file (0x${stat.size.toString(16)} bytes)`,
      {
        errno: EINVAL,
        hint: 'map only the part of the memory fd that exists (size the memfd first)',
      },
    );
}

export class DmaMaps {
  readonly #maps: DmaMapping[] = [];
  readonly #limit: number;
  readonly #beforeRelease: ((mapping: DmaMapping) => void) | null;

  /**
   * `beforeRelease` runs before a map's memory is unmapped (a kernel device
   * takes it out of its IOMMU there); if it throws on `remove`, the map stays.
   */
  constructor(limit: number, beforeRelease: ((mapping: DmaMapping) => void) | null = null) {
    this.#limit = limit;
    this.#beforeRelease = beforeRelease;
  }

  get count(): number {
    return this.#maps.length;
  }

  /** Adds a map; takes ownership of `fd` (closed here whether or not the map succeeds). */
  add(
    iova: bigint,
    size: bigint,
    flags: number,
    fdOffset: bigint,
    fd: number | null,
    close: (fd: number) => void,
  ): DmaMapping {
    try {
      if ((flags & ~(VFIO_USER_F_DMA_REGION_READ | VFIO_USER_F_DMA_REGION_WRITE)) !== 0)
        refuse(EINVAL, `DMA_MAP flags 0x${flags.toString(16)} has unknown bits`);
      if (size === 0n || iova + size > U64_END)
        refuse(EINVAL, `DMA_MAP of 0x${size.toString(16)} bytes at 0x${iova.toString(16)}`);
      if (size > BigInt(Number.MAX_SAFE_INTEGER)) refuse(EINVAL, 'DMA_MAP size beyond 2^53');
      if (this.#maps.length >= this.#limit) refuse(ENOSPC, `already ${this.#limit} DMA maps (max_dma_maps)`);
      const clash = this.#maps.find((m) => iova < m.iova + m.size && m.iova < iova + size);
      if (clash)
        refuse(
          EEXIST,
          `DMA_MAP [0x${iova.toString(16)}, +0x${size.toString(16)}) overlaps [0x${clash.iova.toString(16)}, +0x${clash.size.toString(16)})`,
        );
      let area: MappedArea | null = null;
      if (fd !== null) {
        if (fdOffset > BigInt(Number.MAX_SAFE_INTEGER)) refuse(EINVAL, 'DMA_MAP offset beyond 2^53');
        checkFileCovers(fd, fdOffset, size, iova);
        area = MappedArea.map(
          fd,
          Number(fdOffset),
          Number(size),
          { read: true, write: (flags & VFIO_USER_F_DMA_REGION_WRITE) !== 0 },
          `client DMA 0x${iova.toString(16)}`,
        );
      }
      const mapping: DmaMapping = { iova, size, flags, fdOffset, area };
      this.#maps.push(mapping);
      return mapping;
    } finally {
      if (fd !== null) close(fd);
    }
  }

  /** Removes the map that is exactly [iova, iova+size); its memory is released before this returns. */
  remove(iova: bigint, size: bigint): void {
    const i = this.#maps.findIndex((m) => m.iova === iova && m.size === size);
    if (i < 0) refuse(ENOENT, `DMA_UNMAP [0x${iova.toString(16)}, +0x${size.toString(16)}) matches no map`);
    this.#beforeRelease?.(this.#maps[i]!);
    const [m] = this.#maps.splice(i, 1);
    m!.area?.unmap();
  }

  /** Removes every map; a failing `beforeRelease` does not keep one (see below). Returns how many there were. */
  removeAll(): number {
    const n = this.#maps.length;
    for (const m of this.#maps.splice(0)) {
      try {
        this.#beforeRelease?.(m);
      } catch {
        // The IOMMU refused the unmap: it keeps its own pin on the pages, so dropping our view is still safe.
      }
      m.area?.unmap();
    }
    return n;
  }

  /** The pieces of [iova, iova+length) by map; EFAULT if any byte is unmapped or lacks the permission. */
  segments(iova: bigint, length: number, write: boolean): DmaSegment[] {
    const need = write ? VFIO_USER_F_DMA_REGION_WRITE : VFIO_USER_F_DMA_REGION_READ;
    const out: DmaSegment[] = [];
    let at = 0;
    while (at < length) {
      const addr = iova + BigInt(at);
      const m = this.#maps.find((x) => addr >= x.iova && addr < x.iova + x.size);
      if (!m)
        refuse(EFAULT, `DMA ${write ? 'write' : 'read'} at 0x${addr.toString(16)}: no DMA map covers it`);
      if ((m.flags & need) === 0)
        refuse(
          EFAULT,
          `DMA ${write ? 'write' : 'read'} at 0x${addr.toString(16)}: the map does not allow it`,
        );
      const offset = Number(addr - m.iova);
      const n = Math.min(length - at, Number(m.size) - offset);
      out.push({ mapping: m, offset, length: n, at });
      at += n;
    }
    return out;
  }
}
