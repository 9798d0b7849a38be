/**
 * Property-based fuzz of a live server: random and mutated messages, random
 * fd counts, truncated bodies and lying sizes, in batches on one connection
 * (reconnecting when the server closes it, and now and then hanging up
 * abruptly). Every batch ends with a sentinel read that must be answered (no
 * hang, the stream still in step) unless the server closed the connection,
 * after which a new client must be served. At the end no fd or mapping may
 * be left.
 *
 * Two devices: a model (sim:nvme) and a kernel-like one (KernelServedDevice
 * over FakeKernelDevice), whose messages add DMA_MAPs carrying real memfds
 * (sized right, too small, offsets past the end, huge or unaligned sizes,
 * overlaps, IOVAs in and out of the fake IOMMU's range), DMA_UNMAPs of
 * partial and unknown ranges, and SET_IRQS with eventfds, while the fake
 * IOMMU now and then refuses a map (to be rolled back). After each of its
 * clients, the recording IOMMU must balance (every map unmapped exactly,
 * while the memory was still mapped, nothing else unmapped) and the device
 * hold none of the client's eventfds.
 *
 * Cases: VFIO_USER_FUZZ_CASES for the model (default 100000; `pnpm fuzz:long`
 * runs 1000000), a fifth of it for the kernel-like device; VFIO_USER_FUZZ_SEED
 * and VFIO_USER_FUZZ_PATH replay a failure fast-check reported (with -t to
 * pick the device).
 */
import { join } from 'node:path';
import { openSimDevice } from '@vfio-ts/plugin-host';
import { resourceCounts, settle } from '@vfio-ts/test-support';
import { EventFd, type VfioDeviceIo } from '@vfio-ts/vfio-sys';
import * as libc from '@vfio-ts/vfio-sys/libc';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { command, encodeMessage, type VfioUserBody } from '../src/codec.js';
import { KernelServedDevice, VfioUserServer } from '../src/index.js';
import { commandName } from '../src/protocol.js';
import { FakeKernelDevice, fakeOpened, type IommuRecord } from './fake-kernel-device.js';
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

// Too small for many maps (refused: past the end of the file), or big enough.
const MEMFD_SIZES = [0, 0x1000, 0x4000, 0x10000, 0x20000, 0x20000] as const;
/** DMA_MAP/DMA_UNMAP from small pools, so maps overlap, unmaps match, and IOVAs fall in and out of [0x1000, 0xffffffff]. */
/** Mostly (8 in 11) `usual`, sometimes `odd`, now and then any u64 (a weighted oneof nested this deep favours its first arm). */
function pool(usual: bigint[], odd: bigint[]): fc.Arbitrary<bigint> {
  return fc
    .tuple(fc.nat(10), fc.constantFrom(...usual), fc.constantFrom(...odd), u64)
    .map(([k, a, b, any]) => (k < 8 ? a : k < 10 ? b : any));
}
const IOVA = pool(
  [0x1000n, 0x2000n, 0x3000n, 0x8000n, 0xffff_e000n],
  [0n, 0x1800n, 0xffff_f000n, 0x1_0000_0000n, (1n << 64n) - 0x1000n],
);
const SIZE = pool([0x1000n, 0x2000n, 0x4000n], [0x1800n, 0n, 1n << 40n, 1n << 53n, (1n << 64n) - 1n]);
const OFFSET = pool([0n, 0x1000n, 0x3000n, 0x10000n], [0x800n, 1n << 40n, (1n << 64n) - 0x1000n]);
const pooledDma: fc.Arbitrary<[number, VfioUserBody]> = fc.oneof(
  fc.tuple(
    fc.constant(2),
    fc.record({
      kind: fc.constant('dma-map' as const),
      argsz: fc.oneof({ arbitrary: fc.constant(32), weight: 20 }, { arbitrary: fc.constant(24), weight: 1 }),
      flags: fc.oneof({ arbitrary: fc.constantFrom(1, 3), weight: 20 }, { arbitrary: fc.nat(7), weight: 2 }),
      offset: OFFSET,
      addr: IOVA,
      size: SIZE,
    }),
  ),
  fc.tuple(
    fc.constant(3),
    fc.record({
      kind: fc.constant('dma-unmap' as const),
      argsz: fc.constant(24),
      flags: fc.oneof(
        { arbitrary: fc.constant(0), weight: 10 },
        { arbitrary: fc.constantFrom(1, 2), weight: 1 },
      ),
      addr: IOVA,
      size: SIZE,
    }),
  ),
);

