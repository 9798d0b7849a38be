import { resourceCounts, settle } from '@vfio-ts/test-support';
import { EventFd } from '@vfio-ts/vfio-sys';
import * as libc from '@vfio-ts/vfio-sys/libc';
import { describe, expect, it } from 'vitest';
import { openSimDevice } from '../src/index.js';

const RW = { read: true, write: true };
const COMMAND = 0x04;

function pollReadable(fd: number): boolean {
  return (libc.sysPoll([{ fd, events: libc.POLLIN }], 0)[0]! & libc.POLLIN) !== 0;
}

function eventfd(): EventFd {
  return EventFd.create();
}

describe('mapped areas are real shared memory', () => {
  it('a write through the mmap is seen by the slow path and the reverse', () => {
    using dev = openSimDevice('sim:nvme');
    const map = dev.regionMmap(0, 0, 0x4000, RW);
    try {
      map.write(0x100, 0xdeadbeef, 4);
      expect(dev.regionRead(0, 0x100, 4)).toBe(0xdeadbeef);
      dev.regionWrite(0, 0x104, 0x1234, 2);
      expect(map.read(0x104, 2)).toBe(0x1234);
      // The model sees mapped writes too: the admin queues and CC.EN (with 64/16-byte I/O
      // queue entries) written through the mapping show as CSTS.RDY.
      map.write(0x24, 0x001f001f, 4); // AQA: 32 entries each
      map.write(0x28, 0x10000, 4); // ASQ
      map.write(0x30, 0x20000, 4); // ACQ
      map.write(0x14, 0x00460001, 4);
      expect(dev.regionRead(0, 0x1c, 4) & 1).toBe(1);
    } finally {
      map.unmap();
    }
  });

  it('hides the MSI-X table from the slow path (all ones, writes dropped) while the mmap shows it', () => {
    using dev = openSimDevice('sim:nvme');
    expect(dev.regionRead(0, 0x2000, 4)).toBe(0xffffffff);
    expect(dev.regionRead64(0, 0x2008)).toBe(0xffffffffffffffffn);
    dev.regionWrite(0, 0x200c, 0, 4);
    const map = dev.regionMmap(0, 0, 0x4000, RW);
    expect(map.read(0x200c, 4)).toBe(1); // vector control: masked
    expect(dev.regionRead(0, 0x3000, 4)).toBe(0); // the PBA is readable
    map.unmap();
  });

  it('refuses mmaps outside the region, misaligned, read-only violations and non-mappable regions with EINVAL', () => {
    using dev = openSimDevice('sim:e1000e');
    expect(() => dev.regionMmap(0, 0x100, 0x1000, RW)).toThrow(
      expect.objectContaining({ code: 'EINVAL', syscall: 'mmap' }),
    );
    expect(() => dev.regionMmap(0, 0, 0x21000, RW)).toThrow(/exceed region 0/);
    expect(() => dev.regionMmap(2, 0, 0x1000, RW)).toThrow(/not mmap-able/);
    expect(() => dev.regionMmap(6, 0, 0x1000, { read: true, write: false })).toThrow(/not mmap-able/);
  });
});

describe('MSI-X reporting modes', () => {
  it('mmap-no-cap: one full mmap and no capability', () => {
    using dev = openSimDevice('sim:nvme', { msixMode: 'mmap-no-cap' });
    expect(dev.regionInfo(0)).toMatchObject({ flags: 7, capabilities: [] });
  });

  it('sparse: areas that exclude the table pages, and mmaps over the table refused', () => {
    using dev = openSimDevice('sim:nvme', { msixMode: 'sparse' });
    expect(dev.regionInfo(0).capabilities).toEqual([
      {
        kind: 'sparse-mmap',
        id: 1,
        version: 1,
        areas: [
          { offset: 0, size: 0x2000 },
          { offset: 0x3000, size: 0x1000 },
        ],
      },
    ]);
    expect(() => dev.regionMmap(0, 0, 0x4000, RW)).toThrow(/overlap the MSI-X table/);
    dev.regionMmap(0, 0x3000, 0x1000, RW).unmap();
  });

  it('sparse with 64 KiB pages: the table page swallows a 16 KiB BAR, so it is not mappable', () => {
    using dev = openSimDevice('sim:nvme', { msixMode: 'sparse', pageSize: 65536 });
    expect(dev.regionInfo(0)).toMatchObject({ flags: 3, capabilities: [] });
  });
});

