/**
 * sim:pci-idio-16 as the Linux drivers (gpio-pci-idio-16, gpio-idio-16) use
 * it: identity, the byte registers of I/O BAR2, the output-to-input wiring,
 * change-of-state interrupts on INTx, reset.
 */
import { EventFd } from '@vfio-ts/vfio-sys';
import { describe, expect, it } from 'vitest';
import { openSimDevice } from '../src/index.js';

const CONFIG = 7;
const BAR2 = 2;

describe('sim:pci-idio-16', () => {
  it('is 494f:0dc8 with one 256-byte I/O BAR2, INTx pin A and no MSI or MSI-X', () => {
    using dev = openSimDevice('sim:pci-idio-16');
    expect(dev.regionRead(CONFIG, 0x0, 4)).toBe(0x0dc8494f);
    expect(dev.regionRead(CONFIG, 0x3d, 1)).toBe(1);
    expect(dev.regionRead(CONFIG, 0x18, 4) & 1).toBe(1); // BAR2 is I/O
    expect(dev.regionInfo(BAR2).size).toBe(256);
    for (const i of [0, 1, 3, 4, 5]) expect(dev.regionInfo(i).size).toBe(0);
    expect(dev.irqInfo(0).count).toBe(1);
    expect(dev.irqInfo(1).count).toBe(0);
    expect(dev.irqInfo(2).count).toBe(0);
    expect(dev.deviceInfo().flags & 2).toBe(2); // VFIO_DEVICE_FLAGS_PCI
  });

  it('outputs read back; every input reads 1 while its output is off and 0 while it conducts', () => {
    using dev = openSimDevice('sim:pci-idio-16');
    dev.regionWrite(CONFIG, 0x4, 1, 2); // I/O decode
    expect(dev.regionRead(BAR2, 0x1, 1)).toBe(0xff);
    expect(dev.regionRead(BAR2, 0x5, 1)).toBe(0xff);
    dev.regionWrite(BAR2, 0x0, 0x5a, 1);
    dev.regionWrite(BAR2, 0x4, 0x81, 1);
    expect(dev.regionRead(BAR2, 0x0, 1)).toBe(0x5a);
    expect(dev.regionRead(BAR2, 0x4, 1)).toBe(0x81);
    expect(dev.regionRead(BAR2, 0x1, 1)).toBe(0xa5);
    expect(dev.regionRead(BAR2, 0x5, 1)).toBe(0x7e);
    // A 4-byte read is four byte registers, lowest first.
    expect(dev.regionRead(BAR2, 0x4, 4)).toBe(0x00007e81);
    // Inputs and the status are not writable; unused offsets read 0.
    dev.regionWrite(BAR2, 0x5, 0x00, 1);
    expect(dev.regionRead(BAR2, 0x5, 1)).toBe(0x7e);
    expect(dev.regionRead(BAR2, 0x80, 1)).toBe(0);
  });

  it('a change of state with the IRQ enabled latches the status and raises INTx once until cleared', () => {
    using dev = openSimDevice('sim:pci-idio-16');
    dev.regionWrite(CONFIG, 0x4, 1, 2);
    using efd = EventFd.create();
    dev.setIrqs({
      index: 0,
      action: 'trigger',
      start: 0,
      count: 1,
      data: { type: 'eventfd', eventfds: [efd] },
    });
    // Disabled (the reset state): no interrupt, no status.
    dev.regionWrite(BAR2, 0x0, 0x01, 1);
    expect(efd.consume()).toBe(0n);
    expect(dev.regionRead(BAR2, 0x6, 1)).toBe(0);
    // The driver enables by reading 0x2 (after clearing with a write to 0x1).
    dev.regionWrite(BAR2, 0x1, 0, 1);
    expect(dev.regionRead(BAR2, 0x2, 1)).toBe(0);
    dev.regionWrite(BAR2, 0x4, 0x10, 1); // OUT12 on: IIN12 falls
    expect(efd.consume()).toBe(1n);
    expect(dev.regionRead(BAR2, 0x6, 1)).toBe(0b110);
    // Still pending: a further change adds its group, no second interrupt.
    dev.regionWrite(BAR2, 0x0, 0x03, 1);
    dev.setIrqs({ index: 0, action: 'unmask', start: 0, count: 1, data: { type: 'none' } });
    expect(efd.consume()).toBe(0n);
    expect(dev.regionRead(BAR2, 0x6, 1)).toBe(0b111);
    // Cleared, then the next change interrupts again; writing the same value changes nothing.
    dev.regionWrite(BAR2, 0x1, 0, 1);
    expect(dev.regionRead(BAR2, 0x6, 1)).toBe(0);
    dev.regionWrite(BAR2, 0x0, 0x03, 1);
    expect(efd.consume()).toBe(0n);
    dev.regionWrite(BAR2, 0x0, 0x02, 1);
    expect(efd.consume()).toBe(1n);
    expect(dev.regionRead(BAR2, 0x6, 1)).toBe(0b101);
    // Disabled by a write to 0x2: changes latch nothing.
    dev.regionWrite(BAR2, 0x1, 0, 1);
    dev.regionWrite(BAR2, 0x2, 0, 1);
    dev.regionWrite(BAR2, 0x0, 0xff, 1);
    expect(dev.regionRead(BAR2, 0x6, 1)).toBe(0);
  });

  it('reset turns the outputs off (inputs read 1), disables the IRQ and clears the status', () => {
    using dev = openSimDevice('sim:pci-idio-16');
    dev.regionWrite(CONFIG, 0x4, 1, 2);
    dev.regionRead(BAR2, 0x2, 1);
    dev.regionWrite(BAR2, 0x0, 0xff, 1);
    expect(dev.regionRead(BAR2, 0x6, 1)).not.toBe(0);
    dev.reset();
    dev.regionWrite(CONFIG, 0x4, 1, 2);
    expect(dev.regionRead(BAR2, 0x0, 1)).toBe(0);
    expect(dev.regionRead(BAR2, 0x1, 1)).toBe(0xff);
    expect(dev.regionRead(BAR2, 0x6, 1)).toBe(0);
    dev.regionWrite(BAR2, 0x0, 0x01, 1);
    expect(dev.regionRead(BAR2, 0x6, 1)).toBe(0);
  });
});
