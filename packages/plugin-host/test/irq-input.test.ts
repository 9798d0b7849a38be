/**
 * Interrupt requests are input too: a SET_IRQS request of the wrong shape is
 * an ERR_VFIO_ARGUMENT (not a TypeError from inside the backend), and a model
 * raising a vector its config space does not declare is refused instead of
 * setting a pending bit outside the PBA.
 */
import { EventFd } from '@vfio-ts/vfio-sys';
import { describe, expect, it } from 'vitest';
import { openSimDevice } from '../src/index.js';

const argument = (message: RegExp) =>
  expect.objectContaining({ code: 'ERR_VFIO_ARGUMENT', message: expect.stringMatching(message) });
const MSIX = 3;

describe('setIrqs input', () => {
  it.each([
    ['null', null, /expected a request object, got null/],
    ['a number', 5, /expected a request object, got 5/],
    [
      'an unknown action',
      { index: MSIX, action: 'fire', start: 0, count: 1, data: { type: 'none' } },
      /action "fire"/,
    ],
    ['no data', { index: MSIX, action: 'trigger', start: 0, count: 1 }, /data undefined/],
    [
      'an unknown data type',
      { index: MSIX, action: 'trigger', start: 0, count: 1, data: { type: 'fd' } },
      /data type "fd"/,
    ],
    [
      'bool data without values',
      { index: 0, action: 'mask', start: 0, count: 1, data: { type: 'bool', values: 5 } },
      /array of booleans/,
    ],
    [
      'eventfds that are numbers',
      { index: MSIX, action: 'trigger', start: 0, count: 1, data: { type: 'eventfd', eventfds: [7] } },
      /array of EventFd or null/,
    ],
  ])('refuses %s with a typed error', (_what, request, message) => {
    using dev = openSimDevice('sim:nvme');
    expect(() => dev.setIrqs(request as never)).toThrow(argument(message));
  });

  it('still takes well-formed requests', () => {
    using dev = openSimDevice('sim:nvme');
    using efd = EventFd.create();
    dev.setIrqs({
      index: MSIX,
      action: 'trigger',
      start: 0,
      count: 1,
      data: { type: 'eventfd', eventfds: [efd] },
    });
    dev.setIrqs({ index: MSIX, action: 'trigger', start: 0, count: 0, data: { type: 'none' } });
  });
});

describe('raise', () => {
  it('refuses vectors the device does not have, leaving the PBA and the BAR alone', () => {
    using dev = openSimDevice('sim:nvme'); // 65 MSI-X vectors, PBA at BAR0+0x3000
    const before = dev.regionReadBlock(0, 0x3000, 0x1000);
    for (const vector of [65, 1000, -1, 1.5, Number.NaN]) {
      expect(() => dev.raise('msix', vector)).toThrow(
        argument(/msix vector .* the device has vectors 0\.\.64/),
      );
    }
    expect(() => dev.raise('msi', 0)).toThrow(argument(/msi vector 0: the device has none/));
    expect(() => dev.raise('nmi' as never, 0)).toThrow(argument(/interrupt kind "nmi"/));
    expect(dev.regionReadBlock(0, 0x3000, 0x1000)).toEqual(before);
    expect(() => dev.raise('msix', 64)).not.toThrow(); // the last one is fine (MSI-X is off: nothing happens)
  });
});
