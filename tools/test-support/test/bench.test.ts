// The benchmark helpers' bookkeeping (never their timings): every subject runs
// once per round in alternating order, per-round ratios pair the same round,
// targets decide `holds`, and reports reach $VFIO_TS_BENCH_OUT as JSON lines.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { atLeast, atMost, info, interleave, ratioSpread, report } from '../src/bench.js';
import { tempDir } from '../src/temp-dir.js';

afterEach(() => {
  vi.unstubAllEnvs();
  vi.restoreAllMocks();
});

describe('interleave', () => {
  it('runs the warm-up, then every subject once a round, the order reversed every other round', () => {
    const calls: string[] = [];
    const loop = (name: string) => (n: number) => {
      calls.push(`${name}${n}`);
      return n;
    };
    const t = interleave({ a: loop('a'), b: loop('b') }, { iterations: 10, rounds: 3, warmup: 2 });
    expect(calls).toEqual(['a2', 'b2', 'a10', 'b10', 'b10', 'a10', 'a10', 'b10']);
    expect(t.a.rounds).toHaveLength(3);
    expect(t.a.best).toBe(Math.min(...t.a.rounds));
    expect([...t.b.rounds].sort((x, y) => x - y)[1]).toBe(t.b.median);
  });
});

describe('ratioSpread', () => {
  it('pairs each round of the subject with the same round of the baseline', () => {
    const subject = { best: 2, median: 3, rounds: [2, 6, 3] };
    const baseline = { best: 1, median: 2, rounds: [1, 2, 3] };
    expect(ratioSpread(subject, baseline)).toEqual({ min: 1, max: 3 });
  });
});

describe('results and report', () => {
  it('decides holds from the target, and shows information without one', () => {
    expect(atMost('P1', 'x', 2.9, 'x', 3)).toMatchObject({ target: '<= 3', holds: true });
    expect(atMost('P1', 'x', 3.1, 'x', 3).holds).toBe(false);
    expect(atLeast('P5', 'x', 0.59, '', 0.6)).toMatchObject({ target: '>= 0.6', holds: false });
    expect(info('P3.x', 'x', 30, 'x')).toMatchObject({ target: null, holds: null });
  });

  it('prints each result and appends it to $VFIO_TS_BENCH_OUT as one JSON line', () => {
    using tmp = tempDir();
    const out = join(tmp.dir, 'results.jsonl');
    vi.stubEnv('VFIO_TS_BENCH_OUT', out);
    const log = vi.spyOn(console, 'log').mockImplementation(() => {});
    report(atMost('P1', 'read / load', 2.5, 'x', 3, 'detail'));
    report(info('P1.read8', 'read64 / load', 1.1, 'x'));
    expect(log.mock.calls.map((c) => c[0])).toEqual([
      'P1         read / load: 2.50x (target <= 3x) holds',
      '           detail',
      'P1.read8   read64 / load: 1.10x info',
    ]);
    const lines = readFileSync(out, 'utf8')
      .trimEnd()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(lines.map((l) => [l.id, l.figure, l.holds])).toEqual([
      ['P1', 2.5, true],
      ['P1.read8', 1.1, null],
    ]);
  });
});