/**
 * One fuzzed message: encoded, then perhaps mutated; how many fds go with it
 * (`memfd`: a memfd of that many bytes first, for a subject that maps client
 * memory); whether to cut it short.
 */
interface Fuzzed {
  readonly item: [number, VfioUserBody];
  /** The header's flags. */
  readonly flags: number;
  /** Bytes past the header overwritten: [where, value]. */
  readonly flips: readonly [number, number][];
  /** Added to the header's size. */
  readonly lie: number;
  /** A memfd of this many bytes goes first with the message's fds. */
  readonly memfd: number | null;
  /** How many eventfds go with it. */
  readonly fds: number;
}

function messageOf(item: fc.Arbitrary<[number, VfioUserBody]>, memfds: boolean): fc.Arbitrary<Fuzzed> {
  const flips = fc.array(fc.tuple(fc.nat(), fc.nat(255)), { maxLength: 3 });
  return fc.record({
    item,
    // With memfd maps, most messages are plain commands (a reply, error or unknown flag stops them early).
    flags: fc.oneof(
      { arbitrary: fc.constant(0), weight: memfds ? 80 : 0 },
      { arbitrary: fc.constantFrom(0, 0x10, 1, 0x20, 0x40), weight: 40 },
      { arbitrary: fc.constant(2), weight: 1 },
    ),
    // With memfd maps, most messages go unflipped so that well-formed maps reach the IOMMU.
    flips: memfds
      ? fc.oneof(
          { arbitrary: fc.constant<[number, number][]>([]), weight: 3 },
          { arbitrary: flips, weight: 1 },
        )
      : flips,
    // Framing breakers (a lying size, more fds than allowed) are rare, so most batches run to the sentinel.
    lie: fc.oneof(
      { arbitrary: fc.constant(0), weight: 80 },
      { arbitrary: fc.constantFrom(-4, 4, 1 << 24), weight: 1 },
    ),
    memfd: memfds ? fc.option(fc.constantFrom(...MEMFD_SIZES), { freq: 3 }) : fc.constant(null),
    fds: fc.oneof(
      { arbitrary: fc.constant(0), weight: 40 },
      { arbitrary: fc.constantFrom(1, 2, 3), weight: 8 },
      { arbitrary: fc.constant(20), weight: 1 },
    ),
  });
}

const modelMessage = messageOf(body, false);
const kernelMessage: fc.Arbitrary<Fuzzed> = fc.oneof(
  { arbitrary: messageOf(fc.oneof(body, pooledDma), true), weight: 3 },
  // Well-formed DMA_MAP/DMA_UNMAP from the pools, a memfd with each: these reach the IOMMU.
  {
    arbitrary: fc.record({
      item: pooledDma,
      flags: fc.constant(0),
      flips: fc.constant([] as [number, number][]),
      lie: fc.constant(0),
      memfd: fc.constantFrom(...MEMFD_SIZES),
      fds: fc.constant(0),
    }),
    weight: 2,
  },
  // Well-formed SET_IRQS: eventfds for a few vectors (some past the index's count), or the index off.
  {
    arbitrary: fc
      .record({ index: fc.nat(4), start: fc.nat(4), count: fc.nat(3), off: fc.boolean() })
      .map(({ index, start, count, off }) => ({
        item: [
          8,
          {
            kind: 'set-irqs',
            argsz: 20,
            // VFIO_IRQ_SET_ACTION_TRIGGER with DATA_NONE and count 0 (off) or DATA_EVENTFD.
            flags: off ? 0x21 : 0x24,
            index,
            start: off ? 0 : start,
            count: off ? 0 : count,
            data: new Uint8Array(0),
          },
        ] as [number, VfioUserBody],
        flags: 0,
        flips: [] as [number, number][],
        lie: 0,
        memfd: null,
        fds: off ? 0 : count,
      })),
    weight: 1,
  },
);

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

