/** Payloads of the interrupt commands: DEVICE_GET_IRQ_INFO and DEVICE_SET_IRQS. */
import type { BodyOf } from './message-types.js';
import type { BodyLayouts, PayloadReader } from './payload-io.js';

export function decodeIrqInfo(r: PayloadReader): BodyOf<'irq-info'> {
  r.exactly(16, 'vfio_irq_info');
  return { kind: 'irq-info', argsz: r.u32(0), flags: r.u32(4), index: r.u32(8), count: r.u32(12) };
}

export function decodeSetIrqs(r: PayloadReader): BodyOf<'set-irqs'> | BodyOf<'empty'> {
  if (r.reply) {
    r.exactly(0, 'a SET_IRQS reply');
    return { kind: 'empty' };
  }
  r.atLeast(20, 'vfio_irq_set');
  return {
    kind: 'set-irqs',
    argsz: r.u32(0),
    flags: r.u32(4),
    index: r.u32(8),
    start: r.u32(12),
    count: r.u32(16),
    data: r.copy(20),
  };
}

export const irqLayouts: BodyLayouts<'irq-info' | 'set-irqs'> = {
  'irq-info': {
    size: () => 16,
    encode(w, b) {
      w.u32(0, b.argsz);
      w.u32(4, b.flags);
      w.u32(8, b.index);
      w.u32(12, b.count);
    },
  },
  'set-irqs': {
    size: (b) => 20 + b.data.byteLength,
    encode(w, b) {
      w.u32(0, b.argsz);
      w.u32(4, b.flags);
      w.u32(8, b.index);
      w.u32(12, b.start);
      w.u32(16, b.count);
      w.bytes(20, b.data);
    },
  },
};
