import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { openSimDevice } from '@vfio-ts/plugin-host';
import { resourceCounts, settle } from '@vfio-ts/test-support';
import { EventFd, SysError } from '@vfio-ts/vfio-sys';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openVfioUserDevice } from '../src/index.js';
import { type ServerProcess, startServer, tempDir } from './helpers.js';

describe('our client and our server in separate processes (sim:nvme)', () => {
  const tmp = tempDir();
  let server: ServerProcess;
  beforeAll(async () => {
    server = await startServer('sim:nvme', join(tmp.dir, 'nvme.sock'));
  });
  afterAll(async () => {
    await server.stop();
    tmp[Symbol.dispose]();
  });

  it('creates the socket with mode 0600', () => {
    const st = statSync(server.socket);
    expect(st.isSocket()).toBe(true);
    expect(st.mode & 0o777).toBe(0o600);
  });

  it('negotiates and reports the device, regions and IRQs as the server has them', () => {
    using dev = openVfioUserDevice(server.socket);
    expect(dev.backend).toBe('vfio-user');
    expect(dev.deviceInfo()).toEqual({ flags: 3, numRegions: 9, numIrqs: 5 });
    const bar0 = dev.regionInfo(0);
    expect(bar0.size).toBe(0x4000);
    expect(bar0.flags & 4).toBe(4); // MMAP: the server shared the memfd
    expect(dev.regionInfo(7).size).toBe(4096);
    expect(dev.irqInfo(2).count).toBe(65);
    expect(() => dev.regionInfo(9)).toThrow(SysError);
    expect(dev.serverCapabilities.maxDataXferSize).toBe(1024 * 1024);
  });

  it('reads config space and agrees between mmap and messages', () => {
    using dev = openVfioUserDevice(server.socket);
    expect(dev.regionRead(7, 0, 4)).toBe(0x00101b36);
    dev.regionWrite(7, 4, 0x6, 2); // memory decode + bus master
    const map = dev.regionMmap(0, 0, 0x1000, { read: true, write: true });
    try {
      map.write(0x20, 0x12345678, 4);
      expect(dev.regionRead(0, 0x20, 4)).toBe(0x12345678);
      dev.regionWrite64(0, 0x28, 0x1122334455667788n);
      expect(map.read64(0x28)).toBe(0x1122334455667788n);
      expect(dev.regionRead(0, 0x8, 4)).toBe(0x00010400); // VS
    } finally {
      map.unmap();
    }
  });

  it('delivers MSI-X raised by the model to the client eventfd (through the device dup)', async () => {
    using dev = openVfioUserDevice(server.socket);
    const e = EventFd.create();
    try {
      dev.setIrqs({
        index: 2,
        action: 'trigger',
        start: 0,
        count: 1,
        data: { type: 'eventfd', eventfds: [e] },
      });
      // Loopback trigger: the device signals the vector's eventfd as if it had fired.
      dev.regionWrite(7, 4, 0x6, 2);
      dev.setIrqs({ index: 2, action: 'trigger', start: 0, count: 1, data: { type: 'none' } });
      expect(await e.wait(2000)).toBeGreaterThan(0n);
      dev.setIrqs({ index: 2, action: 'trigger', start: 0, count: 0, data: { type: 'none' } });
    } finally {
      e.close();
    }
  });

  it('serves the next client after one leaves, and removes the socket on SIGTERM', async () => {
    for (let i = 0; i < 3; i++) {
      using dev = openVfioUserDevice(server.socket);
      expect(dev.regionRead(7, 0, 2)).toBe(0x1b36);
    }
    expect(existsSync(server.socket)).toBe(true);
  });
});

describe("the client honours the server's limits", () => {
  const tmp = tempDir();
  let server: ServerProcess;
  beforeAll(async () => {
    server = await startServer('sim:nvme', join(tmp.dir, 'small.sock'), {
      maxDataXferSize: 256,
      maxMsgFds: 2,
    });
  });
  afterAll(async () => {
    await server.stop();
    tmp[Symbol.dispose]();
  });

  it('splits block accesses at max_data_xfer_size and SET_IRQS at max_msg_fds', async () => {
    using dev = openVfioUserDevice(server.socket);
    expect(dev.serverCapabilities).toMatchObject({ maxDataXferSize: 256, maxMsgFds: 2 });
    using local = openSimDevice('sim:nvme');
    expect(dev.regionReadBlock(7, 0, 4096)).toEqual(local.regionReadBlock(7, 0, 4096)); // 16 REGION_READs
    dev.regionWrite(7, 4, 0x6, 2);
    const fds = Array.from({ length: 5 }, () => EventFd.create());
    try {
      // Five vectors, one detached in the middle: runs [0,1] [2] (detach) [3,4], each within 2 fds.
      const eventfds = fds.map((e, i) => (i === 2 ? null : e));
      dev.setIrqs({ index: 2, action: 'trigger', start: 0, count: 5, data: { type: 'eventfd', eventfds } });
      dev.setIrqs({ index: 2, action: 'trigger', start: 3, count: 1, data: { type: 'none' } });
      expect(await fds[3]!.wait(2000)).toBe(1n);
      expect(fds[2]!.consume()).toBe(0n);
      // Growing the table past the enabled vectors (vector 9): the server re-enables with all ten, 3 still delivers.
      const late = EventFd.create();
      fds.push(late);
      dev.setIrqs({
        index: 2,
        action: 'trigger',
        start: 9,
        count: 1,
        data: { type: 'eventfd', eventfds: [late] },
      });
      dev.setIrqs({ index: 2, action: 'trigger', start: 3, count: 1, data: { type: 'none' } });
      dev.setIrqs({ index: 2, action: 'trigger', start: 9, count: 1, data: { type: 'none' } });
      expect(await fds[3]!.wait(2000)).toBe(1n);
      expect(await late.wait(2000)).toBe(1n);
      dev.setIrqs({ index: 2, action: 'trigger', start: 0, count: 0, data: { type: 'none' } });
      // Disabled: a trigger is refused as by Linux vfio-pci (MSI-X is not enabled).
      expect(() =>
        dev.setIrqs({ index: 2, action: 'trigger', start: 3, count: 1, data: { type: 'none' } }),
      ).toThrow(expect.objectContaining({ errnoName: 'EINVAL' }));
    } finally {
      for (const e of fds) e.close();
    }
  });
});

describe('when the server goes away', () => {
  it('a request fails with ERR_VFIO_USER_CONNECTION, a new open says no server runs, nothing leaks', async () => {
    using tmp = tempDir();
    const before = resourceCounts(); // before the server's pipes exist: they are gone again at the end
    const server = await startServer('sim:virtio-net', join(tmp.dir, 'gone.sock'));
    const dev = openVfioUserDevice(server.socket);
    expect(dev.regionRead(7, 0, 2)).toBe(0x1af4);
    await server.stop();
    expect(() => dev.regionRead(7, 0, 2)).toThrow(
      expect.objectContaining({ code: 'ERR_VFIO_USER_CONNECTION' }),
    );
    dev.close();
    expect(() => openVfioUserDevice(server.socket)).toThrow(/no vfio-user server on .*gone.sock \(ENOENT\)/);
    await settle();
    expect(resourceCounts()).toEqual(before);
  });
});
