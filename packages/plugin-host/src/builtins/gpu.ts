/**
 * GPUs whose hardware backdoors QEMU's VFIO quirks exist for. The models
 * implement the backdoors the way the hardware does, so the quirks (which
 * replace them with the virtualized config space) have something to hide:
 *
 * `sim:nvidia-gpu` (10de, VGA class): BAR0 mirrors configuration space at
 * 0x88000 (all of it) and 0x1800 (the first 256 bytes); the BAR5 I/O window
 * (master 0x0, enable 0x4, address 0x8, data 0xC) reaches BAR0 registers
 * while master & enable & 1. VGA ports 0x3d4/0x3d0 reach BAR0 registers
 * (select 0x338, offset, then 0x538 read / 0x738 write).
 *
 * `sim:ati-gpu` (1002, VGA class): BAR2 mirrors configuration space at
 * 0x4000; the BAR4 I/O window (address 0x0, data 0x4) reaches BAR2 registers;
 * VGA port 0x3c3 reads the upper byte of the physical I/O BAR (BAR4).
 */
import { AddressSpace, MemoryRegion } from '@vfio-ts/memory-core';
import { ConfigBuilder } from '../config-builder.js';
import type { DeviceModel, ModelBar, ModelContext, ModelHooks } from '../model.js';
import { optionRom } from './captured.js';
import { register32 } from './registers.js';

const MiB = 1024 * 1024;

/** A config space mirror in a memory BAR; `refresh` is called when config space changes. */
interface ConfigMirror {
  refresh(offset: number, length: number): void;
}

/**
 * A hardware mirror of configuration space at `offset` of a memory BAR. The
 * slow path reaches config space through an I/O region; the BAR memory under
 * it holds a copy, refreshed whenever config space changes, so a mapping
 * reads what the hardware mirror shows. Bytes written through a mapping reach
 * config space at the next slow-path access to the mirror (as other models
 * see mapped writes when they next look).
 */
function configMirror(
  ctx: ModelContext,
  barIndex: number,
  offset: number,
  size: number,
  name: string,
): ConfigMirror {
  const { region, memory } = ctx.bar(barIndex);
  const base = offset / 4;
  /** What was last copied into the BAR memory: a mapped write shows as a difference. */
  const copied = new Uint32Array(size / 4);
  const refresh = (at: number, length: number) => {
    const end = Math.min(size, at + length);
    for (let d = Math.floor(at / 4); d * 4 < end; d++) {
      const v = ctx.configRead(d * 4, 4);
      copied[d] = v;
      memory.u32[base + d] = v;
    }
  };
  const takeMappedWrites = () => {
    for (let d = 0; d < copied.length; d++) {
      const mapped = memory.u32[base + d]!;
      if (mapped === copied[d]) continue;
      for (let b = 0; b < 4; b++) {
        const byte = (mapped >>> (8 * b)) & 0xff;
        if (byte !== ((copied[d]! >>> (8 * b)) & 0xff)) ctx.configWrite(d * 4 + b, byte, 1);
      }
      refresh(d * 4, 4); // bits config space keeps read-only come back
    }
  };
  const mirror = MemoryRegion.io(name, size, {
    read: (o, n) => {
      takeMappedWrites();
      return ctx.configRead(o, n as 1 | 2 | 4);
    },
    write: (o, v, n) => {
      takeMappedWrites();
      ctx.configWrite(o, Number(v), n as 1 | 2 | 4);
    },
    // 8-byte accesses reach config space as two dwords.
    valid: { min: 1, max: 8 },
    impl: { min: 1, max: 4 },
  });
  region.addSubregionOverlap(offset, mirror, 1);
  refresh(0, size);
  return { refresh };
}

/** Hooks keeping every mirror in step with config space. */
function mirrorHooks(mirrors: readonly ConfigMirror[]): Pick<ModelHooks, 'configWritten'> {
  return {
    configWritten: (offset, length) => {
      for (const m of mirrors) m.refresh(offset, length);
    },
  };
}

/** The data register of an address/data window onto another BAR's registers. */
function windowData(
  ctx: ModelContext,
  ioBar: number,
  dataOffset: number,
  targetBar: number,
  address: () => number,
  enabled: () => boolean,
  name: string,
): void {
  const io = ctx.bar(ioBar);
  const target = ctx.bar(targetBar);
  const space = new AddressSpace(target.region, `${name} target`);
  const inRange = (a: number) => a % 4 === 0 && a + 4 <= target.layout.size;
  register32(io.region, io.memory, dataOffset, name, {
    read: (m) => (enabled() && inRange(address()) ? space.read(address(), 4) : m.u32[dataOffset / 4]!),
    write: (value, m) => {
      if (enabled() && inRange(address())) space.write(address(), value >>> 0, 4);
      else m.u32[dataOffset / 4] = value >>> 0;
    },
  });
}

