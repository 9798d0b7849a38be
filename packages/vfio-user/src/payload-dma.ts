/**
 * Payloads of the DMA commands: DMA_MAP and DMA_UNMAP from the client, and
 * the DMA_READ/DMA_WRITE the server sends to reach fd-less client memory.
 */
import type { BodyOf } from './message-types.js';
import type { BodyLayouts, PayloadReader } from './payload-io.js';
import { VFIO_USER_DMA_READ } from './protocol.js';

export function decodeDmaMap(r: PayloadReader): BodyOf<'dma-map'> | BodyOf<'empty'> {
  if (r.reply) {
    r.exactly(0, 'a DMA_MAP reply');
    return { kind: 'empty' };
  }
  r.exactly(32, 'vfio_user_dma_map');
  return {
    kind: 'dma-map',
    argsz: r.u32(0),
    flags: r.u32(4),
    offset: r.u64(8),
    addr: r.u64(16),
    size: r.u64(24),
  };
}

export function decodeDmaUnmap(r: PayloadReader): BodyOf<'dma-unmap'> | BodyOf<'empty'> {
  if (r.reply && r.len === 0) return { kind: 'empty' };
  r.exactly(24, 'vfio_user_dma_unmap');
  return { kind: 'dma-unmap', argsz: r.u32(0), flags: r.u32(4), addr: r.u64(8), size: r.u64(16) };
}

/** DMA_READ and DMA_WRITE; the data travels in the READ reply and the WRITE request. */
export function decodeDmaRw(r: PayloadReader): BodyOf<'dma-rw'> {
  r.atLeast(16, 'address and count');
  const { len } = r;
  const count = r.u64(8);
  const carriesData = (r.command === VFIO_USER_DMA_READ) === r.reply;
  if (BigInt(len) !== 16n + (carriesData ? count : 0n))
    throw r.bad(
      carriesData
        ? `count ${count} but ${len - 16} data bytes`
        : `carries ${len - 16} bytes after the count (expects none)`,
    );
  return { kind: 'dma-rw', addr: r.u64(0), count, data: r.copy(16) };
}

export const dmaLayouts: BodyLayouts<'dma-map' | 'dma-unmap' | 'dma-rw'> = {
  'dma-map': {
    size: () => 32,
    encode(w, b) {
      w.u32(0, b.argsz);
      w.u32(4, b.flags);
      w.u64(8, b.offset);
      w.u64(16, b.addr);
      w.u64(24, b.size);
    },
  },
  'dma-unmap': {
    size: () => 24,
    encode(w, b) {
      w.u32(0, b.argsz);
      w.u32(4, b.flags);
      w.u64(8, b.addr);
      w.u64(16, b.size);
    },
  },
  'dma-rw': {
    size: (b) => 16 + b.data.byteLength,
    encode(w, b) {
      w.u64(0, b.addr);
      w.u64(8, b.count);
      w.bytes(16, b.data);
    },
  },
};
