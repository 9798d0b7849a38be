// Issue 15: a real kernel device served over vfio-user. Devices on the real
// vfio-pci are served by a library server in another process (one
// VfioUserServer per device, as `vfio-ts serve <bdf>` does) and used here
// through our vfio-user client: the CLI sees through the proxy what it sees
// directly; registers read through the proxied mapping and by REGION_READ are
// the device's; edu DMAs into client memory registered with DMA_MAP (an fd
// the server maps into the IOMMU at the client's IOVA); interrupts reach the
// client's eventfds from the kernel; a client killed mid-run leaves nothing
// behind; killing the server releases the devices; `vfio-ts serve` itself
// serves one and stops cleanly. The benchmark prints the proxy's cost next to
// the direct accesses (information only: TCG times are not the hardware's).
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { eventfdWait, expectNoLeaksInFile, sleep, tempDir } from '@vfio-ts/test-support';
import { info, ns, report } from '@vfio-ts/test-support/bench';
import { EventFd, type MappedArea } from '@vfio-ts/vfio-sys';
import {
  VFIO_PCI_CONFIG_REGION_INDEX,
  VFIO_PCI_INTX_IRQ_INDEX,
  VFIO_PCI_MSI_IRQ_INDEX,
  VFIO_PCI_MSIX_IRQ_INDEX,
} from '@vfio-ts/vfio-sys/uapi';
import { openVfioUserDevice, type VfioUserDevice } from '@vfio-ts/vfio-user';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { vfioTs } from './cli-in-process.js';
import { dmaBuffer, INTERFACE, openDevice } from './helpers.js';
import { Child, CLI_BIN, killableClient, ProxyServer, processResources } from './proxy.js';
import { REFERENCE } from './reference.js';

const DEVICES = ['nvme', 'e1000e', 'virtio-net', 'edu'] as const;
type Name = (typeof DEVICES)[number];

/** Registers read 4 bytes wide on an mmap-able BAR of each device (outside any MSI-X table; values that hold still). */
const PROBES: Record<Name, { bar: number; offsets: number[] }> = {
  nvme: { bar: 0, offsets: [0x0, 0x4, 0x8, 0x1c] },
  e1000e: { bar: 0, offsets: [0x0, 0x8, 0x5400] },
  'virtio-net': { bar: 4, offsets: [0x0, 0x4, 0x14] },
  edu: { bar: 0, offsets: [0x0, 0x8, 0x20] },
};

const EDU_BUFFER = 0x40000; // edu's internal DMA buffer, in its own address space
const NVME_VS = 0x8;
const PAGE = 0x1000;

expectNoLeaksInFile();

interface Direct {
  inspect: Record<string, unknown>;
  mtree: string;
  reads: number[];
}
const direct = new Map<Name, Direct>();
const temp = tempDir('vfio-ts-proxy-');
const socketOf = (name: Name) => join(temp.dir, `${name}.sock`);
let server: ProxyServer;

async function cli(...args: string[]): Promise<string> {
  const r = await vfioTs(...args);
  expect(r.status, r.stderr || r.stdout).toBe(0);
  return r.stdout;
}

/**
 * What may differ between `inspect --json` through the proxy and directly, and
 * nothing else: the device's name (its bdf, or vfio-user:<socket>), the backend,
 * the IOMMU interface the kernel backend reports (the client has none), and the
 * offset of a region the server shares no fd for (not mmap-able: config space,
 * ROM, I/O BAR), which the client reports as 0 where the kernel gives its offset
 * in the device fd. A mmap-able region's offset is the kernel's on both sides:
 * the server shares the device fd at that offset.
 */
function comparable(report: Record<string, unknown>) {
  const { device: _d, backend: _b, iommu: _i, regions, ...rest } = report;
  return {
    ...rest,
    regions: (regions as { flags: string[]; offset: number }[]).map((r) =>
      r.flags.includes('MMAP') ? r : { ...r, offset: 'no fd' },
    ),
  };
}

