/**
 * `vfio-ts bench <device>`: the same 4-byte register read through the fast
 * path (mapped) and the slow path (mmaps disabled), on one realized device.
 */
import type { VfioPciDevice } from '@vfio-ts/pci-vfio';
import { SingleBar } from 'cli-progress';
import { UsageError } from '../errors.js';

export interface BenchResult {
  bar: number;
  offset: number;
  fastNs: number;
  slowNs: number;
  ratio: number;
}

function measure(read: () => number, iterations: number, tick: (n: number) => void): number {
  let sink = 0;
  // Warm up first so the JIT has compiled the whole path before the clock runs.
  for (let i = 0; i < Math.min(iterations, 50_000); i++) sink ^= read();
  const chunk = Math.max(1, Math.floor(iterations / 20));
  const t0 = process.hrtime.bigint();
  for (let done = 0; done < iterations; done += chunk) {
    for (let i = 0; i < chunk; i++) sink ^= read();
    tick(chunk);
  }
  const ns = Number(process.hrtime.bigint() - t0) / (Math.ceil(iterations / chunk) * chunk);
  if (sink === 0.5) throw new Error('unreachable');
  return ns;
}

export function bench(dev: VfioPciDevice, options: { iterations: number; progress: boolean }): BenchResult {
  const bar = dev.bars.find((b) => b.kind !== 'io' && b.region.mmaps.some((a) => a.mapping !== null));
  if (!bar || bar.address === null)
    throw new UsageError(
      `${dev.name} has no mapped memory BAR to benchmark`,
      'the fast path needs a BAR the backend lets us mmap',
    );
  const area = bar.region.mmaps.find((a) => a.mapping !== null)!;
  const address = bar.address + area.offset;
  const fastIterations = options.iterations;
  const slowIterations = Math.max(1000, Math.floor(options.iterations / 20));
  const progress = options.progress
    ? new SingleBar({ format: ' {phase} [{bar}] {percentage}%', hideCursor: true })
    : null;
  progress?.start(fastIterations + slowIterations, 0, { phase: 'fast' });
  let done = 0;
  const tick = (n: number) => {
    done += n;
    progress?.update(done);
  };
  try {
    dev.memory.read(address, 4);
    const fastNs = measure(() => dev.memory.read(address, 4), fastIterations, tick);
    dev.setMmapsEnabled(false);
    progress?.update(done, { phase: 'slow' });
    const slowNs = measure(() => dev.memory.read(address, 4), slowIterations, tick);
    dev.setMmapsEnabled(true);
    return { bar: bar.index, offset: area.offset, fastNs, slowNs, ratio: slowNs / fastNs };
  } finally {
    progress?.stop();
  }
}
