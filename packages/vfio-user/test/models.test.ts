/**
 * Every built-in model served from its own process and opened through the
 * client: the same device, regions and IRQs as in-process; mapped and
 * message accesses agree; interrupts the model raises reach our eventfds.
 */
import { join } from 'node:path';
import { builtinModels, openSimDevice } from '@vfio-ts/plugin-host';
import { EventFd, type VfioDeviceIo, type VfioRegionInfo } from '@vfio-ts/vfio-sys';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openVfioUserDevice } from '../src/index.js';
import { type ServerProcess, startServer, tempDir } from './helpers.js';

const MODELS = ['nvme', 'e1000e', 'virtio-net', 'nvidia-gpu', 'ati-gpu', 'pci-idio-16'];
const COMMAND = 0x04;

function sameShape(info: VfioRegionInfo) {
  const { fdOffset: _ignored, ...rest } = info; // an fd offset is per backend (kernel: index << 40; vfio-user: into the region fd)
  return rest;
}

function regionsOf(dev: VfioDeviceIo) {
  const out: unknown[] = [];
  for (let i = 0; i < dev.deviceInfo().numRegions; i++) {
    try {
      out.push(sameShape(dev.regionInfo(i)));
    } catch (err) {
      out.push({ index: i, error: (err as { code?: string }).code });
    }
  }
  return out;
}

function irqsOf(dev: VfioDeviceIo) {
  const out: unknown[] = [];
  for (let i = 0; i < dev.deviceInfo().numIrqs; i++) {
    try {
      out.push(dev.irqInfo(i));
    } catch (err) {
      out.push({ index: i, error: (err as { code?: string }).code });
    }
  }
  return out;
}

it('covers every built-in model', () => {
  expect(MODELS).toEqual(expect.arrayContaining(['nvme', 'e1000e', 'virtio-net', 'nvidia-gpu', 'ati-gpu']));
});

describe.each(MODELS)('sim:%s over vfio-user', (model) => {
  const tmp = tempDir();
  let server: ServerProcess;
  beforeAll(async () => {
    server = await startServer(`sim:${model}`, join(tmp.dir, `${model}.sock`));
  });
  afterAll(async () => {
    await server.stop();
    tmp[Symbol.dispose]();
  });

  it('reports the device, every region and every IRQ index as the in-process backend does', () => {
    using local = openSimDevice(`sim:${model}`);
    using remote = openVfioUserDevice(server.socket);
    expect(remote.deviceInfo()).toEqual(local.deviceInfo());
    expect(regionsOf(remote)).toEqual(regionsOf(local));
    expect(irqsOf(remote)).toEqual(irqsOf(local));
    const size = local.regionInfo(7).size;
    expect(remote.regionReadBlock(7, 0, size)).toEqual(local.regionReadBlock(7, 0, size));
  });

  it('agrees between mmap and messages on every mappable BAR, both ways', () => {
    using dev = openVfioUserDevice(server.socket);
    dev.regionWrite(7, COMMAND, dev.regionRead(7, COMMAND, 2) | 0x7, 2);
    let checked = 0;
    for (let bar = 0; bar < 6; bar++) {
      const info = dev.regionInfo(bar);
      if ((info.flags & 4) === 0) continue;
      const sparse = info.capabilities.find((c) => c.kind === 'sparse-mmap');
      const area = sparse ? sparse.areas[0]! : { offset: 0, size: info.size };
      const length = Math.min(area.size, 0x1000);
      const map = dev.regionMmap(bar, area.offset, Math.ceil(length / 4096) * 4096, {
        read: true,
        write: true,
      });
      try {
        // What the model keeps in memory reads the same both ways.
        const start = area.offset;
        for (let off = 0; off < length; off += 4) {
          const viaMap = map.read(off, 4);
          const viaMessage = dev.regionRead(bar, start + off, 4);
          if (viaMessage === 0xffffffff && viaMap !== viaMessage) continue; // the MSI-X table is hidden from the slow path
          expect(viaMessage, `BAR ${bar} +0x${(start + off).toString(16)}`).toBe(viaMap);
        }
        // A scratch word at the end of the first page: written one way, read the other.
        const scratch = length - 8;
        map.write(scratch, 0xa5a5_0000 + bar, 4);
        const back = dev.regionRead(bar, start + scratch, 4);
        if (back !== 0xffffffff) {
          expect(back).toBe(0xa5a5_0000 + bar);
          dev.regionWrite(bar, start + scratch, 0x5a5a_0000 + bar, 4);
          expect(map.read(scratch, 4)).toBe(0x5a5a_0000 + bar);
        }
        checked++;
      } finally {
        map.unmap();
      }
    }
    // A model whose BARs are all I/O (pci-idio-16) has nothing to map; every other has.
    const mappable = builtinModels[model]!().bars.some((b) => b.kind !== 'io' && b.mappable !== false);
    if (mappable) expect(checked).toBeGreaterThan(0);
    else expect(checked).toBe(0);
  });

  it('delivers interrupts the model raises to the client eventfds (MSI-X, MSI, INTx)', async () => {
    using dev = openVfioUserDevice(server.socket);
    dev.regionWrite(7, COMMAND, (dev.regionRead(7, COMMAND, 2) | 0x4) & ~0x400, 2); // bus master on, INTx enabled
    const kinds: ['msix' | 'msi' | 'intx', number][] = [
      ['msix', 2],
      ['msi', 1],
      ['intx', 0],
    ];
    let delivered = 0;
    for (const [kind, index] of kinds) {
      const info = dev.irqInfo(index);
      if (info.count === 0) continue;
      const e = EventFd.create();
      try {
        dev.setIrqs({
          index,
          action: 'trigger',
          start: 0,
          count: 1,
          data: { type: 'eventfd', eventfds: [e] },
        });
        if (kind === 'msix') {
          // Unmask vector 0 (vector control at +12 of the table entry) through its BAR so the model may deliver.
          const local = openSimDevice(`sim:${model}`);
          const layout = local.msix!;
          local.close();
          const map = dev.regionMmap(layout.tableBar, 0, Math.ceil((layout.tableOffset + 16) / 4096) * 4096, {
            read: true,
            write: true,
          });
          map.write(layout.tableOffset + 12, 0, 4);
          map.unmap();
          // MSI-X enable bit in the capability's message control.
          const cap = findCap(dev, 0x11);
          dev.regionWrite(7, cap + 2, dev.regionRead(7, cap + 2, 2) | 0x8000, 2);
        }
        await server.raise(kind, 0);
        expect(await e.wait(3000), `${kind} of sim:${model}`).toBeGreaterThan(0n);
        delivered++;
      } finally {
        dev.setIrqs({ index, action: 'trigger', start: 0, count: 0, data: { type: 'none' } });
        e.close();
      }
    }
    expect(delivered).toBeGreaterThan(0);
  });
});

function findCap(dev: VfioDeviceIo, id: number): number {
  let at = dev.regionRead(7, 0x34, 1);
  for (let n = 0; at !== 0 && n < 48; n++) {
    if (dev.regionRead(7, at, 1) === id) return at;
    at = dev.regionRead(7, at + 1, 1);
  }
  throw new Error(`no capability ${id}`);
}
