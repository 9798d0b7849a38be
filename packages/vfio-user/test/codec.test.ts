import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  decodeMessage,
  encodeMessage,
  parseCapabilities,
  VFIO_USER_REGION_READ,
  VfioUserProtocolError,
} from '../src/index.js';
import { decodeRegionCapabilities, encodeRegionCapabilities } from '../src/region-caps.js';

interface Captured {
  dir: string;
  msg_id: number;
  cmd: number;
  cmd_name: string;
  msg_size: number;
  flags: number;
  nfds: number;
  header_hex: string;
  payload_hex: string;
  payload_truncated: boolean;
}

function load(name: string): Captured[] {
  return readFileSync(new URL(`./fixtures/${name}`, import.meta.url), 'utf8')
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as Captured);
}

const captures = ['wire-src.jsonl', 'wire-dst.jsonl', 'wire-probe-gpio.jsonl'];

describe('codec against the libvfio-user captures', () => {
  for (const file of captures) {
    it(`decodes and re-encodes every whole message of ${file} byte for byte`, () => {
      const messages = load(file);
      let checked = 0;
      let truncated = 0;
      for (const m of messages) {
        if (m.payload_truncated) {
          truncated++;
          continue;
        }
        const bytes = Buffer.from(m.header_hex + m.payload_hex, 'hex');
        expect(bytes.byteLength, `${m.cmd_name} id ${m.msg_id}`).toBe(m.msg_size);
        // The probe deliberately sends malformed requests; those must fail to decode, with a typed error.
        let decoded: ReturnType<typeof decodeMessage>;
        try {
          decoded = decodeMessage(bytes);
        } catch (err) {
          expect(err, `${m.dir} ${m.cmd_name} id ${m.msg_id}`).toBeInstanceOf(VfioUserProtocolError);
          expect(file).toBe('wire-probe-gpio.jsonl');
          expect(m.dir).toBe('C->S');
          continue;
        }
        expect(decoded.id).toBe(m.msg_id);
        expect(decoded.command).toBe(m.cmd);
        expect(
          Buffer.from(encodeMessage(decoded)).toString('hex'),
          `${m.dir} ${m.cmd_name} id ${m.msg_id}`,
        ).toBe(bytes.toString('hex'));
        checked++;
      }
      expect(checked).toBeGreaterThan(messages.length * 0.8);
      if (file === 'wire-src.jsonl') expect(truncated).toBe(12);
    });
  }

  it('finds the malformed probes (and only those) invalid', () => {
    const refused = load('wire-probe-gpio.jsonl').filter((m) => {
      try {
        decodeMessage(Buffer.from(m.header_hex + m.payload_hex, 'hex'));
        return false;
      } catch {
        return true;
      }
    });
    // The payload-less DEVICE_GET_INFO and the REGION_WRITE whose data is shorter than count.
    expect(refused.map((m) => `${m.cmd_name}:${m.msg_id.toString(16)}`)).toEqual([
      'REGION_WRITE:120',
      'DEVICE_GET_INFO:129',
    ]);
  });

  it('decodes the sparse-mmap capability of region 1 and encodes the same chain', () => {
    const m = load('wire-src.jsonl').find((x) => x.dir === 'S->C' && x.cmd === 5 && x.nfds === 1)!;
    const decoded = decodeMessage(Buffer.from(m.header_hex + m.payload_hex, 'hex'));
    if (decoded.body.kind !== 'region-info') throw new Error('not region info');
    const caps = decodeRegionCapabilities(decoded.body);
    expect(caps).toEqual([
      {
        kind: 'sparse-mmap',
        id: 1,
        version: 1,
        areas: [
          { offset: 0, size: 0x1000 },
          { offset: 0x2000, size: 0x1000 },
        ],
      },
    ]);
    const { tail, argsz } = encodeRegionCapabilities(caps);
    expect(argsz).toBe(decoded.body.argsz);
    expect(Buffer.from(tail).toString('hex')).toBe(Buffer.from(decoded.body.tail).toString('hex'));
  });

  it("parses QEMU 11.1's and libvfio-user's VERSION capabilities", () => {
    const qemu = parseCapabilities(
      '{"capabilities":{"pgsizes":4096,"max_msg_fds":16,"max_dma_maps":65535,"max_data_xfer_size":1048576,"migration":{"max_bitmap_size":268435456,"pgsize":4096},"write_multiple":true}}',
    );
    expect(qemu).toMatchObject({
      maxMsgFds: 16,
      maxDataXferSize: 1048576,
      maxDmaMaps: 65535,
      writeMultiple: true,
    });
    expect(
      parseCapabilities(
        '{ "capabilities": { "max_msg_fds": 8, "max_data_xfer_size": 1048576, "migration": { "pgsize": 4096 } } }',
      ),
    ).toMatchObject({ maxMsgFds: 8, migration: { pgsize: 4096, maxBitmapSize: null } });
    expect(() => parseCapabilities('{"capabilities":{"max_msg_fds":-1}}')).toThrow(/max_msg_fds/);
    expect(() => parseCapabilities('{"capabilities":[]}')).toThrow(/object/);
    expect(() => parseCapabilities('{nope')).toThrow(/not JSON/);
    expect(parseCapabilities('{"capabilities":{"future_key":[1,2]}}').maxMsgFds).toBe(1);
  });

  it('refuses framing errors as fatal and content errors as answerable', () => {
    const header = (size: number, flags: number) => {
      const b = Buffer.alloc(Math.max(size, 16));
      b.writeUInt16LE(7, 0);
      b.writeUInt16LE(VFIO_USER_REGION_READ, 2);
      b.writeUInt32LE(size, 4);
      b.writeUInt32LE(flags, 8);
      return b;
    };
    expect(() => decodeMessage(header(8, 0).subarray(0, 16))).toThrow(
      expect.objectContaining({ fatal: true }),
    );
    expect(() => decodeMessage(header(16, 3))).toThrow(expect.objectContaining({ fatal: true }));
    expect(() => decodeMessage(header(32, 0x100))).toThrow(
      expect.objectContaining({ fatal: false, errno: 22, code: 'ERR_VFIO_USER_MALFORMED' }),
    );
    expect(() => decodeMessage(header(20, 0))).toThrow(expect.objectContaining({ fatal: false }));
  });
});