// Direct first: a device is open in one process at a time, and the server holds it from then on.
beforeAll(async () => {
  for (const name of DEVICES) {
    const bdf = REFERENCE[name].bdf;
    const inspect = JSON.parse(await cli('--json', '--iommu-interface', INTERFACE, 'inspect', bdf));
    const mtree = await cli('--iommu-interface', INTERFACE, 'mtree', bdf);
    using device = openDevice(bdf);
    const reads = PROBES[name].offsets.map((off) => device.regionRead(PROBES[name].bar, off, 4));
    direct.set(name, { inspect, mtree, reads });
  }
  server = await ProxyServer.start();
  for (const name of DEVICES) await server.serve(REFERENCE[name].bdf, socketOf(name));
}, 180_000);

afterAll(async () => {
  await server?.kill('SIGKILL');
  temp[Symbol.dispose]();
});

function busMaster(client: VfioUserDevice): void {
  const cmd = client.regionRead(VFIO_PCI_CONFIG_REGION_INDEX, 4, 2);
  client.regionWrite(VFIO_PCI_CONFIG_REGION_INDEX, 4, cmd | 0x6, 2); // memory decode + bus master
}

/** One edu DMA of 64 bytes, programmed by REGION_WRITE messages or through the proxied BAR0 mapping. */
async function eduDma(
  client: VfioUserDevice,
  bar: MappedArea | null,
  src: number,
  dst: number,
  toRam: boolean,
): Promise<void> {
  const write = (off: number, v: number) => (bar ? bar.write(off, v, 4) : client.regionWrite(0, off, v, 4));
  const read = (off: number) => (bar ? bar.read(off, 4) : client.regionRead(0, off, 4));
  write(0x80, src);
  write(0x88, dst);
  write(0x90, 64);
  write(0x98, toRam ? 3 : 1); // start; bit 1: edu -> RAM
  for (let i = 0; i < 100 && (read(0x98) & 1) === 1; i++) await sleep(20);
  expect(read(0x98) & 1, 'edu DMA did not finish').toBe(0);
}

/** RAM -> edu by REGION_WRITEs, edu -> RAM through the proxied mapping: the bytes come back one page further. */
async function eduRoundTrip(client: VfioUserDevice, iova: number, seed: number): Promise<void> {
  const buf = dmaBuffer(0x2000);
  try {
    for (let i = 0; i < 64; i++) buf.area.write(i, (i * 7 + seed) & 0xff, 1);
    client.dmaMap({ iova: BigInt(iova), memory: buf.area.u8, fd: { fd: buf.fd, offset: 0 } });
    const bar = client.regionMmap(0, 0, PAGE, { read: true, write: true });
    try {
      busMaster(client);
      await eduDma(client, null, iova, EDU_BUFFER, false);
      await eduDma(client, bar, EDU_BUFFER, iova + 0x1000, true);
    } finally {
      bar.unmap();
      client.dmaUnmap(BigInt(iova), 0x2000);
    }
    const back = Array.from({ length: 64 }, (_, i) => buf.area.read(0x1000 + i, 1));
    expect(back).toEqual(Array.from({ length: 64 }, (_, i) => (i * 7 + seed) & 0xff));
  } finally {
    buf.close();
  }
}