describe('config space behaves like hardware', () => {
  it('sizes BARs: all ones reads back the size mask with the type bits', () => {
    using dev = openSimDevice('sim:e1000e');
    const orig = dev.regionRead(7, 0x10, 4);
    dev.regionWrite(7, 0x10, 0xffffffff, 4);
    expect(dev.regionRead(7, 0x10, 4)).toBe(0xfffe0000); // 128 KiB, 32-bit non-prefetchable memory
    dev.regionWrite(7, 0x18, 0xffffffff, 4);
    expect(dev.regionRead(7, 0x18, 4)).toBe(0xffffffe1); // 32-byte I/O BAR
    dev.regionWrite(7, 0x30, 0xffffffff, 4);
    expect(dev.regionRead(7, 0x30, 4)).toBe(0xfffc0001); // 256 KiB ROM, enable bit kept
    dev.regionWrite(7, 0x10, orig, 4);
    expect(dev.regionRead(7, 0x10, 4)).toBe(orig);
  });

  it('sizes a 64-bit BAR across both registers', () => {
    using dev = openSimDevice('sim:nvme');
    dev.regionWrite(7, 0x10, 0xffffffff, 4);
    dev.regionWrite(7, 0x14, 0xffffffff, 4);
    expect(dev.regionRead(7, 0x10, 4)).toBe(0xffffc004);
    expect(dev.regionRead(7, 0x14, 4)).toBe(0xffffffff);
  });

  it('keeps read-only fields and clears write-1-to-clear status bits', () => {
    using dev = openSimDevice('sim:nvme');
    dev.regionWrite(7, 0x00, 0x12345678, 4);
    expect(dev.regionRead(7, 0x00, 4)).toBe(0x00101b36);
    // Signal a master abort in status, then clear it by writing 1.
    const status = dev.regionRead(7, 0x06, 2);
    dev.regionWrite(7, 0x06, 0x2000, 2);
    expect(dev.regionRead(7, 0x06, 2)).toBe(status);
  });

  it('gates BAR decode with the command register (EIO while disabled)', () => {
    using dev = openSimDevice('sim:nvme');
    const cmd = dev.regionRead(7, COMMAND, 2);
    dev.regionWrite(7, COMMAND, cmd & ~2, 2);
    expect(() => dev.regionRead(0, 0, 4)).toThrow(expect.objectContaining({ code: 'EIO' }));
    dev.regionWrite(7, COMMAND, cmd, 2);
    expect(dev.regionRead(0, 8, 4)).toBe(0x10400);
  });
});

