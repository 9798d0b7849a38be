/**
 * The runner itself: what comes back from a run (trace, monitor output,
 * guest output and exit code, server output, exit codes), and that every
 * failure is a typed QemuError naming the part that failed or hung.
 */
import { existsSync, readdirSync } from 'node:fs';
import { expectNoLeaksInFile } from '@vfio-ts/test-support';
import { describe, expect, it } from 'vitest';
import { CACHE_DIR, prepareQemu, QemuError, runQemu } from '../src/index.js';
import { explained } from './explained.js';

expectNoLeaksInFile();

async function failure(p: Promise<unknown>): Promise<QemuError> {
  try {
    await p;
  } catch (err) {
    if (err instanceof QemuError) return err;
    throw err;
  }
  throw new Error('the run succeeded where it had to fail');
}

describe('QEMU tier harness', () => {
  it('prepares QEMU 11.1 in the trixie root and trixie 6.12 kernel', () => {
    const image = prepareQemu();
    expect(image.qemuVersion).toMatch(/QEMU emulator version 11\.1\./);
    expect(image.kernelVersion).toMatch(/^6\.12\./);
    for (const f of [image.kernel, image.initrd, image.busybox]) expect(existsSync(f), f).toBe(true);
  });

  it('with -S: QEMU realizes the device, the monitor answers, both exit 0 and the run folder is removed', async () => {
    const r = await explained(
      runQemu({
        device: 'sim:nvme',
        firmware: 'none',
        hmp: ['info status'],
        timeoutSeconds: 60,
      }),
    );
    r.cleanup();
    expect(r.hmp).toEqual([{ command: 'info status', output: expect.stringContaining('paused') }]);
    expect(r.trace).toMatch(/^vfio_user_version /m);
    expect(r.serverOutput).toMatch(/^serving sim:nvme on /m);
    expect(r.serverOutput).toMatch(/vfio_server_request id 0x0 VERSION /);
    expect(r.qemuExit).toEqual({ code: 0, signal: null });
    expect(r.serverExit).toEqual({ code: 0, signal: null });
    expect(r.guestExitCode).toBeNull();
    expect(existsSync(r.runDir)).toBe(false);
  });

  it('runs a guest script under the 6.12 kernel and returns its output and exit code', async () => {
    const r = await explained(
      runQemu({
        device: 'sim:nvme',
        firmware: 'seabios',
        guestScript: 'echo "hello from $(uname -r)"; exit 7',
        timeoutSeconds: 120,
      }),
    );
    r.cleanup();
    expect(r.guestOutput).toMatch(/^hello from 6\.12\./m);
    expect(r.guestExitCode).toBe(7);
    expect(r.consoleLog).toMatch(/qemu-init: exit 7/);
    expect(r.guestSeconds.start).toBeGreaterThan(0);
    expect(r.qemuExit.code).toBe(0);
  });

  it('a guest that hangs is killed at the deadline and the error names the guest script', async () => {
    const err = await failure(
      runQemu({ device: 'sim:nvme', firmware: 'seabios', guestScript: 'sleep 600', timeoutSeconds: 30 }),
    );
    expect(err.code).toBe('ERR_QEMU_TIMEOUT');
    expect(err.part).toMatch(/^guest script/);
    expect(err.message).toMatch(/within the run's 30 s; QEMU and the server were killed/);
    expect(err.consoleLog).toMatch(/qemu-init: .*running the script/);
    expect(err.serverOutput).toMatch(/VERSION/);
  });

  it('a monitor callback that never returns is killed at the deadline and the error names it', async () => {
    const started = Date.now();
    const err = await failure(
      runQemu({
        device: 'sim:nvme',
        firmware: 'none',
        timeoutSeconds: 5,
        monitor: () => new Promise<void>(() => {}),
      }),
    );
    expect(err.code).toBe('ERR_QEMU_TIMEOUT');
    expect(err.part).toBe('monitor callback');
    expect(err.trace).toMatch(/^vfio_user_version /m);
    expect(Date.now() - started).toBeLessThan(15_000);
  });

  it('a server that cannot start is ERR_QEMU_SERVER with its own message', async () => {
    const err = await failure(runQemu({ device: 'sim:no-such-model', firmware: 'none', timeoutSeconds: 30 }));
    expect(err.code).toBe('ERR_QEMU_SERVER');
    expect(err.part).toBe('server start');
    expect(err.serverOutput).toMatch(/no-such-model/);
  });

  it('a failing monitor command is ERR_QEMU_MONITOR naming the command', async () => {
    const err = await failure(
      runQemu({
        device: 'sim:nvme',
        firmware: 'none',
        timeoutSeconds: 30,
        monitor: async (qmp) => {
          await qmp.execute('no-such-qmp-command');
        },
      }),
    );
    expect(err.code).toBe('ERR_QEMU_MONITOR');
    expect(err.message).toMatch(/CommandNotFound/);
    expect(err.part).toBe('monitor callback');
  });

  it('a guest script without firmware is refused before anything starts', async () => {
    const err = await failure(
      runQemu({ device: 'sim:nvme', firmware: 'none', guestScript: 'true', timeoutSeconds: 30 }),
    );
    expect(err.code).toBe('ERR_QEMU_OPTIONS');
    expect(err.part).toBe('options');
  });

  it('leaves no run folders behind', () => {
    const runs = `${CACHE_DIR}/runs`;
    const mine = existsSync(runs) ? readdirSync(runs).filter((d) => d.startsWith(`${process.pid}-`)) : [];
    expect(mine).toEqual([]);
  });
});
