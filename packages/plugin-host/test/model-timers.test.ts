/**
 * ModelContext.every: periodic work a model owns. It runs on the interval,
 * takes the delay the work returns, stops when asked or when the device
 * closes, and a throw stops only that timer and is reported, never thrown
 * into the event loop.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import {
  ConfigBuilder,
  type DeviceModel,
  type ModelContext,
  type ModelTimer,
  SimDevice,
} from '../src/index.js';

const bars = [{ index: 0, size: 4096, kind: 'mem32' as const, prefetchable: false }];

/** A model whose setup hands its context to the test. */
function withContext(onSetup: (ctx: ModelContext) => void): DeviceModel {
  return {
    name: 'ticker',
    config: new ConfigBuilder().build({ vendor: 0x1234, device: 0x7105, classCode: 0xff0000 }, bars),
    bars,
    setup(ctx) {
      onSetup(ctx);
      return undefined;
    },
  };
}

beforeEach(() => {
  vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
});
afterEach(() => {
  vi.useRealTimers();
});

describe('ModelContext.every', () => {
  it('runs the work every interval, and at the delay the work returns', () => {
    const runs: number[] = [];
    let ctx!: ModelContext;
    using dev = new SimDevice(
      withContext((c) => (ctx = c)),
      'sim:ticker',
    );
    let delay: number | undefined;
    const timer = ctx.every(10, () => {
      runs.push(Date.now());
      return delay;
    });
    const t0 = Date.now();
    vi.advanceTimersByTime(35);
    expect(runs.map((t) => t - t0)).toEqual([10, 20, 30]);
    delay = 2;
    vi.advanceTimersByTime(10); // the run at 40 returns 2: then 42, 44, ...
    expect(runs.map((t) => t - t0)).toEqual([10, 20, 30, 40, 42, 44]);
    expect(timer.intervalMs).toBe(2);
    expect(dev.timerCount).toBe(1);
    timer.stop();
    timer.stop();
    expect(timer.stopped).toBe(true);
    vi.advanceTimersByTime(100);
    expect(runs).toHaveLength(6);
    expect(dev.timerCount).toBe(0);
  });

  it('stops every timer when the device closes', () => {
    let ctx!: ModelContext;
    const dev = new SimDevice(
      withContext((c) => (ctx = c)),
      'sim:ticker',
    );
    let runs = 0;
    const timers: ModelTimer[] = [ctx.every(1, () => void runs++), ctx.every(5, () => void runs++)];
    vi.advanceTimersByTime(5);
    const seen = runs;
    dev.close();
    expect(timers.every((t) => t.stopped)).toBe(true);
    expect(vi.getTimerCount()).toBe(0);
    vi.advanceTimersByTime(50);
    expect(runs).toBe(seen);
    expect(() => ctx.every(1, () => undefined)).toThrow(expect.objectContaining({ code: 'ERR_MODEL_TIMER' }));
  });

  it('work that throws is stopped and reported; other timers go on', () => {
    const reported: unknown[] = [];
    let ctx!: ModelContext;
    using dev = new SimDevice(
      withContext((c) => (ctx = c)),
      'sim:ticker',
      {
        onModelError: (err) => reported.push(err),
      },
    );
    let good = 0;
    const bad = ctx.every(1, () => {
      throw new Error('register file on fire');
    });
    ctx.every(1, () => void good++);
    vi.advanceTimersByTime(5);
    expect(bad.stopped).toBe(true);
    expect(reported).toEqual([expect.objectContaining({ message: 'register file on fire' })]);
    expect(good).toBe(5);
    expect(dev.timerCount).toBe(1);
  });

  it('by default a failing work is a process warning naming the model', () => {
    let ctx!: ModelContext;
    using _dev = new SimDevice(
      withContext((c) => (ctx = c)),
      'sim:ticker',
    );
    const warn = vi.spyOn(process, 'emitWarning').mockImplementation(() => {});
    try {
      ctx.every(1, () => {
        throw new Error('boom');
      });
      vi.advanceTimersByTime(1);
      expect(warn).toHaveBeenCalledWith(
        expect.stringMatching(/ticker.*periodic work failed and was stopped: boom/),
        'ModelWarning',
      );
    } finally {
      warn.mockRestore();
    }
  });

  it.each([0, -1, Number.NaN, Number.POSITIVE_INFINITY, 2 ** 31, '5'])(
    'refuses the interval %s (ERR_MODEL_TIMER)',
    (ms) => {
      let ctx!: ModelContext;
      using _dev = new SimDevice(
        withContext((c) => (ctx = c)),
        'sim:ticker',
      );
      expect(() => ctx.every(ms as number, () => undefined)).toThrow(
        expect.objectContaining({ code: 'ERR_MODEL_TIMER' }),
      );
    },
  );

  it('a bad delay returned by the work stops that timer and is reported', () => {
    const reported: unknown[] = [];
    let ctx!: ModelContext;
    using _dev = new SimDevice(
      withContext((c) => (ctx = c)),
      'sim:ticker',
      {
        onModelError: (err) => reported.push(err),
      },
    );
    const t = ctx.every(1, () => -3);
    vi.advanceTimersByTime(3);
    expect(t.stopped).toBe(true);
    expect(reported).toEqual([expect.objectContaining({ code: 'ERR_MODEL_TIMER' })]);
  });
});

describe('ModelContext.every on real timers', () => {
  it('never keeps the process alive (the timer is unref’d)', () => {
    vi.useRealTimers();
    let ctx!: ModelContext;
    using _dev = new SimDevice(
      withContext((c) => (ctx = c)),
      'sim:ticker',
    );
    const real = globalThis.setTimeout;
    const made: NodeJS.Timeout[] = [];
    const spy = vi.spyOn(globalThis, 'setTimeout').mockImplementation(((fn: () => void, ms: number) => {
      const t = real(fn, ms);
      made.push(t);
      return t;
    }) as typeof setTimeout);
    try {
      ctx.every(50, () => undefined);
    } finally {
      spy.mockRestore();
    }
    expect(made).toHaveLength(1);
    expect(made[0]!.hasRef()).toBe(false);
  });
});
