/**
 * Model DMA into client memory, both forms: an fd-backed DMA map (the server
 * maps the client's memfd) and a message-based one (the server sends
 * DMA_READ/DMA_WRITE, which our client answers while its request waits).
 */
import { join } from 'node:path';
import { MappedArea, SysError } from '@vfio-ts/vfio-sys';
import * as libc from '@vfio-ts/vfio-sys/libc';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openVfioUserDevice, type VfioUserDevice } from '../src/index.js';
import { type ServerProcess, startServer, tempDir } from './helpers.js';

const FD_IOVA = 0x1000_0000n;
const MSG_IOVA = 0x2000_0000n;

function program(dev: VfioUserDevice, from: bigint, to: bigint, length: number): void {
  dev.regionWrite64(0, 0x00, from);
  dev.regionWrite64(0, 0x08, to);
  dev.regionWrite(0, 0x18, length, 4);
  dev.regionWrite(0, 0x10, 1, 4); // doorbell: the model copies by DMA before the write is answered
}

describe.each([0, 2])('DMA from a model into client memory (server holdMs %d)', (holdMs) => {
  const tmp = tempDir();
  let server: ServerProcess;
  let dev: VfioUserDevice;
  let memfd = -1;
  let fdMemory: MappedArea;
  const msgMemory = new Uint8Array(0x4000);

  beforeAll(async () => {
    server = await startServer('dma', join(tmp.dir, 'dma.sock'), { holdMs });
    dev = openVfioUserDevice(server.socket);
    dev.regionWrite(7, 4, 0x6, 2);
    memfd = libc.sysMemfdCreate('client-dma');
    libc.sysFtruncate(memfd, 0x4000);
    fdMemory = MappedArea.map(memfd, 0, 0x4000, { read: true, write: true }, 'client dma');
    dev.dmaMap({ iova: FD_IOVA, memory: fdMemory.u8, fd: { fd: memfd, offset: 0 } });
    dev.dmaMap({ iova: MSG_IOVA, memory: msgMemory });
  });
  afterAll(async () => {
    dev.close();
    fdMemory.unmap();
    libc.sysClose(memfd);
    await server.stop();
    tmp[Symbol.dispose]();
  });

  it('fd-backed: the server reads and writes the shared memory directly', () => {
    fdMemory.u8.set([1, 2, 3, 4, 5, 6, 7, 8], 0x100);
    program(dev, FD_IOVA + 0x100n, FD_IOVA + 0x200n, 8);
    expect([...fdMemory.u8.subarray(0x200, 0x208)]).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
  });

  it('message-based: the server sends DMA_READ and DMA_WRITE, answered from the registered memory', () => {
    msgMemory.set([9, 8, 7, 6], 0x10);
    program(dev, MSG_IOVA + 0x10n, MSG_IOVA + 0x3000n, 4);
    expect([...msgMemory.subarray(0x3000, 0x3004)]).toEqual([9, 8, 7, 6]);
  });

  it('across forms, and larger than one page', () => {
    for (let i = 0; i < 0x2000; i++) fdMemory.u8[0x1000 + i] = (i * 7) & 0xff;
    program(dev, FD_IOVA + 0x1000n, MSG_IOVA, 0x2000);
    expect(
      Buffer.from(msgMemory.subarray(0, 0x2000)).equals(Buffer.from(fdMemory.u8.subarray(0x1000, 0x3000))),
    ).toBe(true);
    msgMemory.fill(0xee, 0x3800, 0x3900);
    program(dev, MSG_IOVA + 0x3800n, FD_IOVA + 0x3f00n, 0x100);
    expect(fdMemory.u8.subarray(0x3f00, 0x4000).every((b) => b === 0xee)).toBe(true);
  });

  it('an address outside every DMA map fails the access with EFAULT, and the device keeps working', () => {
    expect(() => program(dev, 0xdead_0000n, FD_IOVA, 4)).toThrow(
      expect.objectContaining({ errnoName: 'EFAULT' }),
    );
    expect(() => program(dev, FD_IOVA, MSG_IOVA + 0x3ffen, 4)).toThrow(SysError); // runs off the end of the map
    program(dev, FD_IOVA + 0x100n, FD_IOVA + 0x300n, 4);
    expect([...fdMemory.u8.subarray(0x300, 0x304)]).toEqual([1, 2, 3, 4]);
  });

  it('refuses an fd-backed map that runs past the end of its file (EINVAL), where the first DMA would SIGBUS the server', () => {
    const PAST_IOVA = 0x3000_0000n;
    const small = libc.sysMemfdCreate('client-dma-small');
    libc.sysFtruncate(small, 0x4000);
    const view = MappedArea.map(small, 0, 0x4000, { read: true, write: true }, 'client dma small');
    try {
      libc.sysFtruncate(small, 0x1000); // our view now runs past the end too: we never touch it there
      expect(() => dev.dmaMap({ iova: PAST_IOVA, memory: view.u8, fd: { fd: small, offset: 0 } })).toThrow(
        expect.objectContaining({ errnoName: 'EINVAL' }),
      );
      // An offset past the end of the file, the size within it.
      expect(() =>
        dev.dmaMap({
          iova: PAST_IOVA,
          memory: view.u8.subarray(0, 0x1000),
          fd: { fd: small, offset: 0x1000 },
        }),
      ).toThrow(expect.objectContaining({ errnoName: 'EINVAL' }));
      // Nothing was mapped: a DMA there fails as for any unmapped address, and the server lives on.
      expect(() => program(dev, FD_IOVA, PAST_IOVA + 0x3000n, 8)).toThrow(
        expect.objectContaining({ errnoName: 'EFAULT' }),
      );
      // The part that exists maps.
      dev.dmaMap({ iova: PAST_IOVA, memory: view.u8.subarray(0, 0x1000), fd: { fd: small, offset: 0 } });
      fdMemory.u8.set([4, 3, 2, 1], 0x400);
      program(dev, FD_IOVA + 0x400n, PAST_IOVA + 0x10n, 4);
      expect([...view.u8.subarray(0x10, 0x14)]).toEqual([4, 3, 2, 1]);
      dev.dmaUnmap(PAST_IOVA, 0x1000);
    } finally {
      view.unmap();
      libc.sysClose(small);
    }
    expect(server.child.exitCode).toBeNull();
    expect(server.child.signalCode).toBeNull();
  });

  it('after DMA_UNMAP the server no longer reaches the memory', () => {
    dev.dmaUnmap(MSG_IOVA, msgMemory.byteLength);
    expect(() => program(dev, FD_IOVA, MSG_IOVA, 4)).toThrow(
      expect.objectContaining({ errnoName: 'EFAULT' }),
    );
    expect(() => dev.dmaUnmap(MSG_IOVA, msgMemory.byteLength)).toThrow(
      expect.objectContaining({ errnoName: 'ENOENT' }),
    );
    dev.dmaMap({ iova: MSG_IOVA, memory: msgMemory });
  });
});

