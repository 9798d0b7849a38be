// Teardown runs every step and reports every error it met, not only the first;
// so does the rollback of a realize that failed part-way.
import { openSimDevice, type SimDevice } from '@vfio-ts/plugin-host';
import { resourceCounts, settle } from '@vfio-ts/test-support';
import { SysError, type VfioDeviceIo } from '@vfio-ts/vfio-sys';
import { VFIO_PCI_INTX_IRQ_INDEX, VFIO_PCI_MSIX_IRQ_INDEX } from '@vfio-ts/vfio-sys/uapi';
import { describe, expect, it } from 'vitest';
import { VfioPciDevice, VfioPciError, VfioPciTeardownError } from '../src/index.js';

const BDF = '0000:00:03.0';
const EIO = 5;

interface Failures {
  /** SET_IRQS that turns this interrupt index off fails, as on a device that went away. */
  readonly disableIrq?: number;
  /** close() releases the device and then reports EIO (Linux close releases the fd even then). */
  readonly close?: boolean;
}

function withFailures(sim: SimDevice, failures: Failures): VfioDeviceIo {
  return new Proxy(sim, {
    get(target, prop, receiver) {
      if (prop === 'setIrqs') {
        return (request: Parameters<VfioDeviceIo['setIrqs']>[0]) => {
          if (request.index === failures.disableIrq && request.count === 0)
            throw new SysError('ioctl', EIO, { detail: 'VFIO_DEVICE_SET_IRQS' });
          target.setIrqs(request);
        };
      }
      if (prop === 'close' && failures.close) {
        return () => {
          target.close();
          throw new SysError('close', EIO);
        };
      }
      const value = Reflect.get(target, prop, receiver);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}

function teardownError(fn: () => void): VfioPciTeardownError {
  try {
    fn();
  } catch (err) {
    if (err instanceof VfioPciTeardownError) return err;
    throw err;
  }
  throw new Error('expected a VfioPciTeardownError, nothing was thrown');
}

describe('teardown with failing steps', () => {
  it('given MSI-X disable and close both failing: runs every step, reports both, leaks nothing', async () => {
    await settle();
    const before = resourceCounts();
    const sim = openSimDevice('sim:nvme');
    const dev = VfioPciDevice.realize(
      withFailures(sim, { disableIrq: VFIO_PCI_MSIX_IRQ_INDEX, close: true }),
      BDF,
    );
    const cap = dev.msix!.cap;
    dev.configWrite(cap + 2, dev.configRead(cap + 2, 2) | 0x8000, 2); // MSI-X on: eventfds per vector
    const bases = dev.bars.map((b) => b.base);

    const err = teardownError(() => dev.teardown());
    expect(err).toBeInstanceOf(VfioPciError);
    expect(err.code).toBe('ERR_VFIO_PCI_TEARDOWN');
    expect(err.device).toBe(BDF);
    expect(err.errors).toHaveLength(2);
    expect(err.errors[0]).toMatchObject({ syscall: 'ioctl', code: 'EIO' });
    expect(err.errors[1]).toMatchObject({ syscall: 'close', code: 'EIO' });
    expect(err.cause).toBe(err.errors[0]);
    expect(err.message).toMatch(
      /teardown met 2 errors: ioctl\(VFIO_DEVICE_SET_IRQS\) failed.*; close failed/,
    );

    // The steps after the failures ran: BARs out of the address space, device closed, nothing left.
    expect(bases.every((b) => b.container === null)).toBe(true);
    expect(() => sim.regionRead(7, 0, 4)).toThrow(/closed/);
    expect(() => dev.teardown()).not.toThrow(); // reported once
    await settle();
    expect(resourceCounts()).toEqual(before);
  });

  it('given one failing step: the same error type, carrying that one', async () => {
    await settle();
    const before = resourceCounts();
    const dev = VfioPciDevice.realize(withFailures(openSimDevice('sim:nvme'), { close: true }), BDF);
    const err = teardownError(() => dev.teardown());
    expect(err.errors).toEqual([expect.objectContaining({ syscall: 'close' })]);
    expect(err.message).toMatch(/teardown met 1 error: close failed/);
    await settle();
    expect(resourceCounts()).toEqual(before);
  });

  it('given a realize that fails after INTx is on and an INTx disable that fails: both reported, realize first', async () => {
    await settle();
    const before = resourceCounts();
    const sim = openSimDevice('sim:nvme');
    // x-vga on a device without a VGA region fails after INTx was enabled.
    const err = teardownError(() =>
      VfioPciDevice.realize(withFailures(sim, { disableIrq: VFIO_PCI_INTX_IRQ_INDEX }), BDF, {
        'x-vga': true,
      }),
    );
    expect(err.errors).toHaveLength(2);
    expect(err.errors[0]).toMatchObject({ code: 'ERR_VFIO_PCI_NO_VGA' });
    expect(err.errors[1]).toMatchObject({ syscall: 'ioctl', code: 'EIO' });
    expect(err.message).toMatch(
      /realize failed \(.*no VGA region.*\), and releasing what it had acquired met 1 more/,
    );
    // The rollback leaves the device open for the caller, as a clean rollback does.
    expect(() => sim.regionRead(7, 0, 4)).not.toThrow();
    sim.close();
    await settle();
    expect(resourceCounts()).toEqual(before);
  });

  it('given a realize that fails with a clean rollback: the realize error itself', () => {
    const sim = openSimDevice('sim:nvme');
    expect(() => VfioPciDevice.realize(sim, BDF, { 'x-vga': true })).toThrow(
      expect.objectContaining({ code: 'ERR_VFIO_PCI_NO_VGA' }),
    );
    sim.close();
  });
});
