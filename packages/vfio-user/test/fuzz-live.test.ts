/**
 * Property-based fuzz of a live server: random and mutated messages, random
 * fd counts, truncated bodies and lying sizes, in batches on one connection
 * (reconnecting when the server closes it). Every batch ends with a sentinel
 * read that must be answered (no hang, the stream still in step) unless the
 * server closed the connection, after which a new client must be served.
 * At the end no fd or mapping may be left. Cases: VFIO_USER_FUZZ_CASES
 * (default 100000; `pnpm fuzz:long` runs 1000000); VFIO_USER_FUZZ_SEED and
 * VFIO_USER_FUZZ_PATH replay a failure fast-check reported.
 */
import { join } from 'node:path';
import { openSimDevice } from '@vfio-ts/plugin-host';
import { resourceCounts, settle } from '@vfio-ts/test-support';
import { EventFd } from '@vfio-ts/vfio-sys';
import * as libc from '@vfio-ts/vfio-sys/libc';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { command, encodeMessage, type VfioUserBody } from '../src/codec.js';
import { VfioUserServer } from '../src/index.js';
import { RawPeer, tempDir, versionRequest } from './helpers.js';

const CASES = Number(process.env.VFIO_USER_FUZZ_CASES ?? 100_000);
const PER_BATCH = 10;
const SENTINEL = 0xfffe;

const u32 = fc.oneof(fc.constantFrom(0, 1, 4, 7, 8, 16, 32, 0xffffffff), fc.nat());
const u64 = fc.oneof(
  fc.constantFrom(0n, 1n, 0x1000n, 0x100000n, (1n << 64n) - 1n),
  fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }),
);
const bytes = (max: number) => fc.uint8Array({ maxLength: max });

const body: fc.Arbitrary<[number, VfioUserBody]> = fc.oneof(
  fc.tuple(
    fc.constant(1),
    fc.record({
      kind: fc.constant('version' as const),
      major: fc.nat(2),
      minor: fc.nat(3),
      capabilities: fc.option(fc.oneof(fc.json(), fc.constant('{"capabilities":{"max_msg_fds":-1}}'))),
    }),
  ),
  fc.tuple(
    fc.constant(2),
    fc.record({
      kind: fc.constant('dma-map' as const),
      argsz: fc.constantFrom(32, 24, 40),
      flags: fc.nat(7),
      offset: u64,
      addr: u64,
      size: u64,
    }),
  ),
  fc.tuple(
    fc.constant(3),
    fc.record({
      kind: fc.constant('dma-unmap' as const),
      argsz: fc.constantFrom(24, 16),
      flags: fc.nat(3),
      addr: u64,
      size: u64,
    }),
  ),
  fc.tuple(
    fc.constant(4),
    fc.record({
      kind: fc.constant('device-info' as const),
      argsz: u32,
      flags: u32,
      numRegions: u32,
      numIrqs: u32,
    }),
  ),
  fc.tuple(
    fc.constant(5),
    fc.record({
      kind: fc.constant('region-info' as const),
      argsz: fc.constantFrom(0, 32, 40, 80, 4096),
      flags: u32,
      index: fc.nat(12),
      capOffset: u32,
      size: u64,
      offset: u64,
      tail: bytes(64),
    }),
  ),
  fc.tuple(
    fc.constant(6),
    fc.record({
      kind: fc.constant('region-io-fds' as const),
      argsz: u32,
      flags: fc.nat(2),
      index: fc.nat(10),
      count: fc.nat(2),
      subRegions: fc.constant([]),
    }),
  ),
  fc.tuple(
    fc.constant(7),
    fc.record({
      kind: fc.constant('irq-info' as const),
      argsz: u32,
      flags: u32,
      index: fc.nat(6),
      count: u32,
    }),
  ),
  fc.tuple(
    fc.constant(8),
    fc.record({
      kind: fc.constant('set-irqs' as const),
      argsz: fc.constantFrom(20, 21, 24),
      flags: fc.nat(0x3f),
      index: fc.nat(5),
      start: fc.nat(70),
      count: fc.nat(70),
      data: bytes(8),
    }),
  ),
  fc.tuple(
    fc.constantFrom(9, 10),
    fc.record({
      kind: fc.constant('region-rw' as const),
      offset: fc.oneof(fc.bigInt({ min: 0n, max: 0x5000n }), u64),
      region: fc.nat(9),
      count: fc.constantFrom(0, 1, 2, 3, 4, 8, 16, 64, 4096),
      data: bytes(16),
    }),
  ),
  fc.tuple(
    fc.constantFrom(11, 12),
    fc.record({
      kind: fc.constant('dma-rw' as const),
      addr: u64,
      count: fc.bigInt({ min: 0n, max: 64n }),
      data: bytes(16),
    }),
  ),
  fc.tuple(fc.constant(13), fc.constant({ kind: 'empty' as const })),
  fc.tuple(fc.nat(40), fc.record({ kind: fc.constant('raw' as const), bytes: bytes(48) })),
);