describe('message-based DMA from a model timer, while the client sends requests', () => {
  const tmp = tempDir();
  let server: ServerProcess;
  let dev: VfioUserDevice;
  const memory = new Uint8Array(0x1000);

  beforeAll(async () => {
    server = await startServer('dma', join(tmp.dir, 'tick.sock'));
    // A short timeout: a request set aside during the timer's DMA wait and never answered fails fast.
    dev = openVfioUserDevice(server.socket, { timeoutMs: 2000 });
    dev.regionWrite(7, 4, 0x6, 2);
    dev.dmaMap({ iova: MSG_IOVA, memory });
  });
  afterAll(async () => {
    dev.close();
    await server.stop();
    tmp[Symbol.dispose]();
  });

  it('answers every request that arrives while the server waits for a DMA reply outside a request', () => {
    dev.regionWrite64(0, 0x00, MSG_IOVA);
    dev.regionWrite(0, 0x20, 1, 4); // start the ticker: each tick a DMA_READ to us
    let ticks = 0;
    // Our requests answer the server's DMA_READs while they wait; many of them reach the server
    // while it waits for one of those replies, and must still be answered.
    for (const end = Date.now() + 1500; Date.now() < end; ) ticks = dev.regionRead(0, 0x28, 4);
    dev.regionWrite(0, 0x20, 0, 4);
    expect(ticks).toBeGreaterThan(20);
    expect(server.stderr.join('\n')).not.toMatch(/timed out|no reply/);
  });
});