describe(`a kernel device through the vfio-user proxy (${INTERFACE} interface)`, () => {
  it.each(DEVICES)('%s: inspect --json and mtree through the proxy equal the direct ones', async (name) => {
    const socket = socketOf(name);
    const proxied = JSON.parse(await cli('--json', 'inspect', `vfio-user:${socket}`));
    const { inspect } = direct.get(name)!;
    expect([proxied.device, proxied.backend, proxied.iommu]).toEqual([
      `vfio-user:${socket}`,
      'vfio-user',
      undefined,
    ]);
    expect([inspect.device, inspect.backend]).toEqual([REFERENCE[name].bdf, 'kernel']);
    expect(comparable(proxied)).toEqual(comparable(inspect));
    const unshared = (proxied.regions as { flags: string[]; offset: number }[]).filter(
      (r) => !r.flags.includes('MMAP'),
    );
    expect(unshared.map((r) => r.offset)).toEqual(unshared.map(() => 0));
    // mtree names the regions after the device: the name is the one difference.
    const mtree = await cli('mtree', `vfio-user:${socket}`);
    expect(mtree).toContain(`vfio-user:${socket} BAR ${PROBES[name].bar}`);
    expect(mtree.replaceAll(`vfio-user:${socket}`, REFERENCE[name].bdf)).toBe(direct.get(name)!.mtree);
  });

  it.each(DEVICES)(
    '%s: registers through the proxied mapping and by REGION_READ equal pread on the device',
    (name) => {
      const { bar, offsets } = PROBES[name];
      using client = openVfioUserDevice(socketOf(name));
      expect(client.regionInfo(bar).flags & 4, 'mmap-able').toBe(4);
      const mapped = offsets.map((off) => {
        const page = off - (off % PAGE);
        const area = client.regionMmap(bar, page, PAGE, { read: true, write: false });
        try {
          return area.read(off - page, 4);
        } finally {
          area.unmap();
        }
      });
      const messages = offsets.map((off) => client.regionRead(bar, off, 4));
      expect(mapped).toEqual(direct.get(name)!.reads);
      expect(messages).toEqual(direct.get(name)!.reads);
    },
  );

  it('edu: `vfio-ts read` maps the BAR through the proxy and reads the identification register', async () => {
    const socket = socketOf('edu');
    const fast = JSON.parse(await cli('--json', 'read', `vfio-user:${socket}`, '0', '0x0'));
    const slow = JSON.parse(await cli('--json', 'read', '--slow', `vfio-user:${socket}`, '0', '0x0'));
    expect([fast.value, slow.value]).toEqual([0x010000ed, 0x010000ed]);
  });

  it('edu: DMA both ways into client memory registered with DMA_MAP (fd), at the client IOVA', async () => {
    using client = openVfioUserDevice(socketOf('edu'));
    await eduRoundTrip(client, 0x100000, 3);
  });

  it('edu: DMA_MAP without an fd is ENOTSUP, and an IOVA outside the IOMMU ranges (the MSI window) ERANGE', () => {
    using client = openVfioUserDevice(socketOf('edu'));
    const buf = dmaBuffer(PAGE);
    try {
      // The device DMAs with no server in the path: it needs the client's memory as an fd.
      expect(() => client.dmaMap({ iova: 0x100000n, memory: buf.area.u8 })).toThrow(
        expect.objectContaining({ code: 'ENOTSUP' }),
      );
      expect(() =>
        client.dmaMap({ iova: 0xfee00000n, memory: buf.area.u8, fd: { fd: buf.fd, offset: 0 } }),
      ).toThrow(expect.objectContaining({ code: 'ERANGE' }));
      // Neither left a map behind: the same IOVA maps now.
      client.dmaMap({ iova: 0x100000n, memory: buf.area.u8, fd: { fd: buf.fd, offset: 0 } });
      client.dmaUnmap(0x100000n, PAGE);
    } finally {
      buf.close();
    }
  });

  it('DEVICE_RESET resets nvme through the proxy; edu, which cannot reset, answers EINVAL', () => {
    {
      using client = openVfioUserDevice(socketOf('nvme'));
      client.reset();
      expect(client.regionRead(VFIO_PCI_CONFIG_REGION_INDEX, 0, 4)).toBe(REFERENCE.nvme.vendorDevice);
    }
    using edu = openVfioUserDevice(socketOf('edu'));
    expect(() => edu.reset()).toThrow(expect.objectContaining({ code: 'EINVAL' }));
  });

  it('edu: MSI and INTx reach the client eventfds from the kernel', async () => {
    using client = openVfioUserDevice(socketOf('edu'));
    busMaster(client);
    using efd = EventFd.create();
    const irqs = (index: number, action: 'trigger' | 'unmask', eventfd: EventFd | null) =>
      client.setIrqs({
        index,
        action,
        start: 0,
        count: eventfd || action === 'unmask' ? 1 : 0,
        data: eventfd ? { type: 'eventfd', eventfds: [eventfd] } : { type: 'none' },
      });
    irqs(VFIO_PCI_MSI_IRQ_INDEX, 'trigger', efd);
    expect(efd.consume()).toBe(0n);
    client.regionWrite(0, 0x60, 1, 4); // edu: raise
    expect(await eventfdWait(efd)).toBeGreaterThanOrEqual(1n);
    client.regionWrite(0, 0x64, 1, 4); // ack
    irqs(VFIO_PCI_MSI_IRQ_INDEX, 'trigger', null);
    // INTx (MSI off), automasked by the kernel: once per interrupt, again after UNMASK.
    irqs(VFIO_PCI_INTX_IRQ_INDEX, 'trigger', efd);
    client.regionWrite(0, 0x60, 1, 4);
    expect(await eventfdWait(efd)).toBe(1n);
    client.regionWrite(0, 0x64, 1, 4);
    client.regionWrite(0, 0x60, 1, 4); // still masked
    expect(await eventfdWait(efd, 300)).toBe(0n);
    irqs(VFIO_PCI_INTX_IRQ_INDEX, 'unmask', null);
    expect(await eventfdWait(efd)).toBe(1n);
    client.regionWrite(0, 0x64, 1, 4);
    irqs(VFIO_PCI_INTX_IRQ_INDEX, 'trigger', null);
  });

  it('nvme: MSI-X vector 0 on the client eventfd, fired by the kernel loopback trigger', () => {
    using client = openVfioUserDevice(socketOf('nvme'));
    using efd = EventFd.create();
    const msix = (count: number, data: Parameters<VfioUserDevice['setIrqs']>[0]['data']) =>
      client.setIrqs({ index: VFIO_PCI_MSIX_IRQ_INDEX, action: 'trigger', start: 0, count, data });
    msix(1, { type: 'eventfd', eventfds: [efd] });
    msix(1, { type: 'none' }); // DATA_NONE|ACTION_TRIGGER: the kernel signals the vector's eventfd
    expect(efd.consume()).toBe(1n);
    msix(0, { type: 'none' });
    expect(() => msix(1, { type: 'none' })).toThrow(/EINVAL/);
  });

  it('edu: a client killed while mapped leaves no DMA in the IOMMU, no fd and no mapping; the server keeps serving', async () => {
    const socket = socketOf('edu');
    const iova = 0x200000;
    const before = await server.resources();
    const logged = server.child.stderr.length;
    const killed = killableClient(socket, iova);
    try {
      expect(await killed.line()).toBe('mapped 10000ed');
      const during = processResources(server.pid);
      // The server holds the client's socket, memfd and eventfd, and maps the memfd.
      expect(during.fds).toBeGreaterThan(before.fds);
      expect(during.maps).toBeGreaterThan(before.maps);
    } finally {
      await killed.kill('SIGKILL');
    }
    expect(await server.child.log(/left: .*released 1 DMA map/, logged)).toMatch(/1 IRQ index/);
    expect(await server.resources()).toEqual(before);
    // The device was left quiescent: bus mastering off. The IOVA is free in the
    // IOMMU again: a second client maps it and edu DMAs through it.
    using client = openVfioUserDevice(socket);
    expect(client.regionRead(VFIO_PCI_CONFIG_REGION_INDEX, 4, 2) & 0x4, 'bus master').toBe(0);
    await eduRoundTrip(client, iova, 11);
  });
});