/** A device the fuzz serves. */
interface Subject {
  readonly name: string;
  readonly cases: number;
  readonly message: fc.Arbitrary<Fuzzed>;
  /** `afterClient` checks what a client left behind once the server let it go; returns how many IOMMU maps it made. */
  open(): {
    device: VfioDeviceIo;
    afterClient: (() => number) | null;
    /** Makes the IOMMU refuse its next map with this errno (the server must roll the map back). */
    refuseNextMap: ((errno: number) => void) | null;
    close(): void;
  };
}

const SUBJECTS: Subject[] = [
  {
    name: 'a model (sim:nvme)',
    cases: CASES,
    message: modelMessage,
    open() {
      const device = openSimDevice('sim:nvme');
      return { device, afterClient: null, refuseNextMap: null, close: () => device.close() };
    },
  },
  {
    // Fewer cases: each memfd map is an mmap, an IOMMU map and a /proc/self/maps read at its unmap.
    name: 'a kernel-like device (KernelServedDevice over FakeKernelDevice)',
    cases: Math.ceil(CASES / 5),
    message: kernelMessage,
    open() {
      const kernel = new FakeKernelDevice();
      const fake = fakeOpened(kernel);
      const device = new KernelServedDevice(fake.opened);
      const afterClient = () => {
        // The session disabled every IRQ index it set: the "kernel" holds none of the client's eventfds.
        const held = [...kernel.held].filter(([, table]) => table.some((e) => e));
        if (held.length > 0)
          throw new Error(`the device still holds eventfds on IRQ ${held.map(([i]) => i)}`);
        if (device.iommuMapCount !== 0)
          throw new Error(`${device.iommuMapCount} maps left in KernelServedDevice`);
        return checkIommuEmpty(fake.iommu);
      };
      const refuseNextMap = (errno: number) => {
        fake.refuseNext = { errno };
      };
      return { device, afterClient, refuseNextMap, close: () => device.close() };
    },
  },
];

/**
 * After a client left: every IOMMU map was unmapped, exactly (same IOVA and
 * size), while the server still had the memory mapped, and nothing was
 * unmapped that was not mapped or mapped over a live map. Clears the record;
 * returns how many maps it held.
 */
function checkIommuEmpty(records: IommuRecord[]): number {
  const live = new Map<bigint, bigint>();
  let maps = 0;
  for (const r of records) {
    const what = `${r.op} [0x${r.iova.toString(16)}, +0x${r.size.toString(16)})`;
    if (r.op === 'map') {
      maps++;
      for (const [iova, size] of live)
        if (r.iova < iova + size && iova < r.iova + r.size) throw new Error(`${what} overlaps a live map`);
      live.set(r.iova, r.size);
    } else {
      if (live.get(r.iova) !== r.size) throw new Error(`${what} was not mapped`);
      if (r.stillMapped !== true) throw new Error(`${what} after the server unmapped the memory`);
      live.delete(r.iova);
    }
  }
  if (live.size > 0) throw new Error(`${live.size} IOMMU maps left after the client left`);
  records.length = 0;
  return maps;
}

function memfdOf(size: number): number {
  const fd = libc.sysMemfdCreate('fuzz-dma');
  libc.sysFtruncate(fd, size);
  return fd;
}