/**
 * NVIDIA's legacy window onto BAR0 through VGA ports: 0x338 on 0x3d4 selects,
 * the next 0x3d0 write is a BAR0 offset, then 0x538 (read) or 0x738 (write)
 * on 0x3d4 makes the next 0x3d0 access reach that BAR0 register.
 */
function nvidiaVgaWindow(ctx: ModelContext): Pick<ModelHooks, 'vgaRead' | 'vgaWrite'> {
  const bar0 = new AddressSpace(ctx.bar(0).region, 'nvidia VGA window target');
  let state: 'none' | 'select' | 'window' | 'read' | 'write' = 'none';
  let offset = 0;
  return {
    vgaRead(port, size) {
      const old = state;
      state = 'none';
      return port === 0x3d0 && old === 'read' ? Number(bar0.read(offset, size)) : 0;
    },
    vgaWrite(port, value, size) {
      const old = state;
      state = 'none';
      if (port === 0x3d4) {
        if (value === 0x338 && old === 'none') state = 'select';
        else if (value === 0x538 && old === 'window') state = 'read';
        else if (value === 0x738 && old === 'window') state = 'write';
      } else if (port === 0x3d0 && old === 'select') {
        offset = value;
        state = 'window';
      } else if (port === 0x3d0 && old === 'write') {
        bar0.write(offset, value, size);
      }
    },
  };
}

export function nvidiaGpuModel(): DeviceModel {
  const bars: ModelBar[] = [
    { index: 0, size: 16 * MiB, kind: 'mem32', prefetchable: false },
    { index: 1, size: 256 * MiB, kind: 'mem64', prefetchable: true },
    { index: 3, size: 32 * MiB, kind: 'mem64', prefetchable: true },
    { index: 5, size: 128, kind: 'io', prefetchable: false },
  ];
  const config = new ConfigBuilder()
    .pm()
    .msi({ vectors: 1, is64: true })
    .pcie(0)
    .build(
      {
        vendor: 0x10de,
        device: 0x1db6,
        subsystemVendor: 0x10de,
        subsystem: 0x124a,
        revision: 0xa1,
        classCode: 0x030000,
      },
      bars,
      {
        romSize: 128 * 1024,
      },
    );
  return {
    name: 'nvidia-gpu',
    config,
    bars,
    rom: optionRom(128 * 1024),
    vga: true,
    setup(ctx) {
      const mirrors = [
        configMirror(ctx, 0, 0x88000, ctx.configSize, 'nvidia BAR0 0x88000 config mirror'),
        configMirror(ctx, 0, 0x1800, 0x100, 'nvidia BAR0 0x1800 config mirror'),
      ];
      const bar5 = ctx.bar(5).memory;
      windowData(
        ctx,
        5,
        0xc,
        0,
        () => bar5.u32[2]!,
        () => (bar5.u32[0]! & bar5.u32[1]! & 1) !== 0,
        'nvidia BAR5 window data',
      );
      return { reset: () => {}, ...mirrorHooks(mirrors), ...nvidiaVgaWindow(ctx) };
    },
  };
}

export function atiGpuModel(): DeviceModel {
  const bars: ModelBar[] = [
    { index: 0, size: 256 * MiB, kind: 'mem64', prefetchable: true },
    { index: 2, size: 256 * 1024, kind: 'mem64', prefetchable: false },
    { index: 4, size: 256, kind: 'io', prefetchable: false },
    { index: 5, size: 256 * 1024, kind: 'mem32', prefetchable: false },
  ];
  const config = new ConfigBuilder()
    .pm()
    .pcie(0)
    .msi({ vectors: 1, is64: true })
    .build(
      {
        vendor: 0x1002,
        device: 0x67df,
        subsystemVendor: 0x1002,
        subsystem: 0x0b37,
        revision: 0xe7,
        classCode: 0x030000,
      },
      bars,
      {
        romSize: 128 * 1024,
      },
    );
  return {
    name: 'ati-gpu',
    config,
    bars,
    rom: optionRom(128 * 1024),
    vga: true,
    setup(ctx) {
      const mirrors = [configMirror(ctx, 2, 0x4000, ctx.configSize, 'ati BAR2 0x4000 config mirror')];
      const bar4 = ctx.bar(4).memory;
      windowData(
        ctx,
        4,
        0x4,
        2,
        () => bar4.u32[0]!,
        () => true,
        'ati BAR4 window data',
      );
      return {
        reset: () => {},
        ...mirrorHooks(mirrors),
        // Port 0x3c3 reports the upper byte of the I/O BAR (BAR4) as the device has it.
        vgaRead: (offset, size) => (offset === 0x3c3 && size === 1 ? ctx.configRead(0x21, 1) : 0),
      };
    },
  };
}
