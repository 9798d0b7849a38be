/**
 * Benchmark helpers (never timed tests): subjects measured in the same run,
 * interleaved round by round so a busy neighbour slows all of them alike,
 * the best round of each kept, and the spread of the per-round figures
 * reported beside it. Results are printed and, when VFIO_TS_BENCH_OUT names
 * a file (the root `pnpm bench` sets it), appended to it as JSON lines.
 */
import { appendFileSync } from 'node:fs';

/** A loop of `n` iterations of the operation under test, returning a checksum (kept alive). */
export type BenchLoop = (n: number) => number;

export interface Timing {
  /** Best (lowest) ns per operation over the rounds. */
  readonly best: number;
  /** Median ns per operation over the rounds. */
  readonly median: number;
  /** ns per operation of every round, in order. */
  readonly rounds: readonly number[];
}

export interface InterleaveOptions {
  /** Iterations of each loop per round. */
  readonly iterations: number;
  /** Rounds (default 7). Each round runs every subject once; the order alternates. */
  readonly rounds?: number;
  /** Warm-up iterations per subject before timing (default min(iterations, 200k)). */
  readonly warmup?: number;
}

let sink = 0;

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** Times each loop in interleaved rounds (forward, then backward order, ...). */
export function interleave<K extends string>(
  loops: Record<K, BenchLoop>,
  options: InterleaveOptions,
): Record<K, Timing> {
  const names = Object.keys(loops) as K[];
  const rounds = options.rounds ?? 7;
  const warmup = options.warmup ?? Math.min(options.iterations, 200_000);
  for (const name of names) sink ^= loops[name](warmup);
  const samples = new Map<K, number[]>(names.map((n) => [n, []]));
  for (let round = 0; round < rounds; round++) {
    const order = round % 2 === 0 ? names : [...names].reverse();
    for (const name of order) {
      const t0 = process.hrtime.bigint();
      sink ^= loops[name](options.iterations);
      samples.get(name)!.push(Number(process.hrtime.bigint() - t0) / options.iterations);
    }
  }
  if (sink === 0.5) console.log('unreachable'); // keeps the checksums alive
  const out = {} as Record<K, Timing>;
  for (const name of names) {
    const s = samples.get(name)!;
    out[name] = { best: Math.min(...s), median: median(s), rounds: s };
  }
  return out;
}

/** The per-round ratios subject/baseline (same round, so the same machine load): min and max. */
export function ratioSpread(subject: Timing, baseline: Timing): { min: number; max: number } {
  const ratios = subject.rounds.map((t, i) => t / baseline.rounds[i]!);
  return { min: Math.min(...ratios), max: Math.max(...ratios) };
}

export interface BenchResult {
  /** The benchmark id (P1, P3, ...), with a suffix for a variant (P1.read8). */
  readonly id: string;
  /** What was measured, in a few words. */
  readonly what: string;
  /** The figure compared with the target (a ratio, ms, ...). */
  readonly figure: number;
  readonly unit: string;
  /** The target as text (`<= 3`), or null for a figure shown as information. */
  readonly target: string | null;
  /** Whether the target holds (null: information only). */
  readonly holds: boolean | null;
  /** The measurements behind the figure (baseline and subject ns, spread, ...). */
  readonly detail?: string;
}

/** A result whose target is `figure <= limit` (ratios, times). */
export function atMost(
  id: string,
  what: string,
  figure: number,
  unit: string,
  limit: number,
  detail?: string,
): BenchResult {
  return { id, what, figure, unit, target: `<= ${limit}`, holds: figure <= limit, detail };
}

/** A result whose target is `figure >= limit` (a rate, a share of a ceiling). */
export function atLeast(
  id: string,
  what: string,
  figure: number,
  unit: string,
  limit: number,
  detail?: string,
): BenchResult {
  return { id, what, figure, unit, target: `>= ${limit}`, holds: figure >= limit, detail };
}

/** A result shown for information only. */
export function info(id: string, what: string, figure: number, unit: string, detail?: string): BenchResult {
  return { id, what, figure, unit, target: null, holds: null, detail };
}

function formatFigure(figure: number): string {
  if (!Number.isFinite(figure)) return String(figure);
  const abs = Math.abs(figure);
  return abs >= 100 ? figure.toFixed(0) : abs >= 10 ? figure.toFixed(1) : figure.toFixed(2);
}

/** Prints a result line and appends it to $VFIO_TS_BENCH_OUT when set. */
export function report(result: BenchResult): void {
  const verdict = result.holds === null ? 'info' : result.holds ? 'holds' : 'DOES NOT HOLD';
  const target = result.target === null ? '' : ` (target ${result.target}${result.unit})`;
  console.log(
    `${result.id.padEnd(10)} ${result.what}: ${formatFigure(result.figure)}${result.unit}${target} ${verdict}`,
  );
  if (result.detail) console.log(`${' '.repeat(11)}${result.detail}`);
  const out = process.env.VFIO_TS_BENCH_OUT;
  if (out) appendFileSync(out, `${JSON.stringify(result)}\n`);
}

/** `ns` with a precision that suits its size. */
export function ns(value: number): string {
  return `${formatFigure(value)} ns`;
}
