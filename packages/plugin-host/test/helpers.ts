import { readdirSync, readFileSync } from 'node:fs';

/** Open fds and mappings of this process, to check that nothing leaks. */
export function resourceCounts(): { fds: number; maps: number } {
  return {
    fds: readdirSync('/proc/self/fd').length,
    maps: readFileSync('/proc/self/maps', 'utf8')
      .split('\n')
      .filter((l) => l.includes('memfd:')).length,
  };
}

/** Collect garbage until unmapped placeholders are gone (MappedArea releases them from a finalizer). */
export async function settle(): Promise<void> {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) throw new Error('tests need --expose-gc (set in vitest.config.ts)');
  for (let i = 0; i < 5; i++) {
    gc();
    await new Promise((r) => setTimeout(r, 5));
  }
}
