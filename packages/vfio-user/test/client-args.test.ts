/** The client backend keeps the seam's argument rules, like the kernel and in-process backends. */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openVfioUserDevice } from '../src/index.js';
import { type ServerProcess, startServer, tempDir } from './helpers.js';

describe('vfio-user client: only the seam access sizes and values, refused before anything is sent', () => {
  const tmp = tempDir('vfio-user-args-');
  let server: ServerProcess;
  beforeAll(async () => {
    server = await startServer('sim:nvme', join(tmp.dir, 'dev.sock'));
  });
  afterAll(async () => {
    await server.stop();
    tmp[Symbol.dispose]();
  });

  it('regionRead/regionWrite take 1, 2 or 4 bytes; 8 names regionRead64/regionWrite64; others are refused', () => {
    using dev = openVfioUserDevice(server.socket);
    expect(dev.regionRead(7, 0, 2)).toBe(0x1b36);
    for (const size of [0, 3, 8, 16, 1.5]) {
      expect(() => dev.regionRead(7, 0, size as 4)).toThrow(
        expect.objectContaining({ code: 'ERR_VFIO_ARGUMENT' }),
      );
      expect(() => dev.regionWrite(0, 0x100, 0, size as 4)).toThrow(
        expect.objectContaining({ code: 'ERR_VFIO_ARGUMENT' }),
      );
    }
    expect(() => dev.regionRead(7, 0, 8 as 4)).toThrow(/regionRead64/);
    // The connection is still in step: the next read is answered.
    expect(dev.regionRead(7, 0, 2)).toBe(0x1b36);
  });

  it('refuses offsets, indices and 64-bit values the wire cannot carry, and bad block arguments', () => {
    using dev = openVfioUserDevice(server.socket);
    const bad = expect.objectContaining({ code: 'ERR_VFIO_ARGUMENT' });
    expect(() => dev.regionRead(7, -1, 4)).toThrow(bad);
    expect(() => dev.regionRead(7, 0.5, 4)).toThrow(bad);
    expect(() => dev.regionRead(-1, 0, 4)).toThrow(bad);
    expect(() => dev.regionWrite64(0, 0x100, -1n)).toThrow(bad);
    expect(() => dev.regionWrite64(0, 0x100, 1n << 64n)).toThrow(bad);
    expect(() => dev.regionWrite64(0, 0x100, 5 as unknown as bigint)).toThrow(bad);
    expect(() => dev.regionReadBlock(7, 0, -4)).toThrow(bad);
    expect(() => dev.regionWriteBlock(7, 0, [1, 2] as unknown as Uint8Array)).toThrow(bad);
    expect(dev.regionReadBlock(7, 0, 4)).toEqual(Uint8Array.of(0x36, 0x1b, 0x10, 0x00));
  });
});
