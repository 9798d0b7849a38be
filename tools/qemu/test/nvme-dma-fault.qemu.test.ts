/**
 * A guest that points the controller's DMA outside its RAM: with no nvme
 * driver loaded, guest/nvme-dma-fault.c (a static program in the
 * initramfs) drives sim:nvme from user space (Bus Master through the config
 * file, BAR0 through resource0, admin queues in locked pages found through
 * /proc/self/pagemap) and submits Identify Controller with PRP1 = 4 GiB, past
 * the end of the guest's 512 MiB. The model answers with an error
 * completion, the controller keeps working (a good Identify completes), and
 * the server stays up, back to its own fds and mappings once QEMU left, and
 * serves the next QEMU.
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { expectNoLeaksInFile } from '@vfio-ts/test-support';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CACHE_DIR, DEVICE_BDF, type QemuRunResult, runQemu, ServeProcess } from '../src/index.js';
import { explained } from './explained.js';
import { guestValues, NVME_DMA_ERROR, NVME_IDENTITY } from './nvme.js';
import { serverResources, until } from './server-resources.js';

expectNoLeaksInFile();

const BAD_ADDRESS = 0x1_0000_0000; // 4 GiB: the guest has 512 MiB, all below it
const count = (text: string, re: RegExp) => text.match(re)?.length ?? 0;

describe('sim:nvme given a DMA address outside guest RAM (QEMU 11.1, 6.12 guest, no nvme driver)', () => {
  let dir: string;
  let server: ServeProcess;
  let before: ReturnType<typeof serverResources>;
  let r: QemuRunResult & { cleanup(): void };
  let out: string;
  const value = (key: string) => guestValues(out, key);
  beforeAll(async () => {
    mkdirSync(CACHE_DIR, { recursive: true });
    dir = mkdtempSync(join(CACHE_DIR, 'dma-fault-'));
    server = await ServeProcess.start({ device: 'sim:nvme', socketPath: join(dir, 'dev.sock') });
    before = serverResources(server.pid);
    r = await explained(
      runQemu({
        device: 'sim:nvme',
        server,
        firmware: 'seabios',
        guestScript: `nvme-dma-fault ${DEVICE_BDF} 0x${BAD_ADDRESS.toString(16)}`,
        memoryMiB: 512,
        timeoutSeconds: 180,
      }),
    );
    out = r.guestOutput;
    console.log(`nvme DMA-fault guest: ${r.wallSeconds.toFixed(1)} s wall\n${out}`);
  }, 200_000);
  afterAll(async () => {
    r?.cleanup();
    await server?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('the program enabled the controller from user space and ran to the end', () => {
    expect(r.guestExitCode, out).toBe(0);
    expect(r.qemuStderr).toBe('');
    expect(r.consoleLog).not.toMatch(/BUG:|Oops|Call Trace/);
    expect(value('command')).toEqual([expect.stringMatching(/^0x[0-9a-f]{4}$/)]);
    expect(Number(value('command')[0]) & 0x6).toBe(0x6); // memory decode and Bus Master on
    expect(value('enabled')).toEqual(['csts 0x00000001']);
    expect(value('disabled')).toEqual(['csts 0x00000000']);
  });

  it('Identify with PRP1 outside guest RAM completes with an error status; the model moved no data there', () => {
    expect(value('bad-prp1')).toEqual([`0x${BAD_ADDRESS.toString(16)}`]);
    const [bad] = value('bad-identify');
    const m = bad?.match(
      /^cid 1 status 0x([0-9a-f]{4}) sct 0x([0-7]) sc 0x([0-9a-f]{2}) dnr [01] sqhd 1 sqid 0$/,
    );
    expect(m, bad).not.toBeNull();
    expect({ sct: Number.parseInt(m![2]!, 16), sc: Number.parseInt(m![3]!, 16) }).toEqual(NVME_DMA_ERROR);
    // The controller did not go fatal over it.
    expect(value('after-bad')).toEqual(['csts 0x00000001']);
    // The server's DMA trace (vfio_server_dma, one line per piece moved) has nothing at that address.
    expect(r.serverOutput).not.toMatch(
      new RegExp(`vfio_server_dma \\w+ iova 0x${BAD_ADDRESS.toString(16)} `),
    );
  });

  it('the controller still works: a good Identify Controller completes with the model identity, written through the fd-backed map', () => {
    expect(value('good-identify')).toEqual(['cid 2 status 0x0000 sct 0x0 sc 0x00 dnr 0 sqhd 2 sqid 0']);
    // The model read the commands from the SQ page and wrote the 4 KiB answer into the buffer page, through QEMU's RAM memfd.
    const [asq] = value('asq');
    const [buffer] = value('buffer');
    expect(r.serverOutput).toMatch(new RegExp(`vfio_server_dma read iova ${asq} count 0x40 via mmap`));
    expect(r.serverOutput).toMatch(new RegExp(`vfio_server_dma write iova ${buffer} count 0x1000 via mmap`));
    const id = NVME_IDENTITY;
    expect(value('vid')).toEqual(['0x1b36']);
    expect(value('model')).toEqual([id.model]);
    expect(value('serial')).toEqual([id.serial]);
    expect(value('firmware')).toEqual([id.firmware]);
  });

  it('the server stays up, is back to its own fds and mappings after QEMU left, and serves the next QEMU', async () => {
    expect(server.running).toBe(true);
    await until(
      'the server to see the disconnect',
      () => count(server.output, /vfio_server_disconnect /g) >= 1,
    );
    expect(serverResources(server.pid)).toEqual(before);
    const next = await explained(
      runQemu({ device: 'sim:nvme', server, firmware: 'none', hmp: ['info pci'], timeoutSeconds: 60 }),
    );
    next.cleanup();
    expect(next.hmp[0]?.output).toMatch(
      /Bus {2}0, device {3}4, function 0:\n\s+Class \d+: PCI device 1b36:0010/,
    );
    expect(next.qemuStderr).toBe('');
    await until(
      'the server to see the second disconnect',
      () => count(server.output, /vfio_server_disconnect /g) >= 2,
    );
    expect(server.running).toBe(true);
    expect(serverResources(server.pid)).toEqual(before);
  }, 90_000);
});
