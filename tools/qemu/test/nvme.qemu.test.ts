/**
 * sim:nvme under a real NVMe driver: Debian trixie's 6.12 kernel boots under
 * QEMU 11.1 with sim:nvme served over vfio-user and loads its own nvme
 * driver (guest/nvme.sh), which enables the controller, identifies it and
 * its namespace, sets up its I/O queues with MSI-X vectors and reads back
 * what it wrote to the namespace. The MSI-X vectors whose /proc/interrupts
 * counts rose are the ones QEMU saw the server signal (its
 * vfio_msi_interrupt trace).
 */
import { readFileSync } from 'node:fs';
import { expectNoLeaksInFile } from '@vfio-ts/test-support';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type QemuRunResult, runQemu } from '../src/index.js';
import { explained } from './explained.js';
import { guestValues, msixLines, NVME_IDENTITY, traceBetweenMarks } from './nvme.js';

expectNoLeaksInFile();

const SCRIPT = readFileSync(new URL('./guest/nvme.sh', import.meta.url), 'utf8');

describe('Linux nvme on sim:nvme over vfio-user (QEMU 11.1, 6.12 guest)', () => {
  let r: QemuRunResult & { cleanup(): void };
  let out: string;
  const value = (key: string) => guestValues(out, key);
  beforeAll(async () => {
    r = await explained(
      runQemu({ device: 'sim:nvme', firmware: 'seabios', guestScript: SCRIPT, timeoutSeconds: 240 }),
    );
    out = r.guestOutput;
    console.log(
      `nvme guest: ${r.wallSeconds.toFixed(1)} s wall, script at ${r.guestSeconds.start} s of guest uptime, done at ${r.guestSeconds.end} s\n${out}`,
    );
  }, 260_000);
  afterAll(() => r?.cleanup());

  it('the guest ran the script to the end, with no oops and nothing on QEMU stderr', () => {
    expect(r.guestExitCode).toBe(0);
    expect(r.qemuStderr).toBe('');
    expect(r.consoleLog).not.toMatch(/BUG:|Oops|Call Trace/);
  });

  it('the nvme driver binds and enables the controller: nvme0 is live with one namespace', () => {
    expect(value('driver')).toEqual(['nvme']);
    expect(value('state')).toEqual(['live']);
    // "nvme nvme0: N/0/0 default/read/poll queues": the driver created its I/O queues.
    expect(value('dmesg').join('\n')).toMatch(/nvme nvme0: \d+\/0\/0 default\/read\/poll queues/);
    expect(value('dmesg').join('\n')).not.toMatch(/timeout|failed|CSTS=|Removing after probe failure/i);
  });

  it('sysfs shows the model name, serial and firmware revision the model identifies with', () => {
    const id = NVME_IDENTITY;
    expect(value('model')).toEqual([id.model]);
    expect(value('serial')).toEqual([id.serial]);
    expect(value('firmware')).toEqual([id.firmware]);
  });

  it('/dev/nvme0n1 has the namespace size of the model, in 512-byte blocks', () => {
    const id = NVME_IDENTITY;
    expect(value('lba-size')).toEqual([String(id.lbaSize)]);
    expect(value('sectors')).toEqual([String((id.namespaceBlocks * id.lbaSize) / 512)]);
  });

  it('what was written with O_DIRECT reads back equal: 4 KiB (PRP1), one sector, 32 KiB (a PRP list), and 48 KiB through the page cache after dropping it', () => {
    expect(value('readback-small')).toEqual(['4096 bytes at lba 0 equal']);
    expect(value('readback-odd')).toEqual(['512 bytes at lba 17 equal']);
    expect(value('readback-prplist')).toEqual(['32768 bytes at lba 64 equal']);
    expect(value('readback-cached')).toEqual(['49152 bytes at lba 512 equal']);
    // The 32 KiB transfers in page-aligned buffers (busybox dd's O_DIRECT buffer): PRP1 and a list
    // of the other 7 pages, which the model read from guest memory (0x38 bytes), once each way.
    const lists = r.serverOutput.match(/vfio_server_dma read iova 0x[0-9a-f]+ count 0x38 via mmap/g) ?? [];
    expect(lists.length).toBeGreaterThanOrEqual(2);
  });

  it('MSI-X: the admin and I/O queue vectors count up, exactly as often as QEMU signalled each vector the guest enabled', () => {
    const before = msixLines(value('interrupts-before'));
    const after = msixLines(value('interrupts-after'));
    expect(before.map((l) => l.queue)).toContain('nvme0q0');
    expect(after.map((l) => l.queue)).toEqual(before.map((l) => l.queue));
    expect(after.filter((l) => l.queue !== 'nvme0q0').length).toBeGreaterThanOrEqual(1);
    // The admin queue's vector took the probe's completions, the I/O queues' ones the transfers'.
    for (const l of before.filter((l) => l.queue === 'nvme0q0')) expect(l.count, l.line).toBeGreaterThan(0);
    const delta = new Map<number, number>();
    for (const [i, l] of after.entries()) {
      delta.set(l.vector, (delta.get(l.vector) ?? 0) + l.count - before[i]!.count);
    }
    expect([...delta.values()].some((n) => n > 0)).toBe(true);
    // QEMU enabled every vector the guest's queues use: the guest programmed and unmasked their table entries...
    const used = new Set(
      [...r.trace.matchAll(/^vfio_msix_vector_do_use\s+\(vfio-user:[^)]*\) vector (\d+) used$/gm)].map((m) =>
        Number(m[1]),
      ),
    );
    for (const l of after) expect(used.has(l.vector), `vector ${l.vector} (${l.queue}) enabled`).toBe(true);
    expect(r.trace).toMatch(/^vfio_user_set_irqs\s+index 2 start \d+ count \d+ flags 0x24$/m);
    // ...and between the script's two marks QEMU saw the server signal each of them (through the
    // eventfd it gave for it) as many times as the guest counted, and no other vector.
    const window = traceBetweenMarks(r.trace, 0xfe, 0xff);
    const signalled = new Map<number, number>();
    const messages = new Map<number, Set<string>>();
    for (const m of window.matchAll(
      /^vfio_msi_interrupt\s+\(vfio-user:[^)]*\) vector (\d+) (0x[0-9a-f]+\/0x[0-9a-f]+)$/gm,
    )) {
      const v = Number(m[1]);
      signalled.set(v, (signalled.get(v) ?? 0) + 1);
      messages.set(v, (messages.get(v) ?? new Set()).add(m[2]!));
    }
    const nonZero = (m: Map<number, number>) =>
      Object.fromEntries([...m].filter(([, n]) => n > 0).sort(([a], [b]) => a - b));
    console.log(
      `QEMU signalled between the marks: ${[...signalled].map(([v, n]) => `vector ${v} x${n} (${[...messages.get(v)!].join(', ')})`).join('; ')}`,
    );
    expect(nonZero(signalled)).toEqual(nonZero(delta));
    // Each signalled vector delivered the one address/data message the guest wrote in its table entry.
    for (const [v, m] of messages) expect([...m], `vector ${v}`).toHaveLength(1);
    const data = [...messages.values()].map((m) => [...m][0]!.split('/')[1]);
    expect(new Set(data).size).toBe(data.length);
  });
});
