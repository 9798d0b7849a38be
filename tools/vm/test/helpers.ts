import { readdirSync, readFileSync } from 'node:fs';
import { libc, MappedArea } from '@vfio-ts/vfio-sys';
import { afterAll, beforeAll, expect } from 'vitest';

/** This process's open fds and its mappings of VFIO devices and memfds: what a leak would grow. */
export function openResources(): { fds: number; vfioMaps: number } {
  const maps = readFileSync('/proc/self/maps', 'utf8').split('\n');
  return {
    fds: readdirSync('/proc/self/fd').length,
    vfioMaps: maps.filter((l) => l.includes('vfio') || l.includes('memfd:')).length,
  };
}

/** Runs the garbage collector until MappedArea's finalizers have released their placeholders. */
export async function collect(): Promise<void> {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) throw new Error('the VM tests need --expose-gc (tools/vm/vitest.config.ts sets it)');
  for (let i = 0; i < 5; i++) {
    gc();
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** A memfd-backed buffer mapped read/write: memory whose address can be given to VFIO_IOMMU_MAP_DMA. */
export function dmaBuffer(size: number): { area: MappedArea; close(): void } {
  const fd = libc.sysMemfdCreate('vm-dma');
  try {
    libc.sysFtruncate(fd, size);
    const area = MappedArea.map(fd, 0, size, { read: true, write: true }, 'dma buffer');
    return {
      area,
      close() {
        area.unmap();
        libc.sysClose(fd);
      },
    };
  } catch (err) {
    libc.sysClose(fd);
    throw err;
  }
}

export async function sleep(ms: number): Promise<void> {
  await new Promise((r) => setTimeout(r, ms));
}

/** Registers hooks that fail the file if it ends with more fds or VFIO/memfd mappings than it started with. */
export function expectNoLeaksInFile(): void {
  let before: ReturnType<typeof openResources>;
  beforeAll(() => {
    before = openResources();
  });
  afterAll(async () => {
    await collect();
    expect(openResources()).toEqual(before);
  });
}

/** Waits up to a second for a (non-blocking) eventfd to be signalled and returns its count, 0 if it never was. */
export async function eventfdWait(fd: number): Promise<bigint> {
  for (let i = 0; i < 50; i++) {
    const n = libc.eventfdConsume(fd);
    if (n > 0n) return n;
    await sleep(20);
  }
  return 0n;
}
