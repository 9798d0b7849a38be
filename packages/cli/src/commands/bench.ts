/**
 * `vfio-ts bench <device>`: the same 4-byte register read through the fast
 * path (mapped) and the slow path (mmaps disabled), on one realized device.
 * The register is one the flat view really sends to a mapped area: the first
 * bytes of a mapped BAR may be covered by an emulated region (virtio-net's
 * MSI-X table sits at BAR 1 + 0), which would time the emulation instead.
 * The loop yields between chunks so Ctrl-C (an aborted signal) stops it
 * cleanly and the progress bar gives the cursor back.
 */
import { setImmediate as yieldToEventLoop } from 'node:timers/promises';
import type { VfioPciDevice } from '@vfio-ts/pci-vfio';
import { SingleBar } from 'cli-progress';
import { InterruptedError, UsageError } from '../errors.js';

export interface BenchResult {
  bar: number;
  offset: number;
  /** The region the fast path reads (a `mmaps[i]` ram-device region). */
  fastRegion: string;
  /** The region the slow path reads (the BAR's i/o region). */
  slowRegion: string;
  fastNs: number;
  slowNs: number;
  ratio: number;
}

export interface BenchOptions {
  readonly iterations: number;
  /** Only this BAR (default: the first with a mapped register). */
  readonly bar?: number;
  /** Where to draw a progress bar (a TTY), or null for none. */
  readonly progress: NodeJS.WritableStream | null;
  /** Aborted on Ctrl-C: the loop stops at the next chunk. */
  readonly signal?: AbortSignal;
}

interface MappedRegister {
  readonly bar: number;
  readonly offset: number;
  readonly address: number;
  readonly region: string;
}

/** The first 4-byte-aligned register of a memory BAR (or of `only`) that the flat view dispatches to a mapped area. */
export function findMappedRegister(dev: VfioPciDevice, only?: number): MappedRegister | null {
  for (const range of dev.memory.flatView().ranges) {
    if (range.region.mtreeType !== 'ramd') continue;
    const start = Math.ceil(range.start / 4) * 4;
    if (start + 4 > range.end) continue;
    const bar = dev.bars.find(
      (b) =>
        (only === undefined || b.index === only) &&
        b.kind !== 'io' &&
        b.address !== null &&
        start >= b.address &&
        start + 4 <= b.address + b.size,
    );
    if (bar)
      return { bar: bar.index, offset: start - bar.address!, address: start, region: range.region.name };
  }
  return null;
}

async function measure(
  read: () => number,
  iterations: number,
  tick: (n: number) => void,
  signal: AbortSignal | undefined,
): Promise<number> {
  let sink = 0;
  // Warm up first so the JIT has compiled the whole path before the clock runs.
  for (let i = 0; i < Math.min(iterations, 50_000); i++) sink ^= read();
  const chunk = Math.max(1, Math.floor(iterations / 20));
  let ns = 0n;
  let done = 0;
  while (done < iterations) {
    if (signal?.aborted) throw new InterruptedError('bench');
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < chunk; i++) sink ^= read();
    ns += process.hrtime.bigint() - t0;
    done += chunk;
    tick(chunk);
    // Only the reads are timed; the pause lets signals and the progress bar through.
    await yieldToEventLoop();
  }
  if (sink === 0.5) throw new Error('unreachable');
  return Number(ns) / done;
}

export async function bench(dev: VfioPciDevice, options: BenchOptions): Promise<BenchResult> {
  const reg = findMappedRegister(dev, options.bar);
  if (!reg)
    throw new UsageError(
      `${dev.name} has no mapped register to benchmark${options.bar === undefined ? '' : ` in BAR ${options.bar}`}: no BAR is mapped, or emulated regions cover every mapped byte`,
      'the fast path needs a BAR the backend lets us mmap (and no x-no-mmap)',
    );
  const fastIterations = options.iterations;
  const slowIterations = Math.max(1000, Math.floor(options.iterations / 20));
  const progress = options.progress
    ? new SingleBar({ format: ' {phase} [{bar}] {percentage}%', hideCursor: true, stream: options.progress })
    : null;
  progress?.start(fastIterations + slowIterations, 0, { phase: 'fast' });
  let done = 0;
  const tick = (n: number) => {
    done += n;
    progress?.update(done);
  };
  const read = () => dev.memory.read(reg.address, 4);
  try {
    const fastNs = await measure(read, fastIterations, tick, options.signal);
    dev.setMmapsEnabled(false);
    try {
      progress?.update(done, { phase: 'slow' });
      const slow = dev.memory.flatView().lookup(reg.address)?.region;
      // Never report a ratio of two fast paths: the memory view must have dropped the mapping.
      if (slow?.mtreeType === 'ramd')
        throw new Error(
          `the memory view still maps ${slow.name} after the mmaps were disabled, so there is no slow path to time`,
        );
      const slowRegion = slow?.name ?? '(unassigned)';
      const slowNs = await measure(read, slowIterations, tick, options.signal);
      return {
        bar: reg.bar,
        offset: reg.offset,
        fastRegion: reg.region,
        slowRegion,
        fastNs,
        slowNs,
        ratio: slowNs / fastNs,
      };
    } finally {
      dev.setMmapsEnabled(true);
    }
  } finally {
    progress?.stop();
  }
}
