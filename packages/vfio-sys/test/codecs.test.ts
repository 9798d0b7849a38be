import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { EventFd, VfioDecodeError } from '../src/index.js';
import {
  decodeHotResetInfo,
  decodeIommuType1Info,
  decodeRegionCapability,
  decodeRegionInfo,
  encodeIrqSet,
  walkCapabilityChain,
} from '../src/uapi/index.js';

/** A vfio_region_info reply as the kernel writes it, with capabilities appended. */
function regionInfo(opts: {
  flags: number;
  size: bigint;
  offset: bigint;
  caps?: Uint8Array[];
  argsz?: number;
}): Buffer {
  const caps = opts.caps ?? [];
  const total = 32 + caps.reduce((a, c) => a + c.length, 0);
  const buf = Buffer.alloc(Math.max(total, 32));
  buf.writeUInt32LE(opts.argsz ?? total, 0);
  buf.writeUInt32LE(opts.flags | (caps.length ? 8 : 0), 4);
  buf.writeUInt32LE(caps.length ? 32 : 0, 12);
  buf.writeBigUInt64LE(opts.size, 16);
  buf.writeBigUInt64LE(opts.offset, 24);
  let at = 32;
  caps.forEach((cap, i) => {
    buf.set(cap, at);
    buf.writeUInt32LE(i === caps.length - 1 ? 0 : at + cap.length, at + 4);
    at += cap.length;
  });
  return buf;
}

function capHeader(id: number, version: number, body: number[] = []): Uint8Array {
  const b = Buffer.alloc(8 + body.length * 4);
  b.writeUInt16LE(id, 0);
  b.writeUInt16LE(version, 2);
  for (const [i, v] of body.entries()) b.writeUInt32LE(v, 8 + 4 * i);
  return b;
}

function sparse(areas: [number, number][], count = areas.length): Uint8Array {
  const b = Buffer.alloc(16 + areas.length * 16);
  b.writeUInt16LE(1, 0);
  b.writeUInt16LE(1, 2);
  b.writeUInt32LE(count, 8);
  areas.forEach(([o, s], i) => {
    b.writeBigUInt64LE(BigInt(o), 16 + i * 16);
    b.writeBigUInt64LE(BigInt(s), 24 + i * 16);
  });
  return b;
}

describe('vfio_region_info', () => {
  it('decodes nvme BAR0 as Linux 6.1 reports it (MSIX_MAPPABLE, argsz 40)', () => {
    const reply = regionInfo({ flags: 7, size: 0x4000n, offset: 0n, caps: [capHeader(3, 1)] });
    expect(reply.readUInt32LE(0)).toBe(40);
    expect(decodeRegionInfo(reply)).toMatchObject({
      flags: 15,
      size: 0x4000,
      offset: 0,
      capabilities: [{ kind: 'msix-mappable', id: 3, version: 1 }],
    });
  });

  it('asks for a bigger buffer when the capabilities did not fit (grow and retry)', () => {
    const reply = regionInfo({ flags: 7, size: 0x4000n, offset: 0n }).subarray(0, 32);
    Buffer.from(reply.buffer, reply.byteOffset).writeUInt32LE(72, 0);
    expect(decodeRegionInfo(reply)).toEqual({ needs: 72 });
  });

  it('decodes SPARSE_MMAP areas and TYPE, and keeps unknown capabilities raw', () => {
    const reply = regionInfo({
      flags: 7,
      size: 0x4000n,
      offset: 0x30000000000n,
      caps: [
        sparse([
          [0, 0x2000],
          [0x3000, 0x1000],
        ]),
        capHeader(2, 1, [0x80000000, 3]),
        capHeader(42, 7, [0xdeadbeef]),
      ],
    });
    const info = decodeRegionInfo(reply);
    expect(info).toMatchObject({
      offset: 0x30000000000,
      capabilities: [
        {
          kind: 'sparse-mmap',
          areas: [
            { offset: 0, size: 0x2000 },
            { offset: 0x3000, size: 0x1000 },
          ],
        },
        { kind: 'type', type: 0x80000000, subtype: 3 },
        { kind: 'unknown', id: 42, version: 7 },
      ],
    });
  });

  it('refuses u64 values a number would round', () => {
    const reply = regionInfo({ flags: 7, size: 1n << 60n, offset: 0n });
    expect(() => decodeRegionInfo(reply)).toThrow(
      /region size 0x1000000000000000 exceeds 2\^53 \(at offset 0x10\)/,
    );
  });
});

