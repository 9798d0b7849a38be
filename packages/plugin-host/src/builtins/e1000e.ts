/**
 * `sim:e1000e`: QEMU's 82574L (8086:10d3) as Linux vfio-pci presents it:
 * 128 KiB register BAR0, flash BAR1, a 32-byte I/O BAR2 (IOADDR/IODATA
 * window onto the registers), MSI-X in BAR3 (table at 0, PBA at 0x2000),
 * a 256 KiB ROM. Registers: CTRL (RST self-clears), STATUS (link up),
 * ICR read-to-clear, the receive address of 52:54:00:12:34:56.
 */
import type { DeviceModel } from '../model.js';
import { capturedModel } from './captured.js';
import { e1000eCapture } from './captures.js';
import { put32, register32 } from './registers.js';

export const E1000_CTRL = 0x0000;
export const E1000_STATUS = 0x0008;
export const E1000_ICR = 0x00c0;
export const E1000_RAL0 = 0x5400;
export const E1000_RAH0 = 0x5404;
export const E1000_CTRL_RST = 1 << 26;
/** Full duplex, link up, 1000 Mb/s, as a connected 82574L reports. */
export const E1000_STATUS_VALUE = 0x00080783;

export function e1000eModel(): DeviceModel {
  return capturedModel('e1000e', e1000eCapture, (ctx) => {
    const bar0 = ctx.bar(0);
    const io = ctx.bar(2);
    const regs = bar0.memory;
    const init = () => {
      put32(regs, E1000_CTRL, 0x00140240);
      put32(regs, E1000_STATUS, E1000_STATUS_VALUE);
      put32(regs, E1000_RAL0, 0x12005452);
      put32(regs, E1000_RAH0, 0x5634 | (1 << 31));
    };
    register32(bar0.region, regs, E1000_CTRL, 'e1000e CTRL', {
      write: (value) => put32(regs, E1000_CTRL, value & ~E1000_CTRL_RST), // reset completes at once
    });
    register32(bar0.region, regs, E1000_STATUS, 'e1000e STATUS', { write: () => {} });
    register32(bar0.region, regs, E1000_ICR, 'e1000e ICR', {
      read: () => {
        const v = regs.u32[E1000_ICR / 4]!;
        put32(regs, E1000_ICR, 0); // read-to-clear
        return v;
      },
    });
    // IOADDR at 0 selects a register; IODATA at 4 reads and writes it through BAR0.
    register32(io.region, io.memory, 4, 'e1000e IODATA', {
      read: () => bar0Read(io.memory.u32[0]!),
      write: (value) => bar0Write(io.memory.u32[0]!, value),
    });
    const bar0Read = (offset: number) =>
      offset < 0x20000 && offset % 4 === 0 ? regs.u32[offset / 4]! : 0xffffffff;
    const bar0Write = (offset: number, value: number) => {
      if (offset < 0x20000 && offset % 4 === 0) put32(regs, offset, value);
    };
    init();
    return { reset: init };
  });
}
