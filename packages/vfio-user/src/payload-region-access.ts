/** Payloads of region access by message: REGION_READ, REGION_WRITE and REGION_WRITE_MULTI. */
import type { BodyOf, MultiWrite } from './message-types.js';
import type { BodyLayouts, PayloadReader } from './payload-io.js';
import { VFIO_USER_MULTI_DATA, VFIO_USER_MULTI_MAX, VFIO_USER_REGION_READ } from './protocol.js';

/** REGION_READ and REGION_WRITE; the data travels in the READ reply and the WRITE request. */
export function decodeRegionRw(r: PayloadReader): BodyOf<'region-rw'> {
  r.atLeast(16, 'offset, region and count');
  const { len } = r;
  const count = r.u32(12);
  const carriesData = (r.command === VFIO_USER_REGION_READ) === r.reply;
  if (len !== 16 + (carriesData ? count : 0))
    throw r.bad(
      carriesData
        ? `count ${count} but ${len - 16} data bytes`
        : `carries ${len - 16} bytes after the count (expects none)`,
    );
  return { kind: 'region-rw', offset: r.u64(0), region: r.u32(8), count, data: r.copy(16) };
}

export function decodeWriteMulti(r: PayloadReader): BodyOf<'write-multi'> | BodyOf<'raw'> {
  if (r.reply) return { kind: 'raw', bytes: r.copy(0) };
  r.atLeast(8, 'wr_cnt');
  const count = r.u64(0);
  if (count > BigInt(VFIO_USER_MULTI_MAX)) throw r.bad(`wr_cnt ${count} exceeds ${VFIO_USER_MULTI_MAX}`);
  r.exactly(8 + 24 * Number(count), `${count} writes`);
  const writes: MultiWrite[] = [];
  for (let i = 0; i < Number(count); i++) {
    const at = 8 + 24 * i;
    const n = r.u32(at + 12);
    if (n > VFIO_USER_MULTI_DATA) throw r.bad(`write ${i} count ${n} exceeds ${VFIO_USER_MULTI_DATA}`);
    writes.push({ offset: r.u64(at), region: r.u32(at + 8), count: n, data: r.copy(at + 16, at + 24) });
  }
  return { kind: 'write-multi', writes };
}

export const regionAccessLayouts: BodyLayouts<'region-rw' | 'write-multi'> = {
  'region-rw': {
    size: (b) => 16 + b.data.byteLength,
    encode(w, b) {
      w.u64(0, b.offset);
      w.u32(8, b.region);
      w.u32(12, b.count);
      w.bytes(16, b.data);
    },
  },
  'write-multi': {
    size: (b) => 8 + 24 * b.writes.length,
    encode(w, b) {
      w.u64(0, BigInt(b.writes.length));
      b.writes.forEach((wr, i) => {
        const at = 8 + 24 * i;
        w.u64(at, wr.offset);
        w.u32(at + 8, wr.region);
        w.u32(at + 12, wr.count);
        w.bytes(at + 16, wr.data.subarray(0, 8));
      });
    },
  },
};
