/**
 * QEMU 11.1 against a kernel device served over vfio-user, as `vfio-ts serve
 * <bdf>` serves one on vfio-pci (this machine has none): the real
 * KernelServedDevice and VfioUserServer in a server process
 * (fixtures/kernel-served-server.mjs) over a kernel-like device, sim:e1000e
 * with its mappable BARs in ONE memfd at the kernel's offsets (index << 40)
 * and a recording "IOMMU" with a type1 container's IOVA ranges. One SeaBIOS
 * boot with a shared memfd RAM backend (as the vfio-user README tells users):
 * QEMU realizes the device, maps its BARs through the fd at those offsets,
 * sends guest RAM as fd-backed DMA maps that land in the IOMMU at IOVA = guest
 * physical address, has its fd-less maps (BIOS, the device's own BARs)
 * refused with ENOTSUP and boots on; HMP reads return the model's registers;
 * system_reset becomes DEVICE_RESET; quitting makes the server release every
 * map (the recording balances) and leave the device with bus master off.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { expectNoLeaksInFile } from '@vfio-ts/test-support';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  CACHE_DIR,
  DEVICE_ID,
  type QemuRunResult,
  type QmpClient,
  runQemu,
  ServeProcess,
} from '../src/index.js';
import { explained } from './explained.js';
import { declared, inProcess } from './models.js';
import { serverResources, until } from './server-resources.js';

expectNoLeaksInFile();

const SERVER = new URL('./fixtures/kernel-served-server.mjs', import.meta.url).pathname;
const MODEL = 'e1000e';
const RAM_MIB = 256;
const REGION_SHIFT = 40n;
const ENOTSUP = 95;
/** e1000e's BAR0 registers the model sets (as the firmware test reads them). */
const E1000_STATUS = 0x8;
const E1000_RAL0 = 0x5400;
const E1000_RAH0 = 0x5404;
/** e1000e's I/O BAR2: IOADDR selects a BAR0 register, IODATA reads it (trapped: served by the model). */
const IOADDR = 0x0;
const IODATA = 0x4;

interface PciRegion {
  bar: number;
  type: 'io' | 'memory';
  size: number;
  address: number;
}
interface Span {
  iova: bigint;
  size: bigint;
  write: boolean;
}

async function deviceRegions(qmp: QmpClient): Promise<PciRegion[]> {
  const buses = (await qmp.execute('query-pci')) as {
    devices: { qdev_id: string; regions: PciRegion[] }[];
  }[];
  return buses.flatMap((b) => b.devices).find((x) => x.qdev_id === DEVICE_ID)!.regions;
}

const hexOf = (text: string, re: RegExp) => {
  const m = text.match(re);
  if (!m) throw new Error(`unexpected monitor output: ${text}`);
  return Number(m[1]);
};

/** What is in the "IOMMU" now, replayed from the server's iommu-record lines (throws on an unbalanced unmap). */
function iommuNow(serverOutput: string): Span[] {
  const live = new Map<string, Span>();
  for (const m of serverOutput.matchAll(
    /^iommu-record (map|unmap) iova (0x[0-9a-f]+) size (0x[0-9a-f]+)(?: vaddr 0x[0-9a-f]+ read \d write (\d))?$/gm,
  )) {
    const key = `${m[2]}+${m[3]}`;
    if (m[1] === 'map') live.set(key, { iova: BigInt(m[2]!), size: BigInt(m[3]!), write: m[4] === '1' });
    else if (!live.delete(key)) throw new Error(`IOMMU unmap of ${key}, which is not mapped`);
  }
  return [...live.values()].sort((a, b) => (a.iova < b.iova ? -1 : 1));
}