describe('codec fuzz (fast-check)', () => {
  const validSamples = captures.flatMap(load).filter((m) => !m.payload_truncated);

  it('never throws anything but a VfioUserProtocolError on random bytes, and round-trips what it accepts', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 16, maxLength: 300 }),
        fc.nat(20),
        fc.nat(4),
        (raw, cmd, type) => {
          const bytes = Buffer.from(raw);
          bytes.writeUInt32LE(bytes.byteLength, 4);
          bytes.writeUInt16LE(cmd, 2);
          bytes.writeUInt32LE(type & 1 ? 1 : type === 2 ? 0x21 : 0, 8);
          try {
            const m = decodeMessage(bytes);
            expect(Buffer.from(encodeMessage(m)).equals(bytes)).toBe(true);
          } catch (err) {
            if (!(err instanceof VfioUserProtocolError)) throw err;
          }
        },
      ),
      { numRuns: 20_000 },
    );
  });

  it('mutated captured messages either decode and round-trip or fail with a typed error', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...validSamples),
        fc.array(fc.tuple(fc.nat(), fc.nat(255)), { maxLength: 6 }),
        fc.integer({ min: -24, max: 24 }),
        (sample, flips, resize) => {
          const bytes = Buffer.from(sample.header_hex + sample.payload_hex, 'hex');
          for (const [at, value] of flips) bytes[at % bytes.byteLength] = value;
          const size = Math.max(0, bytes.byteLength + resize);
          const sized = Buffer.alloc(size);
          bytes.copy(sized, 0, 0, Math.min(size, bytes.byteLength));
          try {
            const m = decodeMessage(sized);
            expect(Buffer.from(encodeMessage(m)).equals(sized)).toBe(true);
          } catch (err) {
            if (!(err instanceof VfioUserProtocolError)) throw err;
          }
        },
      ),
      { numRuns: 20_000 },
    );
  });
});
