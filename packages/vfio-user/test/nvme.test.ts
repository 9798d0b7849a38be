/**
 * sim:nvme served over vfio-user to our client, as QEMU's guest meets it:
 * client memory shared by a memfd DMA_MAP, BAR0 written through the mapping
 * the server's fd gives (no message reaches the model: its poll must see CC
 * and the doorbells), completions signalled on the client's MSI-X eventfds.
 * A command whose data lies outside the DMA maps gets an error completion and
 * the server goes on.
 */
import { join } from 'node:path';
import { EventFd, MappedArea } from '@vfio-ts/vfio-sys';
import * as libc from '@vfio-ts/vfio-sys/libc';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openVfioUserDevice, type VfioUserDevice } from '../src/index.js';
import { type ServerProcess, startServer, tempDir } from './helpers.js';

const IOVA = 0x4000_0000n;
const BYTES = 0x10_0000;
const MSIX_CAP = 0x40;

/** Waits (the server polls on its own timer) until `check` holds, up to `ms`. */
async function until(check: () => boolean, ms = 2000): Promise<void> {
  for (const end = Date.now() + ms; !check(); ) {
    if (Date.now() > end) throw new Error('timed out waiting for the controller');
    await new Promise((r) => setTimeout(r, 1));
  }
}

describe('sim:nvme over vfio-user: a host driver through mapped BAR0 and fd-backed DMA', () => {
  const tmp = tempDir();
  let server: ServerProcess;
  let dev: VfioUserDevice;
  let memfd = -1;
  let ram: MappedArea;
  let bar: MappedArea;
  const vectors = [EventFd.create(), EventFd.create()];
  let next = 0x1000;
  const alloc = (n: number) => {
    const at = next;
    next += Math.ceil(n / 4096) * 4096;
    return at;
  };
  // The admin queue pair and I/O pair 1, each with the host's index and phase.
  const q = {
    sq: [
      { at: 0, size: 8, tail: 0 },
      { at: 0, size: 8, tail: 0 },
    ],
    cq: [
      { at: 0, size: 8, head: 0, phase: 1 },
      { at: 0, size: 8, head: 0, phase: 1 },
    ],
  };
  const view = () => new DataView(ram.u8.buffer, ram.u8.byteOffset, BYTES);

  async function run(
    qid: number,
    fill: (e: DataView, at: number) => void,
  ): Promise<{ status: number; cid: number }> {
    const sq = q.sq[qid]!;
    const cq = q.cq[qid]!;
    const at = sq.at + sq.tail * 64;
    ram.u8.fill(0, at, at + 64);
    fill(view(), at);
    const cid = 0x100 + sq.tail;
    view().setUint16(at + 2, cid, true);
    sq.tail = (sq.tail + 1) % sq.size;
    bar.write(0x1000 + 8 * qid, sq.tail, 4);
    const entry = cq.at + cq.head * 16;
    await until(() => (view().getUint16(entry + 14, true) & 1) === cq.phase);
    const status = view().getUint16(entry + 14, true) >> 1;
    const done = { status, cid: view().getUint16(entry + 12, true) };
    cq.head = (cq.head + 1) % cq.size;
    if (cq.head === 0) cq.phase ^= 1;
    bar.write(0x1000 + 8 * qid + 4, cq.head, 4);
    return done;
  }

  const addr = (offset: number) => IOVA + BigInt(offset);
  const rw =
    (opcode: number, slba: number, blocks: number, prp1: bigint, prp2 = 0n) =>
    (e: DataView, at: number) => {
      e.setUint8(at, opcode);
      e.setUint32(at + 4, 1, true);
      e.setBigUint64(at + 24, prp1, true);
      e.setBigUint64(at + 32, prp2, true);
      e.setUint32(at + 40, slba, true);
      e.setUint32(at + 48, blocks - 1, true);
    };

  let idle: { fds: number; memfdMaps: number };
  beforeAll(async () => {
    server = await startServer('sim:nvme', join(tmp.dir, 'nvme.sock'));
    idle = await server.counts();
    dev = openVfioUserDevice(server.socket);
    memfd = libc.sysMemfdCreate('nvme-host');
    libc.sysFtruncate(memfd, BYTES);
    ram = MappedArea.map(memfd, 0, BYTES, { read: true, write: true }, 'nvme host memory');
    dev.dmaMap({ iova: IOVA, memory: ram.u8, fd: { fd: memfd, offset: 0 } });
    dev.regionWrite(7, 4, 0x6, 2); // memory decode, bus mastering
    dev.setIrqs({
      index: 2,
      action: 'trigger',
      start: 0,
      count: 2,
      data: { type: 'eventfd', eventfds: vectors },
    });
    dev.regionWrite(7, MSIX_CAP + 2, dev.regionRead(7, MSIX_CAP + 2, 2) | 0x8000, 2);
    bar = dev.regionMmap(0, 0, 0x4000, { read: true, write: true });
  });
  afterAll(async () => {
    bar?.unmap(); // both idempotent: the last test has released them already when it ran
    dev?.close();
    ram?.unmap();
    if (memfd >= 0) libc.sysClose(memfd);
    for (const e of vectors) e.close();
    await server?.stop();
    tmp[Symbol.dispose]();
  });

  it('enables through the mapping: CSTS.RDY appears without any message to the model', async () => {
    q.sq[0]!.at = alloc(4096);
    q.cq[0]!.at = alloc(4096);
    bar.write(0x24, 0x00070007, 4);
    bar.write64(0x28, addr(q.sq[0]!.at));
    bar.write64(0x30, addr(q.cq[0]!.at));
    bar.write(0x14, 0x00460001, 4);
    await until(() => (bar.read(0x1c, 4) as number) === 1);
  });

  it('Identify Controller completes by DMA into the memfd, signalled on MSI-X vector 0', async () => {
    const data = alloc(4096);
    const done = await run(0, (e, at) => {
      e.setUint8(at, 0x06);
      e.setBigUint64(at + 24, addr(data), true);
      e.setUint32(at + 40, 1, true);
    });
    expect(done.status).toBe(0);
    expect(view().getUint16(data, true)).toBe(0x1b36);
    expect(
      Buffer.from(ram.u8.subarray(data + 24, data + 64))
        .toString('latin1')
        .trimEnd(),
    ).toBe('vfio-ts sim:nvme');
    expect(await vectors[0]!.wait(2000)).toBeGreaterThan(0n);
  });

  it('an I/O queue pair on vector 1: 8 KiB written and read back equal', async () => {
    q.cq[1]!.at = alloc(4096);
    q.sq[1]!.at = alloc(4096);
    const cq = await run(0, (e, at) => {
      e.setUint8(at, 0x05);
      e.setBigUint64(at + 24, addr(q.cq[1]!.at), true);
      e.setUint32(at + 40, 1 | (7 << 16), true);
      e.setUint32(at + 44, 3 | (1 << 16), true);
    });
    const sq = await run(0, (e, at) => {
      e.setUint8(at, 0x01);
      e.setBigUint64(at + 24, addr(q.sq[1]!.at), true);
      e.setUint32(at + 40, 1 | (7 << 16), true);
      e.setUint32(at + 44, 1 | (1 << 16), true);
    });
    expect([cq.status, sq.status]).toEqual([0, 0]);
    vectors[1]!.consume();
    const src = alloc(8192);
    for (let i = 0; i < 8192; i++) ram.u8[src + i] = (i * 13) & 0xff;
    expect((await run(1, rw(0x01, 32, 16, addr(src), addr(src + 4096)))).status).toBe(0);
    const dst = alloc(8192);
    expect((await run(1, rw(0x02, 32, 16, addr(dst), addr(dst + 4096)))).status).toBe(0);
    expect(Buffer.compare(ram.u8.subarray(src, src + 8192), ram.u8.subarray(dst, dst + 8192))).toBe(0);
    expect(await vectors[1]!.wait(2000)).toBeGreaterThan(0n);
  });

  it('data outside the DMA maps: Data Transfer Error, and the server and controller go on', async () => {
    expect((await run(1, rw(0x02, 0, 8, 0xdead_0000n))).status).toBe(0x4004);
    expect(bar.read(0x1c, 4)).toBe(1);
    const dst = alloc(4096);
    expect((await run(1, rw(0x02, 32, 8, addr(dst)))).status).toBe(0);
    expect(ram.u8[dst + 1]).toBe(13);
    expect((await server.counts()).connected).toBe(true);
  });

  it('when the client leaves, the server holds no more fds or mappings than before it came', async () => {
    bar.unmap();
    dev.close();
    for (let i = 0; i < 50 && (await server.counts()).connected; i++)
      await new Promise((r) => setTimeout(r, 20));
    const after = await server.counts();
    expect(after.connected).toBe(false);
    // memfd mappings: the client's DMA memory the server mapped is gone (all mappings would count V8's heap too).
    expect({ fds: after.fds, memfdMaps: after.memfdMaps }).toEqual({
      fds: idle.fds,
      memfdMaps: idle.memfdMaps,
    });
  });
});