describe.each(SUBJECTS)('live server fuzz of $name', (subject) => {
  const CASES = subject.cases;
  const tmp = tempDir();
  const { device, afterClient, refuseNextMap, close } = subject.open();
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
    close();
    tmp[Symbol.dispose]();
  });

  it(
    `survives ${CASES} fuzzed messages: every batch answered or cleanly closed, no leak${afterClient ? ', the IOMMU empty after each client' : ''}`,
    async () => {
      await settle();
      const before = resourceCounts();
      let peer: RawPeer | null = null;
      let closes = 0;
      let hangups = 0;
      let swallowed = 0;
      let answered = 0;
      let iommuMaps = 0;
      const outcomes = new Map<string, number>(); // replies by command and errno
      const connect = async () => {
        peer = new RawPeer(server.socketPath, 32);
        const r = await peer.ask(versionRequest(1));
        expect(r.errno).toBe(0);
        return peer;
      };
      // The client has gone: once the server has let it go, its IOMMU maps must all be gone too.
      const left = async (p: RawPeer) => {
        p.close();
        peer = null;
        await server.idle();
        if (afterClient) iommuMaps += afterClient();
      };
      const batchOf = fc.record({
        messages: fc.array(subject.message, { minLength: PER_BATCH, maxLength: PER_BATCH }),
        // An abrupt disconnect: the client closes after its messages, with maps and eventfds in place.
        hangup: fc.oneof(
          { arbitrary: fc.constant(false), weight: 30 },
          { arbitrary: fc.constant(true), weight: 1 },
        ),
        // The IOMMU refuses the next map (ENOMEM, EFAULT, EEXIST, EINVAL as the kernel's MAP_DMA can).
        refuse: fc.oneof(
          { arbitrary: fc.constant(null), weight: 6 },
          { arbitrary: fc.constantFrom(12, 14, 17, 22), weight: 1 },
        ),
      });
      await fc.assert(
        fc.asyncProperty(batchOf, async ({ messages, hangup, refuse }) => {
          const p = peer ?? (await connect());
          if (refuse !== null) refuseNextMap?.(refuse);
          for (const [i, m] of messages.entries()) {
            // A memfd goes with DMA_MAPs (with anything else it is a stray fd, as are the eventfds).
            const memfd = m.memfd !== null && (m.item[0] === 2 || m.fds > 0) ? memfdOf(m.memfd) : null;
            const fds: number[] = memfd === null ? [] : [memfd];
            const eventfds: EventFd[] = Array.from({ length: m.fds }, () => EventFd.create());
            fds.push(...eventfds.map((e) => e.fd));
            try {
              p.send(encode(m, i + 2), fds);
            } catch {
              // The server already hung up on an earlier message of this batch.
            } finally {
              for (const e of eventfds) e.close();
              if (memfd !== null) libc.sysClose(memfd);
            }
          }
          if (hangup) {
            hangups++;
            await left(p);
            return;
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
                await left(p);
                return;
              }
              for (const fd of r.fds) libc.sysClose(fd);
              answered++;
              const outcome = `${commandName(r.header.command)} ${r.header.flags & 0x20 ? `errno ${r.header.error}` : 'ok'}`;
              outcomes.set(outcome, (outcomes.get(outcome) ?? 0) + 1);
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
      if (peer) await left(peer);
      await settle();
      expect(resourceCounts()).toEqual(before);
      console.log(
        `${subject.name}: answered ${answered}, closes ${closes}, hangups ${hangups}, sentinels swallowed ${swallowed}${afterClient ? `, IOMMU maps ${iommuMaps}` : ''}`,
        [...reasons].sort((a, b) => b[1] - a[1]).slice(0, 12),
        [...outcomes].sort((a, b) => b[1] - a[1]).slice(0, 16),
      );
      const replay = process.env.VFIO_USER_FUZZ_SEED !== undefined; // one case, not a run
      if (!replay) expect(answered).toBeGreaterThan(CASES / 4);
      if (!replay) expect(closes).toBeGreaterThan(0);
      // The fuzz reached the IOMMU path (fd-backed maps in range went in and came out again).
      if (!replay && afterClient) expect(iommuMaps).toBeGreaterThan(CASES / 100);
      // Still serving.
      const last = await connect();
      last.close();
      await server.idle();
    },
    Math.max(120_000, CASES * 2),
  ); // up to 2 ms a case: a loaded machine runs 100k in 20-40 s
});