describe('interrupts through eventfds', () => {
  it('signals the MSI-X eventfd when the model raises an unmasked vector (with bus mastering)', () => {
    using dev = openSimDevice('sim:nvme');
    const efd = eventfd();
    try {
      dev.setIrqs({
        index: 2,
        action: 'trigger',
        start: 0,
        count: 2,
        data: { type: 'eventfd', eventfds: [efd, null] },
      });
      const map = dev.regionMmap(0, 0, 0x4000, RW);
      map.write(0x200c, 0, 4); // unmask vector 0
      dev.raise('msix', 0);
      expect(pollReadable(efd.fd)).toBe(false); // no bus master: MSI does nothing, as on hardware
      dev.regionWrite(7, COMMAND, dev.regionRead(7, COMMAND, 2) | 4, 2);
      dev.raise('msix', 0);
      expect(pollReadable(efd.fd)).toBe(true);
      expect(efd.consume()).toBe(1n);
      // A masked vector sets its pending bit instead.
      map.write(0x200c, 1, 4);
      dev.raise('msix', 0);
      expect(pollReadable(efd.fd)).toBe(false);
      expect(dev.regionRead(0, 0x3000, 4) & 1).toBe(1);
      map.unmap();
      // Disable: count 0 with DATA_NONE|ACTION_TRIGGER.
      dev.setIrqs({ index: 2, action: 'trigger', start: 0, count: 0, data: { type: 'none' } });
      dev.raise('msix', 0);
      expect(pollReadable(efd.fd)).toBe(false);
    } finally {
      efd.close();
    }
  });

  it('keeps its own reference to the eventfd, as the kernel does', () => {
    using dev = openSimDevice('sim:e1000e');
    dev.regionWrite(7, COMMAND, dev.regionRead(7, COMMAND, 2) | 4, 2);
    const efd = eventfd();
    dev.setIrqs({
      index: 1,
      action: 'trigger',
      start: 0,
      count: 1,
      data: { type: 'eventfd', eventfds: [efd] },
    });
    const copy = efd.dup();
    efd.close();
    dev.raise('msi', 0);
    expect(pollReadable(copy.fd)).toBe(true);
    copy.close();
  });

  it('automasks INTx until unmasked, and delivers what was pending then', () => {
    using dev = openSimDevice('sim:nvme');
    const efd = eventfd();
    try {
      dev.setIrqs({
        index: 0,
        action: 'trigger',
        start: 0,
        count: 1,
        data: { type: 'eventfd', eventfds: [efd] },
      });
      dev.raise('intx');
      expect(efd.consume()).toBe(1n);
      dev.raise('intx');
      expect(efd.consume()).toBe(0n);
      dev.setIrqs({ index: 0, action: 'unmask', start: 0, count: 1, data: { type: 'none' } });
      expect(efd.consume()).toBe(1n);
    } finally {
      efd.close();
    }
  });

  it('rejects what the kernel rejects', () => {
    using dev = openSimDevice('sim:nvme');
    const efd = eventfd();
    try {
      expect(() =>
        dev.setIrqs({
          index: 2,
          action: 'trigger',
          start: 60,
          count: 10,
          data: { type: 'eventfd', eventfds: new Array(10).fill(efd) },
        }),
      ).toThrow(expect.objectContaining({ code: 'EINVAL' }));
      expect(() =>
        dev.setIrqs({ index: 0, action: 'unmask', start: 0, count: 0, data: { type: 'none' } }),
      ).toThrow(expect.objectContaining({ code: 'EINVAL' }));
      expect(() =>
        dev.setIrqs({ index: 2, action: 'mask', start: 0, count: 1, data: { type: 'none' } }),
      ).toThrow(expect.objectContaining({ code: 'ENOTTY' }));
      expect(() =>
        dev.setIrqs({
          index: 1,
          action: 'trigger',
          start: 0,
          count: 1,
          data: { type: 'eventfd', eventfds: [efd] },
        }),
      ).toThrow(expect.objectContaining({ code: 'EINVAL' })); // nvme has no MSI
      dev.setIrqs({
        index: 2,
        action: 'trigger',
        start: 0,
        count: 1,
        data: { type: 'eventfd', eventfds: [efd] },
      });
      expect(() =>
        dev.setIrqs({
          index: 0,
          action: 'trigger',
          start: 0,
          count: 1,
          data: { type: 'eventfd', eventfds: [efd] },
        }),
      ).toThrow(/INTx while MSI\/MSI-X is enabled/);
      expect(() =>
        dev.setIrqs({ index: 9, action: 'trigger', start: 0, count: 0, data: { type: 'none' } }),
      ).toThrow(/IRQ index 9/);
    } finally {
      efd.close();
    }
  });
});

describe('reset and lifetime', () => {
  it('reset restores config space, registers and the MSI-X table', () => {
    using dev = openSimDevice('sim:nvme');
    dev.regionWrite(0, 0x14, 1, 4);
    dev.regionWrite(7, 0x3c, 0x55, 1);
    dev.reset();
    expect(dev.regionRead(0, 0x14, 4)).toBe(0);
    expect(dev.regionRead(0, 0x1c, 4)).toBe(0);
    expect(dev.regionRead(7, 0x3c, 1)).toBe(0x0b);
    expect(dev.regionRead64(0, 0)).toBe(0x4000200f0107ffn);
  });

  it('refuses reset on a device without it (virtio-net), like the kernel', () => {
    using dev = openSimDevice('sim:virtio-net');
    expect(() => dev.reset()).toThrow(expect.objectContaining({ code: 'EINVAL' }));
  });

  it('leaves no fd or mapping after close, eventfds and mappings included', async () => {
    await settle();
    const before = resourceCounts();
    for (const name of ['nvme', 'e1000e', 'virtio-net', 'nvidia-gpu', 'ati-gpu']) {
      const dev = openSimDevice(`sim:${name}`);
      const efd = eventfd();
      if (dev.irqInfo(2).count > 0)
        dev.setIrqs({
          index: 2,
          action: 'trigger',
          start: 0,
          count: 1,
          data: { type: 'eventfd', eventfds: [efd] },
        });
      const bar = [0, 1, 2, 3, 4, 5].find((i) => (dev.regionInfo(i).flags & 4) !== 0)!;
      dev.regionMmap(bar, 0, 0x1000, RW).unmap();
      efd.close();
      dev.close();
      dev.close(); // idempotent
      expect(() => dev.regionRead(7, 0, 4)).toThrow(expect.objectContaining({ code: 'ERR_VFIO_CLOSED' }));
    }
    await settle();
    expect(resourceCounts()).toEqual(before);
  });
});

