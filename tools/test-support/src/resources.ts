/**
 * Leak checks: every fd and mapping has one owner that releases it, so a test
 * counts this process's fds and device mappings before and after and expects
 * the same numbers.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { afterAll, beforeAll, expect } from 'vitest';

export interface ResourceCounts {
  /** Entries of /proc/self/fd. */
  readonly fds: number;
  /** Lines of /proc/self/maps that `mapsMatching` accepted. */
  readonly maps: number;
}

/**
 * The mappings a leak in vfio-ts would grow: memfds (the in-process models'
 * BARs, test buffers) and anything VFIO (device fds' BAR mappings).
 */
export function isDeviceMapping(line: string): boolean {
  return line.includes('memfd:') || line.includes('vfio');
}

/** Open fds and device mappings of this process (`mapsMatching` narrows which mappings count). */
export function resourceCounts(mapsMatching: (line: string) => boolean = isDeviceMapping): ResourceCounts {
  return {
    fds: readdirSync('/proc/self/fd').length,
    maps: readFileSync('/proc/self/maps', 'utf8').split('\n').filter(mapsMatching).length,
  };
}

/**
 * Collects garbage until unmapped placeholders are gone: MappedArea.unmap()
 * leaves an anonymous placeholder that a FinalizationRegistry releases once no
 * view of it is reachable. Needs node's --expose-gc (execArgv in vitest.config.ts).
 */
export async function settle(): Promise<void> {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) throw new Error('leak checks need --expose-gc: add execArgv: ["--expose-gc"] to vitest.config.ts');
  for (let i = 0; i < 6; i++) {
    gc();
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** Registers hooks that fail the test file if it ends with more fds or device mappings than it started with. */
export function expectNoLeaksInFile(mapsMatching: (line: string) => boolean = isDeviceMapping): void {
  let before: ResourceCounts;
  beforeAll(() => {
    before = resourceCounts(mapsMatching);
  });
  afterAll(async () => {
    await settle();
    expect(resourceCounts(mapsMatching)).toEqual(before);
  });
}
