/**
 * The server's answers to edge cases, against libvfio-user's as the bar
 * (shared/reference/vfio-user/README.md), with a raw peer in this process.
 */
import { mkdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { openSimDevice } from '@vfio-ts/plugin-host';
import { resourceCounts, settle } from '@vfio-ts/test-support';
import { EventFd } from '@vfio-ts/vfio-sys';
import * as libc from '@vfio-ts/vfio-sys/libc';
import { bindUnix, listenSocket, unixSocket } from '@vfio-ts/vfio-sys/libc';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { command, encodeMessage } from '../src/codec.js';
import { VfioUserServer } from '../src/index.js';
import { RawPeer, tempDir, versionRequest } from './helpers.js';

const EINVAL = 22;
const ENOENT = 2;
const EEXIST = 17;
const ENOTSUP = 95;

const readReq = (id: number, region: number, offset: number, count: number) =>
  command(id, 9, { kind: 'region-rw', offset: BigInt(offset), region, count, data: new Uint8Array(0) });
const writeReq = (id: number, region: number, offset: number, data: Uint8Array, noReply = false) =>
  command(
    id,
    10,
    { kind: 'region-rw', offset: BigInt(offset), region, count: data.byteLength, data },
    noReply,
  );

describe('server edge cases (in-process server, raw peer)', () => {
  const tmp = tempDir();
  const socket = join(tmp.dir, 'edge.sock');
  const device = openSimDevice('sim:e1000e');
  let server: VfioUserServer;
  let peer: RawPeer;
  const log: string[] = [];

  beforeAll(async () => {
    server = VfioUserServer.listen(device, socket, { log: (l) => log.push(l) });
    peer = new RawPeer(socket);
    expect((await peer.ask(versionRequest(1))).errno).toBe(0);
  });
  afterAll(() => {
    peer.close();
    server.close();
    device.close();
    tmp[Symbol.dispose]();
  });

  it('answers VERSION with the lower minor and its own NUL-terminated capabilities', async () => {
    using p = new RawPeer(socket);
    // One client at a time: this one waits in the backlog until the first leaves.
    peer.close();
    const r = await p.ask(versionRequest(7));
    expect(r.body).toMatchObject({ kind: 'version', major: 0, minor: 0 });
    const caps = JSON.parse((r.body as { capabilities: string }).capabilities);
    expect(caps.capabilities).toMatchObject({ max_msg_fds: 16, max_data_xfer_size: 1048576 });
    expect((await p.ask(versionRequest(8))).errno).toBe(EINVAL); // only once
    p.close();
    peer = new RawPeer(socket);
    expect((await peer.ask(versionRequest(1))).errno).toBe(0);
  });

  it('refuses requests before VERSION and an unknown major', async () => {
    peer.close();
    using p = new RawPeer(socket);
    expect((await p.ask(readReq(2, 7, 0, 4))).errno).toBe(EINVAL);
    expect(
      (await p.ask(command(3, 1, { kind: 'version', major: 1, minor: 0, capabilities: null }))).errno,
    ).toBe(ENOTSUP);
    p.close();
    peer = new RawPeer(socket);
    expect((await peer.ask(versionRequest(1))).errno).toBe(0);
  });

  it('DEVICE_GET_INFO: argsz 8 and a missing payload are EINVAL', async () => {
    expect(
      (
        await peer.ask(
          command(10, 4, { kind: 'device-info', argsz: 16, flags: 0, numRegions: 0, numIrqs: 0 }),
        )
      ).body,
    ).toEqual({
      kind: 'device-info',
      argsz: 16,
      flags: 3,
      numRegions: 9,
      numIrqs: 5,
    });
    expect(
      (await peer.ask(command(11, 4, { kind: 'device-info', argsz: 8, flags: 0, numRegions: 0, numIrqs: 0 })))
        .errno,
    ).toBe(EINVAL);
    expect((await peer.ask(command(12, 4, { kind: 'empty' }))).errno).toBe(EINVAL);
  });

  it('GET_REGION_INFO: index out of range is EINVAL; a mappable BAR grows and retries, then comes with one fd', async () => {
    const req = (id: number, index: number, argsz: number) =>
      command(id, 5, {
        kind: 'region-info',
        argsz,
        flags: 0,
        index,
        capOffset: 0,
        size: 0n,
        offset: 0n,
        tail: new Uint8Array(argsz - 32),
      });
    expect((await peer.ask(req(20, 9, 32))).errno).toBe(EINVAL);
    // e1000e BAR 3 holds the MSI-X table: MSIX_MAPPABLE is a capability, so 32 bytes are not enough.
    const first = await peer.ask(req(21, 3, 32));
    expect(first.fds).toEqual([]);
    expect(first.body).toMatchObject({
      kind: 'region-info',
      argsz: 40,
      flags: 0x7,
      capOffset: 0,
      size: 0x4000n,
    });
    const second = await peer.ask(req(22, 3, 40));
    expect(second.body).toMatchObject({ argsz: 40, flags: 0xf, capOffset: 32 });
    expect(second.fds).toHaveLength(1);
    const map = libc.sysMmap(0n, 4096, libc.PROT_READ, libc.MAP_SHARED, second.fds[0]!, 0);
    libc.sysMunmap(map, 4096);
    libc.sysClose(second.fds[0]!);
    // Config space: no fd, no caps.
    const config = await peer.ask(req(23, 7, 32));
    expect(config.body).toMatchObject({ flags: 0x3, size: 4096n });
    expect(config.fds).toEqual([]);
  });

  it('GET_REGION_IO_FDS answers count 0; non-zero flags or count are EINVAL', async () => {
    const req = (id: number, flags: number, count: number) =>
      command(id, 6, { kind: 'region-io-fds', argsz: 16, flags, index: 2, count, subRegions: [] });
    expect((await peer.ask(req(30, 0, 0))).body).toMatchObject({ kind: 'region-io-fds', count: 0 });
    expect((await peer.ask(req(31, 1, 0))).errno).toBe(EINVAL);
    expect((await peer.ask(req(32, 0, 1))).errno).toBe(EINVAL);
  });

  it('REGION_READ beyond the region, or of a size-0 BAR, is EINVAL; a bad write length is EINVAL', async () => {
    expect((await peer.ask(readReq(40, 7, 0x1000, 4))).errno).toBe(EINVAL);
    expect((await peer.ask(readReq(41, 4, 0, 4))).errno).toBe(EINVAL);
    const bad = encodeMessage(writeReq(42, 7, 0, Uint8Array.of(1, 2, 3, 4)));
    new DataView(bad.buffer).setUint32(28, 8, true); // count 8 with 4 data bytes
    peer.send(bad);
    const r = await peer.next();
    expect(typeof r === 'object' && r.header.flags === 0x21 && r.header.error === EINVAL).toBe(true);
  });

  it('keeps posted writes (NO_REPLY) in order before the next read, and answers pipelined reads in order', async () => {
    peer.send(writeReq(50, 7, 0x3c, Uint8Array.of(0x5a), true)); // interrupt line: plain read-write config byte
    peer.send(readReq(51, 7, 0x3c, 1));
    peer.send(readReq(52, 7, 0x3c, 1));
    peer.send(readReq(53, 7, 0, 2));
    const replies = [await peer.next(), await peer.next(), await peer.next()];
    expect(replies.map((r) => (typeof r === 'object' ? r.header.id : r))).toEqual([51, 52, 53]);
    expect(replies.map((r) => (typeof r === 'object' ? r.payload[16] : -1))).toEqual([0x5a, 0x5a, 0x86]);
  });

  it('refuses REGION_WRITE_MULTI, DEVICE_FEATURE, migration, DIRTY_PAGES and unknown commands with ENOTSUP', async () => {
    const raw = (id: number, cmd: number, bytes: number[]) =>
      command(id, cmd, { kind: 'raw', bytes: Uint8Array.from(bytes) });
    expect((await peer.ask(command(60, 15, { kind: 'write-multi', writes: [] }))).errno).toBe(ENOTSUP);
    expect((await peer.ask(raw(61, 14, [8, 0, 0, 0, 0, 0, 0, 0]))).errno).toBe(ENOTSUP);
    expect((await peer.ask(raw(62, 99, [0, 0, 0, 0, 0, 0, 0, 0]))).errno).toBe(ENOTSUP);
    expect(
      (
        await peer.ask(
          command(63, 16, { kind: 'device-feature', argsz: 8, flags: 0x50001, data: new Uint8Array(0) }),
        )
      ).errno,
    ).toBe(ENOTSUP);
    expect(
      (await peer.ask(command(64, 17, { kind: 'mig-data', argsz: 72, size: 64, data: new Uint8Array(0) })))
        .errno,
    ).toBe(ENOTSUP);
  });

  it('DMA maps: fd-less is fine, an overlap is EEXIST, an inexact unmap ENOENT, exact and ALL echo the request', async () => {
    const map = (id: number, addr: bigint, size: bigint) =>
      command(id, 2, { kind: 'dma-map', argsz: 32, flags: 3, offset: 0n, addr, size });
    const unmap = (id: number, addr: bigint, size: bigint, flags = 0) =>
      command(id, 3, { kind: 'dma-unmap', argsz: 24, flags, addr, size });
    expect((await peer.ask(map(70, 0x100000n, 0x2000n))).errno).toBe(0);
    expect((await peer.ask(map(71, 0x101000n, 0x1000n))).errno).toBe(EEXIST);
    expect((await peer.ask(unmap(72, 0x100000n, 0x1000n))).errno).toBe(ENOENT);
    expect((await peer.ask(unmap(73, 0x100000n, 0x2000n))).body).toEqual({
      kind: 'dma-unmap',
      argsz: 24,
      flags: 0,
      addr: 0x100000n,
      size: 0x2000n,
    });
    expect((await peer.ask(map(74, 0x200000n, 0x1000n))).errno).toBe(0);
    expect((await peer.ask(unmap(75, 0n, 0n, 2))).body).toMatchObject({ flags: 2 });
    expect((await peer.ask(unmap(76, 0x200000n, 0x1000n))).errno).toBe(ENOENT); // ALL removed it
    // An fd-backed map with two fds is refused, and both fds are closed by the server.
    const before = resourceCounts().fds;
    const a = libc.sysMemfdCreate('a');
    const b = libc.sysMemfdCreate('b');
    libc.sysFtruncate(a, 4096);
    expect((await peer.ask(map(77, 0x300000n, 0x1000n), [a, b])).errno).toBe(EINVAL);
    libc.sysClose(a);
    libc.sysClose(b);
    expect(resourceCounts().fds).toBe(before);
  });

  it('SET_IRQS: eventfd assign, bool and none triggers signal it, count 0 disables; a bad index is EINVAL', async () => {
    const e = EventFd.create();
    const set = (id: number, flags: number, index: number, count: number, data = new Uint8Array(0)) =>
      command(id, 8, { kind: 'set-irqs', argsz: 20 + data.byteLength, flags, index, start: 0, count, data });
    try {
      expect((await peer.ask(set(80, 0x24, 0, 1), [e.fd])).errno).toBe(0); // EVENTFD|TRIGGER on INTx
      expect((await peer.ask(set(81, 0x21, 0, 1))).errno).toBe(0); // NONE|TRIGGER: loopback
      expect(e.consume()).toBe(1n);
      expect((await peer.ask(set(82, 0x11, 0, 1))).errno).toBe(0); // NONE|UNMASK (INTx EOI)
      expect((await peer.ask(set(83, 0x22, 0, 1, Uint8Array.of(1)))).errno).toBe(0); // BOOL|TRIGGER
      expect(e.consume()).toBe(1n);
      expect((await peer.ask(set(84, 0x21, 0, 0))).errno).toBe(0); // disable
      expect((await peer.ask(set(85, 0x21, 7, 1))).errno).toBe(EINVAL);
      expect((await peer.ask(set(86, 0x23, 0, 1))).errno).toBe(EINVAL); // two data types
    } finally {
      e.close();
    }
  });

  it('DEVICE_RESET is answered; a reset with a payload is EINVAL', async () => {
    expect((await peer.ask(command(90, 13, { kind: 'empty' }))).errno).toBe(0);
    expect((await peer.ask(command(91, 13, { kind: 'raw', bytes: Uint8Array.of(1) }))).errno).toBe(EINVAL);
  });

  it('closes the connection on a lying size or an unknown message type, then serves the next client', async () => {
    for (const mutate of [
      (v: DataView) => v.setUint32(4, 8, true),
      (v: DataView) => v.setUint32(4, 64 << 20, true),
      (v: DataView) => v.setUint32(8, 7, true),
    ]) {
      peer.close();
      using p = new RawPeer(socket);
      const bytes = encodeMessage(readReq(100, 7, 0, 4));
      mutate(new DataView(bytes.buffer));
      p.send(bytes);
      expect(await p.next()).toBe('closed');
      p.close();
      peer = new RawPeer(socket);
      expect((await peer.ask(versionRequest(1))).errno).toBe(0);
      expect((await peer.ask(readReq(2, 7, 0, 2))).errno).toBe(0);
    }
    expect(log.some((l) => l.includes('claims size'))).toBe(true);
  });

  it('releases what a client gave when it leaves: DMA maps unmapped, eventfds out of the device', async () => {
    peer.close();
    await settle();
    const before = resourceCounts((l: string) => l.includes('memfd:'));
    {
      using p = new RawPeer(socket);
      expect((await p.ask(versionRequest(1))).errno).toBe(0);
      const mem = libc.sysMemfdCreate('client-ram');
      libc.sysFtruncate(mem, 0x10000);
      const r = await p.ask(
        command(2, 2, {
          kind: 'dma-map',
          argsz: 32,
          flags: 3,
          offset: 0n,
          addr: 0x40000000n,
          size: 0x10000n,
        }),
        [mem],
      );
      libc.sysClose(mem);
      expect(r.errno).toBe(0);
      const e = EventFd.create();
      expect(
        (
          await p.ask(
            command(3, 8, {
              kind: 'set-irqs',
              argsz: 20,
              flags: 0x24,
              index: 2,
              start: 0,
              count: 1,
              data: new Uint8Array(0),
            }),
            [e.fd],
          )
        ).errno,
      ).toBe(0);
      e.close();
      expect(resourceCounts((l: string) => l.includes('memfd:client-ram')).maps).toBe(1);
    }
    await server.idle();
    await settle();
    expect(resourceCounts((l: string) => l.includes('memfd:'))).toEqual(before);
    expect(log.at(-1)).toMatch(/released 1 DMA maps, 1 IRQ indexes/);
    peer = new RawPeer(socket);
    expect((await peer.ask(versionRequest(1))).errno).toBe(0);
  });
});

describe('the socket path', () => {
  it('replaces a stale socket, refuses a live one and any other file, and removes its own on close', () => {
    using tmp = tempDir();
    using device = openSimDevice('sim:virtio-net');
    const stale = join(tmp.dir, 'stale.sock');
    const fd = unixSocket();
    bindUnix(fd, stale);
    libc.sysClose(fd); // bound, never listening: stale
    const server = VfioUserServer.listen(device, stale);
    expect(statSync(stale).mode & 0o777).toBe(0o600);
    expect(() => VfioUserServer.listen(device, stale)).toThrow(
      expect.objectContaining({
        code: 'ERR_VFIO_USER_SOCKET_PATH',
        message: expect.stringContaining('in use'),
      }),
    );
    server.close();
    expect(() => statSync(stale)).toThrow();

    const file = join(tmp.dir, 'file');
    writeFileSync(file, 'precious');
    expect(() => VfioUserServer.listen(device, file)).toThrow(/not a socket; refusing/);
    mkdirSync(join(tmp.dir, 'dir'));
    expect(() => VfioUserServer.listen(device, join(tmp.dir, 'dir'))).toThrow(/not a socket/);
    const live = unixSocket();
    const livePath = join(tmp.dir, 'live.sock');
    bindUnix(live, livePath);
    listenSocket(live);
    expect(() => VfioUserServer.listen(device, livePath)).toThrow(/in use/);
    libc.sysClose(live);
  });
});

describe('the limits the server advertises are enforced', () => {
  it('max_dma_maps (ENOSPC) and max_data_xfer_size (E2BIG)', async () => {
    using tmp = tempDir();
    using device = openSimDevice('sim:nvme');
    using server = VfioUserServer.listen(device, join(tmp.dir, 'limits.sock'), {
      maxDmaMaps: 2,
      maxDataXferSize: 512,
    });
    using p = new RawPeer(server.socketPath);
    const v = await p.ask(versionRequest(1));
    expect(JSON.parse((v.body as { capabilities: string }).capabilities).capabilities).toMatchObject({
      max_dma_maps: 2,
      max_data_xfer_size: 512,
    });
    const map = (id: number, addr: bigint) =>
      command(id, 2, { kind: 'dma-map', argsz: 32, flags: 3, offset: 0n, addr, size: 0x1000n });
    expect((await p.ask(map(2, 0x1000n))).errno).toBe(0);
    expect((await p.ask(map(3, 0x2000n))).errno).toBe(0);
    expect((await p.ask(map(4, 0x3000n))).errno).toBe(28); // ENOSPC
    expect((await p.ask(readReq(5, 7, 0, 512))).errno).toBe(0);
    expect((await p.ask(readReq(6, 7, 0, 513))).errno).toBe(7); // E2BIG
    // A message larger than the limit allows is not answered: the connection is closed.
    p.send(encodeMessage(writeReq(7, 7, 0, new Uint8Array(1024))));
    expect(await p.next()).toBe('closed');
  });
});