/** One fuzzed message: encoded, then perhaps mutated; how many fds go with it; whether to cut it short. */
const message = fc.record({
  item: body,
  flags: fc.oneof(
    { arbitrary: fc.constantFrom(0, 0x10, 1, 0x20, 0x40), weight: 40 },
    { arbitrary: fc.constant(2), weight: 1 },
  ),
  flips: fc.array(fc.tuple(fc.nat(), fc.nat(255)), { maxLength: 3 }),
  // Framing breakers (a lying size, more fds than allowed) are rare, so most batches run to the sentinel.
  lie: fc.oneof(
    { arbitrary: fc.constant(0), weight: 80 },
    { arbitrary: fc.constantFrom(-4, 4, 1 << 24), weight: 1 },
  ),
  fds: fc.oneof(
    { arbitrary: fc.constant(0), weight: 40 },
    { arbitrary: fc.constantFrom(1, 2, 3), weight: 8 },
    { arbitrary: fc.constant(20), weight: 1 },
  ),
});

type Fuzzed = typeof message extends fc.Arbitrary<infer T> ? T : never;

function encode(m: Fuzzed, id: number): Uint8Array {
  const [cmd, b] = m.item;
  let out: Uint8Array;
  try {
    out = encodeMessage({ ...command(id, cmd, b), flags: m.flags });
  } catch {
    out = encodeMessage(command(id, cmd, { kind: 'raw', bytes: new Uint8Array(8) }));
  }
  for (const [at, v] of m.flips) if (out.byteLength > 16) out[16 + (at % (out.byteLength - 16))] = v;
  if (m.lie !== 0) new DataView(out.buffer).setUint32(4, Math.max(0, out.byteLength + m.lie), true);
  return out;
}

describe('live server fuzz', () => {
  const tmp = tempDir();
  const device = openSimDevice('sim:nvme');
  // A lying size leaves a message half-received: the server gives up on it after partialTimeoutMs.
  const server = VfioUserServer.listen(device, join(tmp.dir, 'fuzz.sock'), {
    partialTimeoutMs: 30,
    log: (line) => {
      const reason = line.replace(/^client pid \d+:? ?/, '').replace(/0x[0-9a-f]+|\d+/g, 'N');
      reasons.set(reason, (reasons.get(reason) ?? 0) + 1);
    },
  });
  const reasons = new Map<string, number>();
  afterAll(() => {
    server.close();
    device.close();
    tmp[Symbol.dispose]();
  });

  it(
    `survives ${CASES} fuzzed messages: every batch answered or cleanly closed, no leak`,
    async () => {
      await settle();
      const before = resourceCounts();
      let peer: RawPeer | null = null;
      let closes = 0;
      let swallowed = 0;
      let answered = 0;
      const connect = async () => {
        peer = new RawPeer(server.socketPath, 32);
        const r = await peer.ask(versionRequest(1));
        expect(r.errno).toBe(0);
        return peer;
      };
      await fc.assert(
        fc.asyncProperty(fc.array(message, { minLength: PER_BATCH, maxLength: PER_BATCH }), async (batch) => {
          const p = peer ?? (await connect());
          for (const [i, m] of batch.entries()) {
            const fds: EventFd[] = Array.from({ length: m.fds }, () => EventFd.create());
            try {
              p.send(
                encode(m, i + 2),
                fds.map((e) => e.fd),
              );
            } catch {
              // The server already hung up on an earlier message of this batch.
            } finally {
              for (const e of fds) e.close();
            }
          }
          // A lying size can swallow the sentinel whole (the server then answers what it parsed, under
          // ids it read from our bytes): when no answer comes, another sentinel follows. A server
          // waiting for the rest of a message closes after partialTimeoutMs instead.
          for (let attempt = 0; attempt < 5; attempt++) {
            try {
              p.send(
                command(SENTINEL, 9, {
                  kind: 'region-rw',
                  offset: 0n,
                  region: 7,
                  count: 2,
                  data: new Uint8Array(0),
                }),
              );
            } catch {}
            for (;;) {
              const r = await p.next(attempt === 0 ? 2000 : 500);
              if (r === 'timeout') break;
              if (r === 'closed') {
                closes++;
                p.close();
                peer = null;
                await server.idle();
                return;
              }
              for (const fd of r.fds) libc.sysClose(fd);
              answered++;
              if (r.header.id === SENTINEL && r.header.command === 9 && (r.header.flags & 0x20) === 0) return;
              expect(r.header.flags & 0xf).toBe(1); // replies only (we never map memory fd-less, so no DMA requests)
            }
            swallowed++;
          }
          throw new Error('the server neither answered five sentinels nor closed the connection');
        }),
        {
          numRuns: Math.ceil(CASES / PER_BATCH),
          // Replays a reported failure: VFIO_USER_FUZZ_SEED and VFIO_USER_FUZZ_PATH from fast-check's report.
          ...(process.env.VFIO_USER_FUZZ_SEED
            ? { seed: Number(process.env.VFIO_USER_FUZZ_SEED), path: process.env.VFIO_USER_FUZZ_PATH ?? '0' }
            : {}),
        },
      );
      (peer as RawPeer | null)?.close();
      await server.idle();
      await settle();
      expect(resourceCounts()).toEqual(before);
      console.log(
        `answered ${answered}, closes ${closes}, sentinels swallowed ${swallowed}`,
        [...reasons].sort((a, b) => b[1] - a[1]).slice(0, 12),
      );
      const replay = process.env.VFIO_USER_FUZZ_SEED !== undefined; // one case, not a run
      if (!replay) expect(answered).toBeGreaterThan(CASES / 4);
      if (!replay) expect(closes).toBeGreaterThan(0);
      // Still serving.
      const last = await connect();
      last.close();
    },
    Math.max(120_000, CASES * 2),
  ); // up to 2 ms a case: a loaded machine runs 100k in 20-40 s
});
