import diagnosticsChannel from 'node:diagnostics_channel';
import { describe, expect, it } from 'vitest';
import {
  defineTraceEvent,
  formatTrace,
  matchTraceEvents,
  type TraceMessage,
  traceChannelName,
} from '../src/index.js';

describe('trace events', () => {
  it('format QEMU printf strings exactly', () => {
    expect(formatTrace('Region %s [0x%lx - 0x%lx]', ['dev BAR 0 mmaps[0]', 0, 0x3fff])).toBe(
      'Region dev BAR 0 mmaps[0] [0x0 - 0x3fff]',
    );
    expect(formatTrace('Device %s, region %d "%s", flags: 0x%lx', ['x', 7, 'n', 3])).toBe(
      'Device x, region 7 "n", flags: 0x3',
    );
    expect(formatTrace('%016lx %x %u %%', [0x1234n, -1, true])).toBe('0000000000001234 ffffffffffffffff 1 %');
  });

  it('publish only when someone listens, on one channel per event, and match QEMU globs', () => {
    const ev = defineTraceEvent('test_event_one', 'value %d');
    expect(ev.enabled).toBe(false);
    const seen: TraceMessage[] = [];
    const fn = (m: unknown) => seen.push(m as TraceMessage);
    diagnosticsChannel.subscribe(traceChannelName('test_event_one'), fn);
    expect(ev.enabled).toBe(true);
    ev.emit(5);
    diagnosticsChannel.unsubscribe(traceChannelName('test_event_one'), fn);
    ev.emit(6);
    expect(seen).toEqual([{ event: 'test_event_one', format: 'value %d', args: [5] }]);
    expect(matchTraceEvents('test_event_*').map((e) => e.name)).toContain('test_event_one');
    expect(matchTraceEvents('test_event_on?').map((e) => e.name)).toEqual(['test_event_one']);
    expect(() => defineTraceEvent('test_event_one', 'other %d')).toThrow(/another format/);
  });
});