describe('the capability chain parser treats the bytes as untrusted', () => {
  it('rejects a loop, naming the offset', () => {
    const buf = Buffer.alloc(48);
    buf.writeUInt32LE(48, 0);
    buf.writeUInt32LE(40, 32 + 4); // 32 -> 40
    buf.writeUInt32LE(32, 40 + 4); // 40 -> 32
    expect(() => walkCapabilityChain(buf, 48, 32)).toThrow(
      new VfioDecodeError('capability chain loops back', 32),
    );
  });

  it('rejects offsets outside argsz, misaligned headers and truncated capabilities', () => {
    const buf = Buffer.alloc(64);
    expect(() => walkCapabilityChain(buf, 40, 36)).toThrow(/outside the 40 bytes.*0x24/);
    expect(() => walkCapabilityChain(buf, 64, 34)).toThrow(/misaligned \(at offset 0x22\)/);
    buf.writeUInt32LE(200, 32 + 4);
    expect(() => walkCapabilityChain(buf, 64, 32)).toThrow(
      /next capability offset 0xc8 outside the reply \(at offset 0x24\)/,
    );
    const tooMany = sparse([[0, 0x1000]], 1000);
    expect(() => decodeRegionCapability({ id: 1, version: 1, offset: 32, bytes: tooMany })).toThrow(
      /lists 1000 areas but has room for 1/,
    );
    expect(() =>
      decodeRegionCapability({ id: 2, version: 1, offset: 32, bytes: new Uint8Array(12) }),
    ).toThrow(/TYPE capability needs 16 bytes/);
  });

  it('bounds the chain length', () => {
    const n = 70;
    const buf = Buffer.alloc(32 + n * 8);
    for (let i = 0; i < n; i++) buf.writeUInt32LE(i === n - 1 ? 0 : 32 + (i + 1) * 8, 32 + i * 8 + 4);
    expect(() => walkCapabilityChain(buf, buf.length, 32)).toThrow(/longer than 64 entries/);
  });

  it('never throws anything but VfioDecodeError on random bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 32, maxLength: 160 }), fc.boolean(), (bytes, caps) => {
        const buf = Buffer.from(bytes);
        buf.writeUInt32LE(Math.min(buf.readUInt32LE(0), 4096), 0);
        if (caps) buf.writeUInt32LE((buf.readUInt32LE(4) | 8) >>> 0, 4);
        try {
          decodeRegionInfo(buf);
          decodeIommuType1Info(buf);
          decodeHotResetInfo(buf);
        } catch (err) {
          if (!(err instanceof VfioDecodeError)) throw err;
        }
      }),
      { numRuns: 2000 },
    );
  });
});

describe('vfio_iommu_type1_info', () => {
  it('decodes the capabilities Linux 6.1 reported in the reference guest', () => {
    const buf = Buffer.alloc(116);
    buf.writeUInt32LE(116, 0);
    buf.writeUInt32LE(3, 4);
    buf.writeBigUInt64LE(0x40201000n, 8);
    buf.writeUInt32LE(24, 16);
    // MIGRATION at 24 (32 bytes), DMA_AVAIL at 56 (12 -> 16 with padding), IOVA_RANGE at 72 (16 + 2*16 -> only 1 fits... use 1)
    buf.writeUInt16LE(2, 24);
    buf.writeUInt16LE(1, 26);
    buf.writeUInt32LE(56, 28);
    buf.writeBigUInt64LE(0x1000n, 40);
    buf.writeBigUInt64LE(268435456n, 48);
    buf.writeUInt16LE(3, 56);
    buf.writeUInt16LE(1, 58);
    buf.writeUInt32LE(68, 60);
    buf.writeUInt32LE(65535, 64);
    buf.writeUInt16LE(1, 68);
    buf.writeUInt16LE(1, 70);
    buf.writeUInt32LE(0, 72);
    buf.writeUInt32LE(2, 76);
    buf.writeBigUInt64LE(0n, 84);
    buf.writeBigUInt64LE(0xfedfffffn, 92);
    buf.writeBigUInt64LE(0xfef00000n, 100);
    buf.writeBigUInt64LE(0xffffffffffffn, 108);
    const info = decodeIommuType1Info(buf);
    expect(info).toMatchObject({
      flags: 3,
      iovaPgsizes: 0x40201000n,
      migration: { flags: 0, pgsizeBitmap: 0x1000n, maxDirtyBitmapSize: 268435456n },
      dmaAvail: 65535,
      iovaRanges: [
        { start: 0n, end: 0xfedfffffn },
        { start: 0xfef00000n, end: 0xffffffffffffn },
      ],
    });
  });
});

describe('vfio_irq_set', () => {
  it('encodes eventfd, bool and none data with argsz and flags', () => {
    using efd = EventFd.create();
    const e = encodeIrqSet({
      index: 2,
      action: 'trigger',
      start: 1,
      count: 2,
      data: { type: 'eventfd', eventfds: [efd, null] },
    });
    expect(efd.fd).toBeLessThan(256);
    expect([...e]).toEqual([
      28,
      0,
      0,
      0,
      0x24,
      0,
      0,
      0,
      2,
      0,
      0,
      0,
      1,
      0,
      0,
      0,
      2,
      0,
      0,
      0,
      efd.fd,
      0,
      0,
      0,
      0xff,
      0xff,
      0xff,
      0xff,
    ]);
    const b = encodeIrqSet({
      index: 0,
      action: 'unmask',
      start: 0,
      count: 1,
      data: { type: 'bool', values: [true] },
    });
    expect(b.readUInt32LE(0)).toBe(21);
    expect(b.readUInt32LE(4)).toBe(0x12);
    const n = encodeIrqSet({ index: 2, action: 'trigger', start: 0, count: 0, data: { type: 'none' } });
    expect(n.readUInt32LE(4)).toBe(0x21);
  });
});