describe('register behaviour', () => {
  it('e1000e: STATUS shows link up, CTRL.RST self-clears, ICR is read-to-clear, IOADDR/IODATA reach BAR0', () => {
    using dev = openSimDevice('sim:e1000e');
    expect(dev.regionRead(0, 0x8, 4)).toBe(0x80783 | 0);
    dev.regionWrite(0, 0x0, 0x04000000 | 0x40, 4);
    expect(dev.regionRead(0, 0x0, 4)).toBe(0x40);
    dev.regionWrite(2, 0x0, 0x5400, 4);
    expect(dev.regionRead(2, 0x4, 4)).toBe(0x12005452);
  });

  it('virtio-net: feature selection, MAC in the device config, status 0 resets', () => {
    using dev = openSimDevice('sim:virtio-net');
    expect(dev.regionRead(4, 0x4, 4)).toBe(0x10020);
    dev.regionWrite(4, 0x0, 1, 4);
    expect(dev.regionRead(4, 0x4, 4)).toBe(1);
    expect([...dev.regionReadBlock(4, 0x2000, 6)]).toEqual([0x52, 0x54, 0, 0x12, 0x34, 0x57]);
    dev.regionWrite(4, 0x14, 0x0f, 1);
    expect(dev.regionRead(4, 0x14, 1)).toBe(0x0f);
    dev.regionWrite(4, 0x14, 0, 1);
    expect(dev.regionRead(4, 0x14, 1)).toBe(0);
    expect(dev.regionRead(4, 0x0, 4)).toBe(0);
  });

  it('nvidia-gpu: BAR0 mirrors config space at 0x88000 and 0x1800; the BAR5 window reaches them when enabled', () => {
    using dev = openSimDevice('sim:nvidia-gpu');
    const id = dev.regionRead(7, 0, 4);
    expect(id).toBe(0x1db610de);
    expect(dev.regionRead(0, 0x88000, 4)).toBe(id);
    expect(dev.regionRead(0, 0x1800, 4)).toBe(id);
    dev.regionWrite(5, 0x8, 0x88000, 4);
    expect(dev.regionRead(5, 0xc, 4)).not.toBe(id); // window closed: the data register is just a register
    dev.regionWrite(5, 0x0, 1, 4);
    dev.regionWrite(5, 0x4, 1, 4);
    expect(dev.regionRead(5, 0xc, 4)).toBe(id);
  });

  it('ati-gpu: BAR2 mirrors config at 0x4000 and the BAR4 address/data window reaches it', () => {
    using dev = openSimDevice('sim:ati-gpu');
    const id = dev.regionRead(7, 0, 4);
    expect(dev.regionRead(2, 0x4000, 4)).toBe(id);
    dev.regionWrite(4, 0x0, 0x4000, 4);
    expect(dev.regionRead(4, 0x4, 4)).toBe(id);
    expect(dev.regionInfo(8)).toMatchObject({ size: 0xc0000, flags: 3 });
  });
});

describe('legacy VGA ports (region 8) through the model hooks', () => {
  it('ati-gpu: 0x3c3 reads the upper byte of its own I/O BAR; other ports read 0', () => {
    using dev = openSimDevice('sim:ati-gpu');
    dev.regionWrite(7, 0x20, 0xe101, 4); // BAR4 as the device has it
    expect(dev.regionRead(8, 0x3c3, 1)).toBe(0xe1);
    expect(dev.regionRead(8, 0x3c2, 1)).toBe(0);
  });

  it('nvidia-gpu: 0x3d4/0x3d0 select an offset and read or write that BAR0 register', () => {
    using dev = openSimDevice('sim:nvidia-gpu');
    const select = (offset: number, mode: number) => {
      dev.regionWrite(8, 0x3d4, 0x338, 2);
      dev.regionWrite(8, 0x3d0, offset, 2);
      dev.regionWrite(8, 0x3d4, mode, 2);
    };
    select(0x200, 0x738);
    dev.regionWrite(8, 0x3d0, 0xbeef, 2);
    expect(dev.regionRead(0, 0x200, 2)).toBe(0xbeef);
    select(0x200, 0x538);
    expect(dev.regionRead(8, 0x3d0, 2)).toBe(0xbeef);
    expect(dev.regionRead(8, 0x3d0, 2)).toBe(0); // one access per selection
    select(0x1800, 0x538); // BAR0 0x1800 mirrors config space
    expect(dev.regionRead(8, 0x3d0, 2)).toBe(0x10de);
  });

  it('VGA addresses a model does not implement read 0', () => {
    using dev = openSimDevice('sim:nvidia-gpu');
    expect(dev.regionRead(8, 0xa0000, 4)).toBe(0);
  });
});
