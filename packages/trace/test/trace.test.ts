import { execFileSync } from 'node:child_process';
import diagnosticsChannel from 'node:diagnostics_channel';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import {
  defineTraceEvent,
  formatTrace,
  matchTraceEvents,
  subscribeTrace,
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

describe('subscribeTrace', () => {
  it('prints matching events as QEMU log lines, once per event, and reports patterns that match nothing', () => {
    const a = defineTraceEvent('test_sub_alpha', 'dev %s offset 0x%lx');
    const b = defineTraceEvent('test_sub_beta', '(%s) %d');
    const lines: string[] = [];
    const sub = subscribeTrace(['test_sub_*', 'test_sub_alpha', 'no_such_event_*'], (line) =>
      lines.push(line),
    );
    expect(sub.unmatched).toEqual(['no_such_event_*']);
    a.emit('nvme', 0x2000);
    b.emit('nvme', 3);
    sub.unsubscribe();
    sub.unsubscribe();
    a.emit('nvme', 0x3000);
    expect(lines).toEqual(['test_sub_alpha dev nvme offset 0x2000', 'test_sub_beta (nvme) 3']);
    expect(a.enabled).toBe(false);
  });

  it('keeps one catalog per process, so a second installed copy of the package sees the events of the first', () => {
    // Two copies of the built module in one Node process, as two installed versions would be.
    const dir = mkdtempSync(join(tmpdir(), 'vfio-ts-trace-'));
    try {
      const built = readFileSync(fileURLToPath(new URL('../dist/index.js', import.meta.url)), 'utf8');
      writeFileSync(join(dir, 'a.mjs'), built);
      writeFileSync(join(dir, 'b.mjs'), built);
      const script = [
        `const a = await import(${JSON.stringify(join(dir, 'a.mjs'))});`,
        `const b = await import(${JSON.stringify(join(dir, 'b.mjs'))});`,
        "a.defineTraceEvent('copy_event', 'x %d');",
        "console.log(JSON.stringify(b.matchTraceEvents('copy_*').map((e) => e.name)));",
      ].join('\n');
      const out = execFileSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' });
      expect(JSON.parse(out)).toEqual(['copy_event']);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