// The timed loops are monomorphic and written as fixtures/proxy-server.mjs's (the other side of each ratio).
function messageLoop(client: VfioUserDevice, offset: number, n: number): number {
  let checksum = 0;
  for (let i = 0; i < n; i++) checksum ^= client.regionRead(0, offset, 4);
  return checksum;
}

function mappedLoop(area: MappedArea, offset: number, n: number): number {
  let checksum = 0;
  for (let i = 0; i < n; i++) checksum ^= area.read(offset, 4);
  return checksum;
}

describe(`benchmark: the proxy against the device (${INTERFACE} interface, TCG)`, () => {
  it('nvme VS: REGION_READ round trips vs pread, the proxied mapping vs the direct one; ratios printed', async () => {
    const bdf = REFERENCE.nvme.bdf;
    using client = openVfioUserDevice(socketOf('nvme'));
    const area = client.regionMmap(0, 0, PAGE, { read: true, write: false });
    try {
      const timed = (value: number, n: number, loop: (n: number) => number) => {
        const t0 = process.hrtime.bigint();
        const checksum = loop(n);
        return { value, checksum, ns: Number(process.hrtime.bigint() - t0) / n };
      };
      const subjects = {
        pread: (n: number) => server.directReads('pread', bdf, 0, NVME_VS, n),
        message: async (n: number) =>
          timed(client.regionRead(0, NVME_VS, 4), n, (k) => messageLoop(client, NVME_VS, k)),
        direct: (n: number) => server.directReads('mapped', bdf, 0, NVME_VS, n),
        proxied: async (n: number) => timed(area.read(NVME_VS, 4), n, (k) => mappedLoop(area, NVME_VS, k)),
      };
      // About 10 ms of mapped reads a round (~0.2 us each under TCG); a message round trip costs
      // 1-10 ms there (two process wake-ups on vCPUs the host shares), so far fewer of those.
      const iterations = { pread: 40, message: 40, direct: 50_000, proxied: 50_000 };
      const names = Object.keys(subjects) as (keyof typeof subjects)[];
      const rounds: Record<keyof typeof subjects, number[]> = {
        pread: [],
        message: [],
        direct: [],
        proxied: [],
      };
      for (const name of names) await subjects[name](20); // warm-up
      for (let round = 0; round < 7; round++) {
        for (const name of round % 2 ? [...names].reverse() : names) {
          const r = await subjects[name](iterations[name]);
          // The same register every time: the value nvme reports, and an even count of XORs is 0.
          expect([r.value, r.checksum], name).toEqual([0x10400, 0]);
          rounds[name].push(r.ns);
        }
      }
      const best = (name: keyof typeof subjects) => Math.min(...rounds[name]);
      const spread = (a: keyof typeof subjects, b: keyof typeof subjects) => {
        const ratios = rounds[a].map((t, i) => t / rounds[b][i]!);
        return `per-round ${Math.min(...ratios).toFixed(2)}-${Math.max(...ratios).toFixed(2)}x`;
      };
      report(
        info(
          'proxy.read',
          `4-byte REGION_READ through the proxy / pread on the device (${INTERFACE})`,
          best('message') / best('pread'),
          'x',
          `${ns(best('message'))} vs ${ns(best('pread'))}; ${spread('message', 'pread')}`,
        ),
      );
      report(
        info(
          'proxy.mapped',
          `4-byte read through the proxied mapping / the direct mapping (${INTERFACE})`,
          best('proxied') / best('direct'),
          'x',
          `${ns(best('proxied'))} vs ${ns(best('direct'))}; ${spread('proxied', 'direct')}`,
        ),
      );
    } finally {
      area.unmap();
    }
  });
});

