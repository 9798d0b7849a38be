/**
 * The server under a client that dies: QEMU is killed with SIGKILL in the
 * middle of a run ten times against one `vfio-ts serve` process (with its
 * DMA maps set up, the firmware running); the server stays up, releases
 * every fd and mapping the client brought (counted in /proc/<pid>/fd and
 * /proc/<pid>/maps), and the next QEMU boots the guest, whose driver binds.
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { expectNoLeaksInFile } from '@vfio-ts/test-support';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CACHE_DIR, QemuError, runQemu, ServeProcess } from '../src/index.js';
import { explained } from './explained.js';
import { serverResources, until } from './server-resources.js';

expectNoLeaksInFile();

const count = (text: string, re: RegExp) => text.match(re)?.length ?? 0;

describe('QEMU killed with SIGKILL mid-run, 10 times, against one server', () => {
  let dir: string;
  let server: ServeProcess;
  beforeAll(async () => {
    mkdirSync(CACHE_DIR, { recursive: true });
    dir = mkdtempSync(join(CACHE_DIR, 'kill-'));
    server = await ServeProcess.start({ device: 'sim:pci-idio-16', socketPath: join(dir, 'dev.sock') });
  });
  afterAll(async () => {
    await server?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('the server stays up and is back to its own fds and mappings after every kill', async () => {
    const before = serverResources(server.pid);
    const kills: { attachedMaps: number; after: { fds: number; memfdMaps: number } }[] = [];
    for (let i = 0; i < 10; i++) {
      const disconnects = count(server.output, /vfio_server_disconnect /g);
      let attachedMaps = 0;
      const err = await runQemu({
        device: 'sim:pci-idio-16',
        server,
        firmware: 'seabios',
        timeoutSeconds: 60,
        monitor: async (_qmp, live) => {
          // Mid-run: QEMU attached, its RAM mapped into the server, the firmware at work (0-400 ms in).
          await new Promise((r) => setTimeout(r, (i * 37) % 400));
          attachedMaps = serverResources(server.pid).memfdMaps;
          process.kill(live.qemuPid, 'SIGKILL');
          await until('QEMU to die', () => {
            try {
              process.kill(live.qemuPid, 0);
              return false;
            } catch {
              return true;
            }
          });
        },
      }).then(
        () => null,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(QemuError);
      expect((err as QemuError).code).toBe('ERR_QEMU_EXIT');
      expect((err as QemuError).message).toMatch(/QEMU exited \(SIGKILL\)/);
      await until(
        'the server to see the disconnect',
        () => count(server.output, /vfio_server_disconnect /g) > disconnects,
      );
      expect(server.running, 'the server is still running').toBe(true);
      kills.push({ attachedMaps, after: serverResources(server.pid) });
    }
    // QEMU's shared guest RAM was mapped into the server while attached, and released each time.
    expect(kills.every((k) => k.attachedMaps > before.memfdMaps)).toBe(true);
    expect(kills.map((k) => k.after)).toEqual(Array.from({ length: 10 }, () => before));
  }, 300_000);

  it('the next QEMU boots the guest and its driver binds to the same server', async () => {
    const r = await explained(
      runQemu({
        device: 'sim:pci-idio-16',
        server,
        firmware: 'seabios',
        guestScript: 'basename "$(readlink /sys/bus/pci/devices/0000:00:04.0/driver)"; gpiodetect',
        timeoutSeconds: 120,
      }),
    );
    r.cleanup();
    expect(r.guestExitCode).toBe(0);
    expect(r.guestOutput).toMatch(/^pci-idio-16$/m);
    expect(r.guestOutput).toMatch(/\(32 lines\)/);
    expect(server.running).toBe(true);
  }, 150_000);
});
