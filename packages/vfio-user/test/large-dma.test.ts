/**
 * Model DMA into client maps larger than one window of a MappedArea (16 MiB):
 * fd-backed, the server reaches the whole map across its windows; message-
 * based, the client answers DMA_READ/DMA_WRITE from a MappedArea it
 * registered whole (its `u8` would be the first window only).
 */
import { join } from 'node:path';
import { MappedArea } from '@vfio-ts/vfio-sys';
import * as libc from '@vfio-ts/vfio-sys/libc';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openVfioUserDevice, type VfioUserDevice } from '../src/index.js';
import { type ServerProcess, startServer, tempDir } from './helpers.js';

const IOVA = 0x1_0000_0000n;
const SIZE = 64 * 2 ** 20;

describe('DMA into a 64 MiB fd-backed map', () => {
  const tmp = tempDir();
  let server: ServerProcess;
  let dev: VfioUserDevice;
  let memfd = -1;

  beforeAll(async () => {
    server = await startServer('dma', join(tmp.dir, 'dma.sock'));
    dev = openVfioUserDevice(server.socket);
    dev.regionWrite(7, 4, 0x6, 2);
    memfd = libc.sysMemfdCreate('client-dma-large');
    libc.sysFtruncate(memfd, SIZE);
    // The client's view is only used for message-based DMA; the server maps the memfd.
    dev.dmaMap({ iova: IOVA, memory: new Uint8Array(SIZE), fd: { fd: memfd, offset: 0 } });
  });
  afterAll(async () => {
    dev.close();
    libc.sysClose(memfd);
    await server.stop();
    tmp[Symbol.dispose]();
  });

  it('copies from the first window to past the third, and across a window boundary', () => {
    libc.sysPwrite(memfd, Buffer.from([1, 2, 3, 4, 5, 6, 7, 8]), 0x100);
    const program = (from: bigint, to: bigint, length: number) => {
      dev.regionWrite64(0, 0x00, from);
      dev.regionWrite64(0, 0x08, to);
      dev.regionWrite(0, 0x18, length, 4);
      dev.regionWrite(0, 0x10, 1, 4);
    };
    program(IOVA + 0x100n, IOVA + BigInt(48 * 2 ** 20 + 0x40), 8);
    const out = Buffer.alloc(8);
    libc.sysPread(memfd, out, 48 * 2 ** 20 + 0x40);
    expect([...out]).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    // 8 bytes straddling the 32 MiB window boundary, read and written.
    program(IOVA + 0x100n, IOVA + BigInt(32 * 2 ** 20 - 4), 8);
    program(IOVA + BigInt(32 * 2 ** 20 - 4), IOVA + BigInt(SIZE - 8), 8);
    libc.sysPread(memfd, out, SIZE - 8);
    expect([...out]).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
  });
});

describe('message-based DMA into a 64 MiB MappedArea the client registered', () => {
  const tmp = tempDir();
  let server: ServerProcess;
  let dev: VfioUserDevice;
  let memfd = -1;
  let area: MappedArea;

  beforeAll(async () => {
    server = await startServer('dma', join(tmp.dir, 'dma-msg.sock'));
    dev = openVfioUserDevice(server.socket);
    dev.regionWrite(7, 4, 0x6, 2);
    memfd = libc.sysMemfdCreate('client-dma-area');
    libc.sysFtruncate(memfd, SIZE);
    area = MappedArea.map(memfd, 0, SIZE, { read: true, write: true }, 'client dma');
    dev.dmaMap({ iova: IOVA, memory: area }); // no fd: every access is a message we answer
  });
  afterAll(async () => {
    dev.close();
    area.unmap();
    libc.sysClose(memfd);
    await server.stop();
    tmp[Symbol.dispose]();
  });

  it('maps all 64 MiB, and the server reads and writes past the first window through our answers', () => {
    area.writeBytes(40 * 2 ** 20, Uint8Array.of(9, 8, 7, 6, 5, 4, 3, 2));
    dev.regionWrite64(0, 0x00, IOVA + BigInt(40 * 2 ** 20));
    dev.regionWrite64(0, 0x08, IOVA + BigInt(SIZE - 4 - 2 ** 20 * 16)); // across the 48 MiB boundary
    dev.regionWrite(0, 0x18, 8, 4);
    dev.regionWrite(0, 0x10, 1, 4);
    const out = Buffer.alloc(8);
    libc.sysPread(memfd, out, SIZE - 4 - 2 ** 20 * 16);
    expect([...out]).toEqual([9, 8, 7, 6, 5, 4, 3, 2]);
    dev.dmaUnmap(IOVA, SIZE); // by the area's whole size
    expect(() => dev.dmaUnmap(IOVA, SIZE)).toThrow(expect.objectContaining({ errnoName: 'ENOENT' }));
  });
});