describe(`the server's end (${INTERFACE} interface)`, () => {
  it('killing the library server releases every device: each opens directly again', async () => {
    expect((await server.kill('SIGKILL')).signal).toBe('SIGKILL');
    for (const name of DEVICES) {
      using device = openDevice(REFERENCE[name].bdf);
      expect(device.regionRead(VFIO_PCI_CONFIG_REGION_INDEX, 0, 4), name).toBe(REFERENCE[name].vendorDevice);
    }
  });

  it('`vfio-ts serve <bdf>` serves edu until SIGTERM, then removes its socket and releases the device', async () => {
    const bdf = REFERENCE.edu.bdf;
    const socket = join(temp.dir, 'cli.sock');
    const serve = new Child([
      CLI_BIN,
      '--json',
      '--iommu-interface',
      INTERFACE,
      'serve',
      bdf,
      '--socket',
      socket,
    ]);
    let exit: Awaited<ReturnType<Child['kill']>>;
    try {
      expect(await serve.document()).toEqual({
        device: bdf,
        backend: 'kernel',
        iommuInterface: INTERFACE,
        socket,
        listening: true,
      });
      const r = JSON.parse(await cli('--json', 'read', `vfio-user:${socket}`, '0', '0x0'));
      expect(r.value).toBe(0x010000ed);
    } finally {
      exit = await serve.kill('SIGTERM');
    }
    expect(exit, serve.stderr.join('\n')).toEqual({ code: 0, signal: null });
    expect(existsSync(socket)).toBe(false);
    using device = openDevice(bdf);
    expect(device.regionRead(0, 0, 4)).toBe(0x010000ed);
  });
});
