/**
 * A kernel device served over vfio-user, on the host: a kernel-like fake
 * (fake-kernel-device.ts) behind KernelServedDevice and the real server in
 * this process, our client in a child process (fixtures/client.mjs). Regions
 * reach the client as the device fd at the region's offset with the sparse
 * areas the "kernel" gave; eventfds go to the device as they are; fd-backed
 * DMA maps go into the IOMMU at IOVA = the client's address (out of it before
 * the server unmaps them); fd-less and out-of-range maps are refused; a
 * client killed mid-run leaves the device quiescent and nothing behind.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { resourceCounts, settle } from '@vfio-ts/test-support';
import { subscribeTrace } from '@vfio-ts/trace';
import * as libc from '@vfio-ts/vfio-sys/libc';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { command } from '../src/codec.js';
import { KernelServedDevice, VfioUserServer } from '../src/index.js';
import { FakeKernelDevice, fakeOpened, REGION_SHIFT } from './fake-kernel-device.js';
import { RawPeer, tempDir, versionRequest } from './helpers.js';

const CLIENT = new URL('./fixtures/client.mjs', import.meta.url).pathname;
const ENOTSUP = 95;
const ERANGE = 34;
const EFAULT = 14;
const EEXIST = 17;
const MSIX = 2;
const INTX = 0;

interface Client {
  readonly child: ChildProcess;
  ask(request: object): Promise<Record<string, unknown>>;
  exited: Promise<void>;
}

async function startClient(socket: string): Promise<Client> {
  const child = spawn(process.execPath, [CLIENT, socket], { stdio: ['pipe', 'pipe', 'pipe'] });
  const stderr: string[] = [];
  child.stderr!.setEncoding('utf8').on('data', (d: string) => stderr.push(d));
  const lines = createInterface({ input: child.stdout! });
  const waiting: ((line: string) => void)[] = [];
  lines.on('line', (line) => waiting.shift()?.(line));
  const exited = new Promise<void>((resolve) => child.on('close', () => resolve()));
  const next = () =>
    new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`client silent; stderr: ${stderr.join('')}`)), 10_000);
      waiting.push((l) => {
        clearTimeout(timer);
        resolve(l);
      });
    });
  const ready = await next();
  if (ready !== 'ready') throw new Error(`client did not start: ${ready} ${stderr.join('')}`);
  return {
    child,
    exited,
    async ask(request) {
      child.stdin!.write(`${JSON.stringify(request)}\n`);
      return JSON.parse(await next());
    },
  };
}

const memfdMaps = () => resourceCounts((l) => l.includes('memfd:')).maps;

describe('a kernel-like device served through KernelServedDevice', () => {
  const tmp = tempDir();
  const socket = join(tmp.dir, 'kernel.sock');
  const device = new FakeKernelDevice();
  const fake = fakeOpened(device);
  const served = new KernelServedDevice(fake.opened);
  const log: string[] = [];
  let server: VfioUserServer;
  let client: Client;
  let before: { fds: number; maps: number };

  beforeAll(async () => {
    server = VfioUserServer.listen(served, socket, { log: (l) => log.push(l) });
    await settle();
    before = { fds: resourceCounts().fds, maps: memfdMaps() };
    client = await startClient(socket);
  });
  afterAll(() => {
    client?.child.kill('SIGKILL');
    server.close();
    served.close();
    tmp[Symbol.dispose]();
  });

  it('reports device info without the CAPS flag: the 16-byte reply carries no capability chain', async () => {
    expect(await client.ask({ op: 'info' })).toEqual({ flags: 0x3, numRegions: 9, numIrqs: 5 });
  });

  it('offers a mappable region as the device fd at its offset, with the sparse areas the kernel gave', async () => {
    const bar0 = await client.ask({ op: 'region', index: 0 });
    expect(bar0).toMatchObject({ flags: 0xf, size: 0x4000, fdOffset: 0 << REGION_SHIFT });
    expect(bar0.capabilities).toEqual([
      {
        kind: 'sparse-mmap',
        id: 1,
        version: 1,
        areas: [
          { offset: 0, size: 0x1000 },
          { offset: 0x3000, size: 0x1000 },
        ],
      },
    ]);
    const bar2 = await client.ask({ op: 'region', index: 2 });
    expect(bar2).toMatchObject({ flags: 0xf, fdOffset: 2 << REGION_SHIFT });
    expect(bar2.capabilities).toEqual([{ kind: 'msix-mappable', id: 3, version: 1 }]);
    const config = await client.ask({ op: 'region', index: 7 });
    expect(config).toMatchObject({ flags: 0x3, size: 0x100, fdOffset: null, capabilities: [] });
  });

  it('maps the same bytes through the fd: client mmap and device pread/pwrite agree', async () => {
    device.regionWrite(0, 0x3008, 0x12345678, 4);
    expect(await client.ask({ op: 'mmapRead', index: 0, mapOffset: 0x3000, mapSize: 0x1000, at: 8 })).toEqual(
      {
        value: 0x12345678,
      },
    );
    await client.ask({ op: 'mmapWrite', index: 2, mapOffset: 0, mapSize: 0x1000, at: 0x10, value: 0xcafe });
    expect(device.regionRead(2, 0x10, 4)).toBe(0xcafe);
    // The MSI-X table between the sparse areas is not mappable; messages reach it.
    expect(
      await client.ask({ op: 'mmapRead', index: 0, mapOffset: 0x1000, mapSize: 0x1000, at: 0 }),
    ).toMatchObject({ error: 22, message: expect.stringMatching(/outside the sparse areas/) });
    device.regionWrite(0, 0x1004, 0xabcd, 4);
    expect(await client.ask({ op: 'read', index: 0, offset: 0x1004, size: 4 })).toEqual({ value: 0xabcd });
  });

  it('hands the client eventfds to the device, which interrupts them directly; INTx unmask passes through', async () => {
    expect(await client.ask({ op: 'irqs', index: MSIX, count: 2 })).toEqual({});
    expect(device.held.get(MSIX)?.length).toBe(2);
    device.raise(MSIX, 1);
    expect(await client.ask({ op: 'irqWait', index: MSIX, vector: 1 })).toEqual({ count: 1 });
    await client.ask({ op: 'irqs', index: INTX, count: 1 });
    await client.ask({ op: 'irqNone', index: INTX, action: 'unmask' });
    expect(device.irqCalls.at(-1)).toEqual({
      index: INTX,
      action: 'unmask',
      start: 0,
      count: 1,
      data: 'none',
    });
    device.raise(INTX, 0);
    expect(await client.ask({ op: 'irqWait', index: INTX, vector: 0 })).toEqual({ count: 1 });
  });

  it('maps an fd-backed DMA map into the IOMMU at the client address, from the server mapping of that memory', async () => {
    fake.iommu.length = 0;
    expect(await client.ask({ op: 'dmaMap', iova: 0x10_0000, size: 0x4000, write: false })).toEqual({});
    const [map] = fake.iommu;
    expect(map).toMatchObject({ op: 'map', iova: 0x10_0000n, size: 0x4000n, read: true, write: false });
    const line = readFileSync('/proc/self/maps', 'utf8')
      .split('\n')
      .find((l) => BigInt(`0x${l.split('-')[0]}`) === map!.address);
    expect(line).toMatch(/r--s .*memfd:client-dma/);
    expect(served.iommuMapCount).toBe(1);
    expect(fake.opened.dma.iovaRanges()).toEqual([{ start: 0x1000, last: 0xffff_ffff }]);
  });

  it('unmaps from the IOMMU first, then drops the server mapping', async () => {
    const maps = memfdMaps();
    fake.iommu.length = 0;
    expect(await client.ask({ op: 'dmaUnmap', iova: 0x10_0000, size: 0x4000 })).toEqual({});
    expect(fake.iommu).toEqual([{ op: 'unmap', iova: 0x10_0000n, size: 0x4000n, stillMapped: true }]);
    await settle();
    expect(memfdMaps()).toBe(maps - 1);
    expect(served.iommuMapCount).toBe(0);
  });

  it('refuses a DMA map without an fd with ENOTSUP and says why, read-only ones (QEMU ROM) too', async () => {
    fake.iommu.length = 0;
    const errors: string[] = [];
    const trace = subscribeTrace(['vfio_server_error'], (line) => errors.push(line));
    try {
      const r = await client.ask({ op: 'dmaMap', iova: 0x20_0000, size: 0x1000, fd: false });
      expect(r.error).toBe(ENOTSUP);
      const rom = await client.ask({
        op: 'dmaMap',
        iova: 0xfffc_0000,
        size: 0x4000,
        fd: false,
        write: false,
      });
      expect(rom.error).toBe(ENOTSUP);
    } finally {
      trace.unsubscribe();
    }
    expect(errors.join('\n')).toMatch(
      /DMA_MAP errno 95: DMA_MAP \[0x200000, \+0x1000\) without an fd: this device DMAs through its IOMMU with no server in the path/,
    );
    expect(fake.iommu).toEqual([]);
  });

  it('refuses an IOVA outside the IOMMU ranges with ERANGE; a refusal from the IOMMU itself keeps its errno', async () => {
    fake.iommu.length = 0;
    const maps = memfdMaps();
    expect(await client.ask({ op: 'dmaMap', iova: 0, size: 0x1000 })).toMatchObject({ error: ERANGE });
    expect(await client.ask({ op: 'dmaMap', iova: 0xffff_f000, size: 0x2000 })).toMatchObject({
      error: ERANGE,
    });
    fake.refuseNext = { errno: EFAULT };
    expect(await client.ask({ op: 'dmaMap', iova: 0x30_0000, size: 0x1000 })).toMatchObject({
      error: EFAULT,
    });
    expect(fake.iommu).toEqual([]);
    await settle();
    expect(memfdMaps()).toBe(maps); // nothing mapped in the server either
    // Overlap: refused by the session's table before the IOMMU is asked again.
    expect(await client.ask({ op: 'dmaMap', iova: 0x30_0000, size: 0x2000 })).toEqual({});
    expect(await client.ask({ op: 'dmaMap', iova: 0x30_1000, size: 0x1000 })).toMatchObject({
      error: EEXIST,
    });
    expect(fake.iommu.filter((r) => r.op === 'map')).toHaveLength(1);
  });

  it('a client killed mid-run: IRQs disabled, IOMMU maps removed, bus master off, reset, nothing leaked', async () => {
    await client.ask({ op: 'write', index: 7, offset: 4, value: 0x0006, size: 2 }); // memory + bus master
    await client.ask({ op: 'dmaMap', iova: 0x40_0000, size: 0x8000 });
    await client.ask({ op: 'irqs', index: MSIX, count: 4 });
    expect(served.iommuMapCount).toBe(2);
    device.irqCalls.length = 0;
    device.commandWrites.length = 0;
    fake.iommu.length = 0;
    const resets = device.resets;
    client.child.kill('SIGKILL');
    await client.exited;
    await server.idle();
    expect(device.irqCalls).toEqual(
      expect.arrayContaining([
        { index: MSIX, action: 'trigger', start: 0, count: 0, data: 'none' },
        { index: INTX, action: 'trigger', start: 0, count: 0, data: 'none' },
      ]),
    );
    expect(device.held.size).toBe(0); // the "kernel" dropped every eventfd
    expect(device.commandWrites).toEqual([0x0002, 0x0002]); // bus master cleared, then the command as at open
    expect(device.resets).toBe(resets + 1);
    expect(fake.iommu.map((r) => [r.op, r.iova, r.stillMapped])).toEqual([
      ['unmap', 0x30_0000n, true],
      ['unmap', 0x40_0000n, true],
    ]);
    expect(served.iommuMapCount).toBe(0);
    expect(fake.opened.dma.iovaRanges()).toHaveLength(1);
    expect(log.at(-1)).toMatch(
      /left: connection closed; released 2 DMA maps, 2 IRQ indexes; device: bus master off, reset, command 0x2 as at open/,
    );
    await settle();
    expect({ fds: resourceCounts().fds, maps: memfdMaps() }).toEqual(before);
  });

  it('serves the next client from a clean device, at the same IOVA', async () => {
    client = await startClient(socket);
    expect(await client.ask({ op: 'read', index: 7, offset: 4, size: 2 })).toEqual({ value: 0x0002 });
    expect(await client.ask({ op: 'dmaMap', iova: 0x40_0000, size: 0x8000 })).toEqual({});
    expect(await client.ask({ op: 'reset' })).toEqual({});
    client.child.stdin!.write(`${JSON.stringify({ op: 'close' })}\n`); // a clean close: no answer, it exits
    await client.exited;
    await server.idle();
    expect(served.iommuMapCount).toBe(0);
    await settle();
    expect({ fds: resourceCounts().fds, maps: memfdMaps() }).toEqual(before);
  });
});

describe('a kernel-like device served with shareDeviceFd: false', () => {
  const tmp = tempDir();
  const socket = join(tmp.dir, 'no-fd.sock');
  const device = new FakeKernelDevice();
  const served = new KernelServedDevice(fakeOpened(device).opened, { shareDeviceFd: false });
  let server: VfioUserServer;
  let client: Client;

  beforeAll(async () => {
    server = VfioUserServer.listen(served, socket);
    client = await startClient(socket);
  });
  afterAll(async () => {
    client.child.kill('SIGKILL');
    await client.exited;
    server.close();
    served.close();
    tmp[Symbol.dispose]();
  });

  it('offers no region for mmap (no fd, no MMAP flag, no sparse areas) and serves it by messages', async () => {
    expect(await client.ask({ op: 'region', index: 0 })).toMatchObject({
      flags: 0x3,
      fdOffset: null,
      capabilities: [],
    });
    expect(await client.ask({ op: 'region', index: 2 })).toMatchObject({ flags: 0xb, fdOffset: null });
    expect(
      await client.ask({ op: 'mmapRead', index: 0, mapOffset: 0, mapSize: 0x1000, at: 0 }),
    ).toMatchObject({
      error: 22,
      message: expect.stringMatching(/not mmap-able/),
    });
    device.regionWrite(0, 0x10, 0x5a5a, 4);
    expect(await client.ask({ op: 'read', index: 0, offset: 0x10, size: 4 })).toEqual({ value: 0x5a5a });
  });
});

describe('DMA_UNMAP of all maps on a kernel-like device (raw peer, in-process)', () => {
  const tmp = tempDir();
  const socket = join(tmp.dir, 'unmap-all.sock');
  const device = new FakeKernelDevice();
  const fake = fakeOpened(device);
  const served = new KernelServedDevice(fake.opened);
  afterAll(() => {
    served.close();
    tmp[Symbol.dispose]();
  });

  it('takes every map out of the IOMMU while the server still has it mapped, then unmaps; a page-misaligned size is EINVAL', async () => {
    using server = VfioUserServer.listen(served, socket);
    using peer = new RawPeer(socket);
    expect((await peer.ask(versionRequest(1))).errno).toBe(0);
    const memfd = libc.sysMemfdCreate('client-dma');
    try {
      libc.sysFtruncate(memfd, 0x4000);
      const map = (id: number, addr: bigint, size: bigint, offset = 0n) =>
        peer.ask(command(id, 2, { kind: 'dma-map', argsz: 32, flags: 3, offset, addr, size }), [memfd]);
      expect((await map(2, 0x10_0000n, 0x2000n)).errno).toBe(0);
      expect((await map(3, 0x20_0000n, 0x2000n, 0x2000n)).errno).toBe(0);
      expect((await map(4, 0x30_0000n, 0x1800n)).errno).toBe(22); // DmaSpace: whole pages only
      expect(served.iommuMapCount).toBe(2);
      fake.iommu.length = 0;
      const all = await peer.ask(
        command(5, 3, { kind: 'dma-unmap', argsz: 24, flags: 2, addr: 0n, size: 0n }),
      );
      expect(all.errno).toBe(0);
      expect(fake.iommu).toEqual([
        { op: 'unmap', iova: 0x10_0000n, size: 0x2000n, stillMapped: true },
        { op: 'unmap', iova: 0x20_0000n, size: 0x2000n, stillMapped: true },
      ]);
      expect(served.iommuMapCount).toBe(0);
      expect(server.stats.connected).toBe(true);
    } finally {
      libc.sysClose(memfd);
    }
  });
});

describe('KernelServedDevice.clientGone on its own', () => {
  it('turns bus mastering off, resets when the device can, restores the command register as at open', () => {
    class NoReset extends FakeKernelDevice {
      override deviceInfo() {
        return { flags: 0x2, numRegions: 9, numIrqs: 5 }; // PCI, no RESET
      }
    }
    class FailingReset extends FakeKernelDevice {
      override reset(): void {
        throw new Error('EBUSY');
      }
    }
    const cases = [
      [new NoReset(), 'bus master off, no reset (the device has none), command 0x2 as at open'],
      [new FailingReset(), 'bus master off, reset failed (EBUSY), command 0x2 as at open'],
    ] as const;
    for (const [device, said] of cases) {
      using served = new KernelServedDevice(fakeOpened(device).opened);
      device.regionWrite(7, 4, 0x0406, 2); // the client: memory, bus master, INTx disabled
      device.commandWrites.length = 0;
      expect(served.clientGone()).toBe(said);
      expect(device.commandWrites).toEqual([0x0402, 0x0002]);
      expect(device.resets).toBe(0);
    }
  });
});

describe('KernelServedDevice construction', () => {
  it('closes the device it was given when the device cannot be read', () => {
    const before = resourceCounts().fds;
    const device = new FakeKernelDevice();
    device.regionRead = () => {
      throw new Error('EIO');
    };
    expect(() => new KernelServedDevice(fakeOpened(device).opened)).toThrow('EIO');
    expect(device.closed).toBe(true);
    expect(resourceCounts().fds).toBe(before);
  });
});
