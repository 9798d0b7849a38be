/**
 * `sim:pci-idio-16`: the ACCES PCI-IDIO-16 (494f:0dc8), 16 FET outputs and
 * 16 isolated inputs with change-of-state interrupts, on a 256-byte I/O BAR2,
 * as Linux's gpio-pci-idio-16 / gpio-idio-16 drivers use it. Byte registers:
 *
 * | offset | read                         | write                      |
 * |--------|------------------------------|----------------------------|
 * | 0x0    | outputs OUT0-7               | outputs OUT0-7             |
 * | 0x1    | inputs IIN0-7                | clear the interrupt        |
 * | 0x2    | enable the IRQ (reads 0)     | disable the IRQ            |
 * | 0x3    | activate input filters (0)   | deactivate input filters   |
 * | 0x4    | outputs OUT8-15              | outputs OUT8-15            |
 * | 0x5    | inputs IIN8-15               | (ignored)                  |
 * | 0x6    | interrupt status             | (ignored)                  |
 *
 * The board is wired for testing, each output to its input with a pull-up:
 * IINn reads 1 while OUTn is off and 0 while it conducts. A change of an
 * input while the IRQ is enabled latches the status (bit 0: IIN0-7 changed,
 * bit 1: IIN8-15 changed, bit 2: interrupt pending; the driver requires bit 2
 * and one of bits 0-1) and asserts INTx until the driver clears it (write to
 * 0x1). The input filters (0x3) only debounce real inputs: nothing to model.
 * Other offsets read 0 and ignore writes. Reset: outputs off (so every input
 * reads 1), IRQ disabled, status clear.
 */
import { MemoryRegion } from '@vfio-ts/memory-core';
import { ConfigBuilder } from '../config-builder.js';
import type { DeviceModel, ModelBar } from '../model.js';

export const IDIO_16_VENDOR = 0x494f;
export const IDIO_16_DEVICE = 0x0dc8;
export const IDIO_16_BAR = 2;
export const IDIO_16_OUT0_7 = 0x0;
export const IDIO_16_IN0_7 = 0x1;
export const IDIO_16_IRQ_CTL = 0x2;
export const IDIO_16_FILTER_CTL = 0x3;
export const IDIO_16_OUT8_15 = 0x4;
export const IDIO_16_IN8_15 = 0x5;
export const IDIO_16_IRQ_STATUS = 0x6;
export const IDIO_16_STATUS_LOW = 1 << 0;
export const IDIO_16_STATUS_HIGH = 1 << 1;
export const IDIO_16_STATUS_PENDING = 1 << 2;

export function pciIdio16Model(): DeviceModel {
  const bars: ModelBar[] = [{ index: IDIO_16_BAR, size: 256, kind: 'io', prefetchable: false }];
  // Class 0x118000: data acquisition and signal processing controller, other.
  const config = new ConfigBuilder().build(
    { vendor: IDIO_16_VENDOR, device: IDIO_16_DEVICE, subsystemVendor: IDIO_16_VENDOR, classCode: 0x118000 },
    bars,
    { interruptPin: 1 },
  );
  return {
    name: 'pci-idio-16',
    config,
    bars,
    setup(ctx) {
      let outputs = 0;
      let irqEnabled = false;
      let status = 0;
      /** What the wiring drives onto the inputs: the pull-up wins while the output is off. */
      const inputs = () => ~outputs & 0xffff;
      const setOutputs = (next: number) => {
        const before = inputs();
        outputs = next & 0xffff;
        const changed = before ^ inputs();
        if (changed === 0 || !irqEnabled) return;
        const wasPending = (status & IDIO_16_STATUS_PENDING) !== 0;
        status |=
          IDIO_16_STATUS_PENDING |
          (changed & 0xff ? IDIO_16_STATUS_LOW : 0) |
          (changed & 0xff00 ? IDIO_16_STATUS_HIGH : 0);
        if (!wasPending) ctx.raise('intx');
      };
      const read = (offset: number): number => {
        switch (offset) {
          case IDIO_16_OUT0_7:
            return outputs & 0xff;
          case IDIO_16_IN0_7:
            return inputs() & 0xff;
          case IDIO_16_IRQ_CTL:
            irqEnabled = true;
            return 0;
          case IDIO_16_FILTER_CTL:
            return 0; // the filters only debounce real inputs: nothing to model
          case IDIO_16_OUT8_15:
            return outputs >> 8;
          case IDIO_16_IN8_15:
            return inputs() >> 8;
          case IDIO_16_IRQ_STATUS:
            return status;
          default:
            return 0;
        }
      };
      const write = (offset: number, value: number): void => {
        switch (offset) {
          case IDIO_16_OUT0_7:
            setOutputs((outputs & 0xff00) | value);
            return;
          case IDIO_16_IN0_7:
            status = 0;
            return;
          case IDIO_16_IRQ_CTL:
            irqEnabled = false;
            return;
          case IDIO_16_OUT8_15:
            setOutputs((outputs & 0xff) | (value << 8));
            return;
          default:
            return; // 0x5, 0x6 and the rest of the BAR: not writable
        }
      };
      // One byte-wide register file over the whole BAR: wider accesses are
      // split into byte accesses, lowest address first, as on the ISA-style bus.
      const registers = MemoryRegion.io('pci-idio-16 registers', 256, {
        read: (offset) => read(offset),
        write: (offset, value) => write(offset, Number(value)),
        impl: { min: 1, max: 1 },
        valid: { min: 1, max: 4 },
      });
      ctx.bar(IDIO_16_BAR).region.addSubregionOverlap(0, registers, 1);
      const reset = () => {
        outputs = 0;
        irqEnabled = false;
        status = 0;
      };
      return { reset };
    },
  };
}
