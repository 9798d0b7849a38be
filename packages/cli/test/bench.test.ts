/**
 * `bench` times a register the memory tree really serves from a mapping (not
 * an emulated region laid over the start of the BAR), says so when there is
 * none, and Ctrl-C stops it with the device torn down and the cursor back.
 */
import { spawn } from 'node:child_process';
import { Writable } from 'node:stream';
import { describe, expect, it, vi } from 'vitest';
import { run } from '../src/program.js';
import { BIN, cli } from './run-cli.js';

describe('bench', () => {
  it('on virtio-net times a mapped register, not the emulated MSI-X table at BAR 1 + 0', () => {
    const r = cli(['bench', 'sim:virtio-net', '--iterations', '20000', '--json']);
    expect(r.code).toBe(0);
    const doc = JSON.parse(r.stdout);
    expect(doc.fastRegion).toBe(`sim:virtio-net BAR ${doc.bar} mmaps[0]`);
    expect(doc.slowRegion).toBe(`sim:virtio-net BAR ${doc.bar}`);
    expect(doc.slowNs).toBeGreaterThan(doc.fastNs);
    // The table (4 entries of 16 bytes) covers BAR 1 [0, 0x40): the first mapped register is after it.
    const bar1 = JSON.parse(
      cli(['bench', 'sim:virtio-net', '--bar', '1', '--iterations', '20000', '--json']).stdout,
    );
    expect(bar1).toMatchObject({ bar: 1, offset: 0x40, fastRegion: 'sim:virtio-net BAR 1 mmaps[0]' });
  });

  it('says so when no register is mapped', () => {
    const r = cli(['--option', 'x-no-mmap=on', 'bench', 'sim:nvme', '--iterations', '1000']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^vfio-ts: sim:nvme has no mapped register to benchmark/);
    // e1000e's BAR 2 is I/O ports: never mapped.
    const io = cli(['bench', 'sim:e1000e', '--bar', '2', '--iterations', '1000']);
    expect([io.code, io.stderr]).toEqual([
      2,
      expect.stringMatching(/^vfio-ts: sim:e1000e has no mapped register to benchmark in BAR 2/),
    ]);
  });

  it('Ctrl-C (SIGINT) stops it: exit 130, one line, not killed by the signal', async () => {
    const args = ['--trace', 'vfio_region_setup', 'bench', 'sim:nvme', '--iterations', '2000000000'];
    const child = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    const exited = new Promise<[number | null, string | null]>((resolve) =>
      child.on('close', (code, signal) => resolve([code, signal])),
    );
    // The device is realized (its regions traced) once the handler is in place and the loop about to run.
    await vi.waitFor(() => expect(stderr).toContain('vfio_region_setup'), { timeout: 15_000 });
    child.kill('SIGINT');
    expect(await exited).toEqual([130, null]);
    expect(stderr.endsWith('\nvfio-ts: bench interrupted\n')).toBe(true);
  });

  it('on a terminal, Ctrl-C gives the cursor back that the progress bar hid', async () => {
    let written = '';
    const tty = Object.assign(
      new Writable({
        write(chunk, _enc, cb) {
          written += chunk.toString();
          cb();
        },
      }),
      { isTTY: true, columns: 80, cursorTo: () => true, clearLine: () => true, moveCursor: () => true },
    );
    const out = new Writable({ write: (_c, _e, cb) => cb() });
    const code = run(['bench', 'sim:nvme', '--iterations', '2000000000'], {
      stdout: out as unknown as NodeJS.WriteStream,
      stderr: tty as unknown as NodeJS.WriteStream,
    });
    await vi.waitFor(() => expect(written).toContain('\x1b[?25l'), { timeout: 10_000 });
    process.emit('SIGINT');
    expect(await code).toBe(130);
    expect(written.lastIndexOf('\x1b[?25h')).toBeGreaterThan(written.lastIndexOf('\x1b[?25l'));
    expect(written.endsWith('vfio-ts: bench interrupted\n')).toBe(true);
  });
});