/** The guest RAM sections of the system address space's flat view (`info mtree -f`): the memfd backend `mem`. */
function ramSections(mtree: string): Span[] {
  const view = mtree.split(/^FlatView #/m).find((v) => /^ AS "memory", root: system$/m.test(v)) ?? '';
  return [
    ...view.matchAll(/^ {2}([0-9a-f]{16})-([0-9a-f]{16}) \(prio \d+, (ram|rom)\): mem(?: @([0-9a-f]+))?$/gm),
  ].map((m) => {
    const start = BigInt(`0x${m[1]}`);
    // The backend's offset is the guest physical address: below-4G RAM starts at offset 0.
    expect(BigInt(`0x${m[4] ?? '0'}`), `section at 0x${m[1]}`).toBe(start);
    return { iova: start, size: BigInt(`0x${m[2]}`) - start + 1n, write: m[3] === 'ram' };
  });
}

/** Waits until the server's output has not grown for `quietMs` (QEMU's DMA maps are asynchronous). */
async function settled(server: ServeProcess, quietMs = 300): Promise<void> {
  let length = -1;
  while (server.output.length !== length) {
    length = server.output.length;
    await new Promise((r) => setTimeout(r, quietMs));
  }
}

describe(`QEMU 11.1 against a kernel-like sim:${MODEL} behind KernelServedDevice`, () => {
  const d = declared(MODEL);
  let dir: string;
  let server: ServeProcess;
  let r: QemuRunResult & { cleanup(): void };
  let regions: PciRegion[];
  let qemuMaps = '';
  let mtree = '';
  let iommuAtBoot: Span[] = [];
  const reads: { what: string; got: number; want: number }[] = [];
  let resets = { before: 0, after: 0 };
  let resources: { before: { fds: number; memfdMaps: number }; after: { fds: number; memfdMaps: number } };
  let stopped: { code: number | null; signal: NodeJS.Signals | null };
  let wallSeconds = 0;

  beforeAll(async () => {
    const started = Date.now();
    mkdirSync(CACHE_DIR, { recursive: true });
    // Not "kernel-*": guest/prepare.sh removes stale kernel folders of the cache by that name.
    dir = mkdtempSync(join(CACHE_DIR, 'served-'));
    server = await ServeProcess.start({ device: MODEL, socketPath: join(dir, 'dev.sock'), script: SERVER });
    const before = serverResources(server.pid);
    using model = inProcess(MODEL);
    const countResets = () =>
      server.output.match(/^vfio_server_request id 0x[0-9a-f]+ DEVICE_RESET /gm)?.length ?? 0;
    r = await explained(
      runQemu({
        device: `kernel-like sim:${MODEL}`,
        server,
        firmware: 'seabios',
        memoryMiB: RAM_MIB,
        hmp: ['info pci'],
        timeoutSeconds: 90,
        monitor: async (qmp, live) => {
          regions = await deviceRegions(qmp);
          qemuMaps = readFileSync(`/proc/${live.qemuPid}/maps`, 'utf8');
          await settled(server);
          mtree = await qmp.hmp('info mtree -f');
          iommuAtBoot = iommuNow(server.output);
          // Mapped BAR0: QEMU reads the memfd at offset 0 (the registers' values as the model set them).
          const bar0 = regions.find((x) => x.bar === 0)!;
          for (const [what, offset] of [
            ['STATUS', E1000_STATUS],
            ['RAL0', E1000_RAL0],
            ['RAH0', E1000_RAH0],
          ] as const) {
            const text = await qmp.hmp(`xp /1xw 0x${(bar0.address + offset).toString(16)}`);
            reads.push({
              what: `BAR0 ${what} (mmap)`,
              got: hexOf(text, /: (0x[0-9a-f]+)\s*$/),
              want: model.regionRead(0, offset, 4),
            });
          }
          // Trapped I/O BAR2: REGION_WRITE/READ to the model's IOADDR/IODATA window.
          const io = regions.find((x) => x.bar === 2)!;
          await qmp.hmp(`o /w 0x${(io.address + IOADDR).toString(16)} 0x${E1000_STATUS.toString(16)}`);
          const text = await qmp.hmp(`i /w 0x${(io.address + IODATA).toString(16)}`);
          reads.push({
            what: 'BAR2 IODATA of STATUS (trapped)',
            got: hexOf(text, /= (0x[0-9a-f]+)\s*$/),
            want: model.regionRead(0, E1000_STATUS, 4),
          });

          resets.before = countResets();
          const events = qmp.events.length;
          await qmp.hmp('system_reset');
          await qmp.waitForEvent('RESET', 10_000, events);
          await until('DEVICE_RESET at the server', () => countResets() > resets.before);
          await settled(server);
          resets = { ...resets, after: countResets() };
        },
      }),
    );
    await until('the server to see QEMU leave', () => / left: /.test(server.output));
    resources = { before, after: serverResources(server.pid) };
    stopped = await server.stop();
    wallSeconds = (Date.now() - started) / 1000;
  }, 120_000);
  afterAll(async () => {
    r?.cleanup();
    await server?.stop();
    rmSync(dir, { recursive: true, force: true });
    console.log(
      `kernel-served: one boot, server start to server stop ${wallSeconds.toFixed(1)} s (QEMU run ${r?.wallSeconds.toFixed(1)} s)`,
    );
  });

  it('QEMU realizes the device: info pci and query-pci show the model IDs and BARs', () => {
    const hex = (n: number) => n.toString(16).padStart(4, '0');
    expect(r.hmp[0]!.output).toContain(`PCI device ${hex(d.vendor)}:${hex(d.device)}`);
    expect(regions.filter((x) => x.bar < 6).map((x) => [x.bar, x.type, x.size])).toEqual(
      d.bars.map((b) => [b.index, b.kind === 'io' ? 'io' : 'memory', b.size]),
    );
    expect(regions.filter((x) => x.bar < 6).every((x) => x.address > 0)).toBe(true);
  });

  it('QEMU maps each mappable BAR through the one fd at offset index << 40 (trace and its /proc maps)', () => {
    using model = inProcess(MODEL);
    const mappable = d.bars.filter((b) => model.regionFd(b.index) !== null).map((b) => b.index);
    expect(mappable).toEqual([0, 1, 3]);
    for (const i of mappable) {
      const offset = `0x${(BigInt(i) << REGION_SHIFT).toString(16)}`;
      expect(r.trace).toMatch(
        new RegExp(
          `^vfio_region_setup .*, region ${i} ".* BAR ${i}", flags: 0x[0-9a-f]+, offset: ${offset}, `,
          'm',
        ),
      );
      expect(r.trace).toMatch(
        new RegExp(
          `^vfio_region_mmap Region \\S+ BAR ${i} mmaps\\[0\\] \\[0x0 - 0x${(d.bars.find((b) => b.index === i)!.size - 1).toString(16)}\\]$`,
          'm',
        ),
      );
      // In QEMU's own address space: the server's memfd, at the kernel-style file offset.
      const fileOffset = (BigInt(i) << REGION_SHIFT).toString(16).padStart(8, '0');
      expect(qemuMaps).toMatch(
        new RegExp(`^\\S+ rw-s ${fileOffset} \\S+ \\d+ +/memfd:kernel-like vfio device`, 'm'),
      );
    }
    // Trapped I/O BAR2 is not mapped: its accesses were messages to the model.
    expect(r.trace).not.toMatch(/^vfio_region_mmap Region \S+ BAR 2 /m);
    expect(r.serverOutput).toMatch(/^vfio_server_request id 0x[0-9a-f]+ REGION_READ /m);
  });

  it('guest RAM DMA_MAPs carry the memfd and go into the IOMMU at IOVA = guest physical address', () => {
    const withFd = [
      ...r.serverOutput.matchAll(
        /^vfio_server_dma_map iova (0x[0-9a-f]+) size (0x[0-9a-f]+) offset (0x[0-9a-f]+) flags 0x[0-9a-f]+ fd (\d+)$/gm,
      ),
    ];
    expect(withFd.length).toBeGreaterThan(3);
    for (const m of withFd) {
      const iova = BigInt(m[1]!);
      expect(BigInt(m[3]!), `offset of the map at ${m[1]}`).toBe(iova); // the RAM backend from 0
      expect(iova + BigInt(m[2]!)).toBeLessThanOrEqual(BigInt(RAM_MIB) << 20n);
      // The next IOMMU map is this one, at the same IOVA.
      const after = r.serverOutput.slice(m.index! + m[0].length);
      expect(after).toMatch(
        new RegExp(
          `^\\nvfio_server_iommu_map iova ${m[1]} size ${m[2]} vaddr 0x[0-9a-f]+ read 1 write [01]\\n`,
        ),
      );
    }
    // Once the firmware had settled: what is in the IOMMU is exactly QEMU's RAM layout (RAM read-write, PAM ROM read-only).
    const ram = ramSections(mtree);
    expect(ram.length).toBeGreaterThan(0);
    expect(ram[0]!.iova).toBe(0n);
    expect(iommuAtBoot).toEqual(ram);
  });

  it('fd-less maps (BIOS, the device BARs) are refused with ENOTSUP; QEMU logs them and boots on', () => {
    const fdless = [
      ...r.serverOutput.matchAll(
        /^vfio_server_dma_map iova (0x[0-9a-f]+) size (0x[0-9a-f]+) offset 0x0 flags 0x[0-9a-f]+ fd -1\nvfio_server_error id 0x[0-9a-f]+ DMA_MAP errno (\d+): /gm,
      ),
    ];
    const all = r.serverOutput.match(/^vfio_server_dma_map .* fd -1$/gm) ?? [];
    expect(fdless.length).toBe(all.length);
    expect(fdless.every((m) => Number(m[3]) === ENOTSUP)).toBe(true);
    // Nothing QEMU mapped touched the MSI window the IOVA ranges leave out (apic-msi is MMIO, not RAM): no ERANGE.
    for (const m of r.serverOutput.matchAll(
      /^vfio_server_dma_map iova (0x[0-9a-f]+) size (0x[0-9a-f]+) /gm,
    )) {
      const [start, end] = [Number(m[1]), Number(m[1]) + Number(m[2])];
      expect(end <= 0xfee00000 || start >= 0xfef00000, `map at ${m[1]}`).toBe(true);
    }
    expect(r.serverOutput).not.toMatch(/^vfio_server_error .* DMA_MAP errno 34: /m);
    const refused = fdless.map((m) => Number(m[1]));
    expect(refused).toContain(0xfffc0000); // pc.bios
    for (const b of [0, 1]) expect(refused).toContain(regions.find((x) => x.bar === b)!.address); // peer-to-peer
    expect(r.qemuStderr).toMatch(/error reply on async request:? command 2 error Operation not supported/);
    expect(r.firmwareLog).toMatch(/Booting from|No bootable device/);
    expect(r.qemuExit).toEqual({ code: 0, signal: null });
  });

  it("HMP reads through the guest's physical address space return the model's registers", () => {
    expect(reads).toHaveLength(4);
    for (const x of reads) expect(x.got, x.what).toBe(x.want);
    // BAR0's reads came through the mapping (no message), IODATA's as a REGION_READ of region 2.
    expect(r.trace).not.toMatch(/^vfio_region_read\s+\(\S+:region0\+/m);
    const status = reads[3]!.want.toString(16);
    expect(r.trace).toMatch(/^vfio_region_write\s+\(\S+:region2\+0x0, 0x8, 4\)$/m);
    expect(r.trace).toMatch(
      new RegExp(`^vfio_region_read\\s+\\(\\S+:region2\\+0x4, 4\\) = 0x${status}$`, 'm'),
    );
  });

  it('system_reset leads to DEVICE_RESET (the model reset, its BAR memory reseeded)', () => {
    expect(resets.after).toBeGreaterThan(resets.before);
    expect(r.serverOutput).toMatch(/^kernel-like: reset \(sim:e1000e reset, BAR memory reseeded\)$/m);
    expect(r.trace).toMatch(/^vfio_device_reset_handler/m);
  });

  it("QEMU's quit: the server releases every map from the IOMMU and leaves the device with bus master off", () => {
    expect(server.output).toMatch(
      /^vfio_server_disconnect .*: connection closed \(dma maps \d+, irq indexes \d+ released\)$/m,
    );
    expect(server.output).toMatch(
      /^vfio-ts: client pid \d+ left: connection closed; released [1-9]\d* DMA maps, \d+ IRQ indexes; device: bus master off, reset, command 0x[0-9a-f]+ as at open$/m,
    );
    expect(iommuNow(server.output)).toEqual([]);
    const total = server.output.match(/^iommu-record total maps (\d+) unmaps (\d+) in-iommu (\d+)$/m);
    expect(total).not.toBeNull();
    expect(Number(total![1])).toBeGreaterThan(0);
    expect(total![2]).toBe(total![1]);
    expect(total![3]).toBe('0');
    expect(resources.after).toEqual(resources.before);
    expect(stopped).toEqual({ code: 0, signal: null });
  });
});
