/**
 * sim:nvme as an NVMe controller, driven the way Linux's nvme driver drives
 * it: BAR0 written through a mapping (so only the controller's poll sees it),
 * host memory reached by DMA, completions read by their phase tag, MSI-X
 * vectors counted on eventfds. The poll runs on vitest's fake timers.
 */
import { resourceCounts, traceLines } from '@vfio-ts/test-support';
import { EventFd } from '@vfio-ts/vfio-sys';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { NVME_IDENTITY, NVME_STATUS_DATA_TRANSFER_ERROR, NVME_STATUS_DNR } from '../src/index.js';
import { ascii, HOST_BASE, HOST_BYTES, NvmeTestHost } from './nvme-driver.js';

beforeEach(() => {
  vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
});
afterEach(() => {
  vi.useRealTimers();
});

const IDENTIFY = 0x06;
const u16 = (d: Uint8Array, at: number) => d[at]! | (d[at + 1]! << 8);
const u32 = (d: Uint8Array, at: number) => new DataView(d.buffer, d.byteOffset).getUint32(at, true);
const u64 = (d: Uint8Array, at: number) => new DataView(d.buffer, d.byteOffset).getBigUint64(at, true);

describe('sim:nvme: enabling the controller through the mapping', () => {
  it('CC.EN with valid admin queues sets CSTS.RDY at the next poll, not before', () => {
    using host = new NvmeTestHost();
    const asq = host.alloc(4096);
    const acq = host.alloc(4096);
    host.write(0x24, 0x001f001f);
    host.write(0x28, Number(asq & 0xffffffffn));
    host.write(0x2c, Number(asq >> 32n));
    host.write(0x30, Number(acq & 0xffffffffn));
    host.write(0x34, Number(acq >> 32n));
    host.write(0x14, 0x00460001);
    expect(host.reg(0x1c)).toBe(0); // the mapping wrote memory; no handler ran
    host.poll();
    expect(host.reg(0x1c)).toBe(1);
    expect(host.dev.regionRead(0, 0x1c, 4)).toBe(1);
  });

  it('a slow-path CC write acts at once', () => {
    using host = new NvmeTestHost();
    const asq = host.alloc(4096);
    host.dev.regionWrite(0, 0x24, 0x00030003, 4);
    host.dev.regionWrite(0, 0x28, Number(asq & 0xffffffffn), 4);
    host.dev.regionWrite(0, 0x2c, Number(asq >> 32n), 4);
    host.dev.regionWrite(0, 0x30, Number(asq & 0xffffffffn) + 0x1000, 4);
    host.dev.regionWrite(0, 0x34, Number(asq >> 32n), 4);
    host.dev.regionWrite(0, 0x14, 0x00460001, 4);
    expect(host.dev.regionRead(0, 0x1c, 4)).toBe(1);
    host.dev.regionWrite(0, 0x14, 0x00460000, 4);
    expect(host.dev.regionRead(0, 0x1c, 4)).toBe(0);
  });

  it.each([
    ['AQA 0 (admin queues of one entry)', { aqa: 0 }],
    ['an unaligned ASQ', { asq: 0x1_0000_0200n }],
    ['an unaligned ACQ', { acq: 0x1_0000_0010n }],
    ['CC.MPS beyond CAP.MPSMAX (64 KiB)', { cc: 0x00460001 | (5 << 7) }],
    ['CC.IOSQES 0', { cc: 0x00400001 }],
    ['CC.IOCQES 5', { cc: 0x00560001 }],
    ['CC.CSS 7 (admin only, not in CAP.CSS)', { cc: 0x00460071 }],
  ])(
    'refuses to enable with %s: CSTS.CFS, not RDY',
    (_what, bad: { aqa?: number; asq?: bigint; acq?: bigint; cc?: number }) => {
      using host = new NvmeTestHost();
      host.write(0x24, bad.aqa ?? 0x001f001f);
      const asq = bad.asq ?? host.alloc(4096);
      const acq = bad.acq ?? host.alloc(4096);
      host.write(0x28, Number(asq & 0xffffffffn));
      host.write(0x2c, Number(asq >> 32n));
      host.write(0x30, Number(acq & 0xffffffffn));
      host.write(0x34, Number(acq >> 32n));
      host.write(0x14, bad.cc ?? 0x00460001);
      host.poll();
      expect(host.reg(0x1c)).toBe(2);
      // Disabling clears the failure; a valid enable then works.
      host.write(0x14, 0);
      host.poll();
      expect(host.reg(0x1c)).toBe(0);
      expect(host.enable()).toBe(1);
    },
  );

  it('CC.SHN reports shutdown complete (CSTS.SHST 2); disabling drops every queue', () => {
    using host = new NvmeTestHost();
    host.enable();
    host.adminData({ opcode: 0x09, cdw10: 0x07, cdw11: 0 });
    host.createIoQueues(1, 16);
    host.write(0x14, host.reg(0x14) | (1 << 14));
    host.poll();
    expect(host.reg(0x1c)).toBe(1 | (2 << 2));
    host.disable();
    expect(host.reg(0x1c)).toBe(0);
    expect(host.enable()).toBe(1);
    // The I/O queues are gone: creating SQ 1 on CQ 1 finds no CQ.
    const sq = host.run(0, {
      opcode: 0x01,
      prp1: host.alloc(4096),
      cdw10: 1 | (15 << 16),
      cdw11: 1 | (1 << 16),
    });
    expect(sq.status).toBe(0x4100);
  });

  it('CAP, VS and CSTS written through the mapping read back as the controller has them', () => {
    using host = new NvmeTestHost();
    host.write(0x00, 0);
    host.write(0x08, 0x12345678);
    host.write(0x1c, 0xffffffff);
    host.poll();
    expect(host.dev.regionRead64(0, 0)).toBe(0x4000200f0107ffn);
    expect(host.reg(0x08)).toBe(0x10400);
    expect(host.reg(0x1c)).toBe(0);
  });
});

describe('sim:nvme: admin commands Linux sends at probe', () => {
  it('Identify Controller: VID, serial, model, firmware, MDTS, SQES/CQES, NN, VWC, SUBNQN', () => {
    using host = new NvmeTestHost();
    expect(host.enable()).toBe(1);
    const { cqe, data } = host.adminData({ opcode: IDENTIFY, cdw10: 1 });
    expect(cqe).toMatchObject({ status: 0, sqid: 0, sqHead: 1, phase: 1 });
    expect(u16(data, 0)).toBe(0x1b36);
    expect(ascii(data, 4, 20)).toBe(NVME_IDENTITY.serial);
    expect(ascii(data, 24, 40)).toBe(NVME_IDENTITY.model);
    expect(NVME_IDENTITY.model).toBe('vfio-ts sim:nvme');
    expect(ascii(data, 64, 8)).toBe(NVME_IDENTITY.firmware);
    expect(data[77]).toBe(7);
    expect(u32(data, 80)).toBe(0x10400);
    expect(data[512]).toBe(0x66);
    expect(data[513]).toBe(0x44);
    expect(u32(data, 516)).toBe(1);
    expect(data[525]).toBe(1);
    expect(ascii(data, 768, 256).replace(/\0+$/, '')).toBe(`nqn.2019-08.org.qemu:${NVME_IDENTITY.serial}`);
  });

  it('Identify Namespace 1: 8192 blocks of 512 bytes by default, or the size the model option gives', () => {
    using host = new NvmeTestHost();
    host.enable();
    const { cqe, data } = host.adminData({ opcode: IDENTIFY, nsid: 1, cdw10: 0 });
    expect(cqe.status).toBe(0);
    expect(u64(data, 0)).toBe(8192n);
    expect(u64(data, 8)).toBe(8192n);
    expect(data[26]).toBe(0);
    expect(data[130]).toBe(9);
    expect(NVME_IDENTITY.namespaceBlocks).toBe(8192);
    using big = new NvmeTestHost({ diskBytes: 1024 * 1024 });
    big.enable();
    expect(u64(big.adminData({ opcode: IDENTIFY, nsid: 1, cdw10: 0 }).data, 0)).toBe(2048n);
  });

  it('Identify active namespace list, namespace ID descriptors, NVM controller data; other CNS and namespaces refused', () => {
    using host = new NvmeTestHost();
    host.enable();
    const list = host.adminData({ opcode: IDENTIFY, nsid: 0, cdw10: 2 });
    expect([u32(list.data, 0), u32(list.data, 4)]).toEqual([1, 0]);
    expect(u32(host.adminData({ opcode: IDENTIFY, nsid: 1, cdw10: 2 }).data, 0)).toBe(0);
    const desc = host.adminData({ opcode: IDENTIFY, nsid: 1, cdw10: 3 });
    expect([desc.data[0], desc.data[1]]).toEqual([3, 16]); // a UUID
    expect(desc.data[20]).toBe(0); // end of list
    const nvm = host.alloc(4096);
    host.view(nvm, 4096).fill(0xff);
    expect(host.run(0, { opcode: IDENTIFY, prp1: nvm, cdw10: 6, cdw11: 0 }).status).toBe(0); // CSI NVM
    expect(host.view(nvm, 4096).every((b) => b === 0)).toBe(true); // no limits besides MDTS
    expect(host.adminData({ opcode: IDENTIFY, cdw10: 6, cdw11: 2 << 24 }).cqe.status).toBe(0x4002); // ZNS
    expect(host.adminData({ opcode: IDENTIFY, nsid: 1, cdw10: 0x05 }).cqe.status).toBe(0x4002);
    expect(host.adminData({ opcode: IDENTIFY, nsid: 2, cdw10: 0 }).cqe.status).toBe(0x400b);
    expect(host.adminData({ opcode: IDENTIFY, nsid: 0xffffffff, cdw10: 0 }).cqe.status).toBe(0x400b);
  });

  it('Set Features Number of Queues grants up to 64 pairs; 0xffff is an invalid field', () => {
    using host = new NvmeTestHost();
    host.enable();
    expect(host.run(0, { opcode: 0x09, cdw10: 0x07, cdw11: 3 | (3 << 16) })).toMatchObject({
      status: 0,
      result: 3 | (3 << 16),
    });
    expect(host.run(0, { opcode: 0x09, cdw10: 0x07, cdw11: 200 | (100 << 16) }).result).toBe(63 | (63 << 16));
    expect(host.run(0, { opcode: 0x0a, cdw10: 0x07 }).result).toBe(63 | (63 << 16));
    expect(host.run(0, { opcode: 0x09, cdw10: 0x07, cdw11: 0xffff }).status).toBe(0x4002);
  });

  it('other features: current, default and capabilities; nothing saveable; unknown ones refused', () => {
    using host = new NvmeTestHost();
    host.enable();
    expect(host.run(0, { opcode: 0x0a, cdw10: 0x06 }).result).toBe(1); // volatile write cache on
    expect(host.run(0, { opcode: 0x09, cdw10: 0x06, cdw11: 0 }).status).toBe(0);
    expect(host.run(0, { opcode: 0x0a, cdw10: 0x06 }).result).toBe(0);
    expect(host.run(0, { opcode: 0x0a, cdw10: 0x06 | (1 << 8) }).result).toBe(1); // default
    expect(host.run(0, { opcode: 0x0a, cdw10: 0x04 }).result).toBe(0x157);
    expect(host.run(0, { opcode: 0x09, cdw10: 0x04, cdw11: 0x160 }).status).toBe(0);
    expect(host.run(0, { opcode: 0x0a, cdw10: 0x04 }).result).toBe(0x160);
    expect(host.run(0, { opcode: 0x0a, cdw10: 0x04 | (3 << 8) }).result).toBe(4); // changeable
    expect(host.run(0, { opcode: 0x09, cdw10: 0x8000_0006, cdw11: 1 }).status).toBe(0x410d);
    expect(host.run(0, { opcode: 0x0a, cdw10: 0x7f }).status).toBe(0x4002);
    expect(host.run(0, { opcode: 0x0a, cdw10: 0x09, cdw11: 64 }).result).toBe(64);
    expect(host.run(0, { opcode: 0x0a, cdw10: 0x09, cdw11: 65 }).status).toBe(0x4002);
  });

  it('Get Log Page: error, SMART and firmware slot logs; an unknown log is Invalid Log Page', () => {
    using host = new NvmeTestHost();
    host.enable();
    const smart = host.adminData({ opcode: 0x02, nsid: 0xffffffff, cdw10: 0x02 | (127 << 16) });
    expect(smart.cqe.status).toBe(0);
    expect(u16(smart.data, 1)).toBe(0x127);
    expect(smart.data[3]).toBe(100);
    const fw = host.adminData({ opcode: 0x02, cdw10: 0x03 | (127 << 16) });
    expect(fw.data[0]).toBe(1);
    expect(ascii(fw.data, 8, 8)).toBe(NVME_IDENTITY.firmware);
    expect(host.adminData({ opcode: 0x02, cdw10: 0x01 | (63 << 16) }).cqe.status).toBe(0);
    expect(host.adminData({ opcode: 0x02, cdw10: 0x05 | (255 << 16) }).cqe.status).toBe(0x4109);
    expect(host.adminData({ opcode: 0x02, cdw10: 0x02 | (127 << 16), cdw12: 2 }).cqe.status).toBe(0x4002);
  });

  it('Asynchronous Event Requests are held (no completion); a fifth is AER Limit Exceeded; Abort and Keep Alive complete', () => {
    using host = new NvmeTestHost();
    host.enable();
    for (let i = 0; i < 4; i++) host.queue(0, { opcode: 0x0c });
    host.ring(0);
    host.poll();
    expect(host.reap(0)).toBeNull();
    expect(host.run(0, { opcode: 0x0c }).status).toBe(0x4105);
    expect(host.run(0, { opcode: 0x08, cdw10: 5 << 16 })).toMatchObject({ status: 0, result: 1 });
    expect(host.run(0, { opcode: 0x18 }).status).toBe(0);
    expect(host.run(0, { opcode: 0x7f }).status).toBe(0x4001);
  });

  it('Create/Delete I/O queues: checks of queue id, size, CQ, vector, contiguity; a CQ in use cannot go', () => {
    using host = new NvmeTestHost();
    host.enable();
    host.run(0, { opcode: 0x09, cdw10: 0x07, cdw11: 1 | (1 << 16) }); // two pairs
    const page = host.alloc(4096);
    const cq = (cdw10: number, cdw11 = 3 | (1 << 16), prp1 = page) =>
      host.run(0, { opcode: 0x05, prp1, cdw10, cdw11 }).status;
    expect(cq(3 | (15 << 16))).toBe(0x4101); // beyond the two granted
    expect(cq(0 | (15 << 16))).toBe(0x4101);
    expect(cq(1)).toBe(0x4102); // one entry
    expect(cq(1 | (2048 << 16))).toBe(0x4102); // beyond MQES
    expect(cq(1 | (15 << 16), 3 | (65 << 16))).toBe(0x4108); // no vector 65
    expect(cq(1 | (15 << 16), 2 | (1 << 16))).toBe(0x4002); // not physically contiguous
    expect(cq(1 | (15 << 16), 3, page + 0x100n)).toBe(0x4013);
    expect(cq(1 | (15 << 16))).toBe(0);
    expect(cq(1 | (15 << 16))).toBe(0x4101); // exists
    const sq = (cdw10: number, cdw11: number) =>
      host.run(0, { opcode: 0x01, prp1: host.alloc(4096), cdw10, cdw11 }).status;
    expect(sq(1 | (15 << 16), 1 | (2 << 16))).toBe(0x4100); // no CQ 2
    expect(sq(1 | (15 << 16), 1 | (1 << 16))).toBe(0);
    expect(host.run(0, { opcode: 0x04, cdw10: 1 }).status).toBe(0x410c); // SQ 1 still on it
    expect(host.run(0, { opcode: 0x00, cdw10: 2 }).status).toBe(0x4101);
    expect(host.run(0, { opcode: 0x00, cdw10: 1 }).status).toBe(0);
    expect(host.run(0, { opcode: 0x04, cdw10: 1 }).status).toBe(0);
    expect(host.run(0, { opcode: 0x04, cdw10: 0 }).status).toBe(0x4101);
  });
});

/** A host ready for I/O: enabled, two queue pairs granted, MSI-X on vectors 0..2, I/O queue pair 1 on vector 1. */
function ioHost(entries = 32): NvmeTestHost {
  const host = new NvmeTestHost();
  host.useMsix(3);
  expect(host.enable()).toBe(1);
  host.run(0, { opcode: 0x09, cdw10: 0x07, cdw11: 1 | (1 << 16) });
  const [cq, sq] = host.createIoQueues(1, entries);
  expect([cq.status, sq.status]).toEqual([0, 0]);
  host.interrupts();
  return host;
}

const READ = 0x02;
const WRITE = 0x01;
const rw = (opcode: number, slba: number, blocks: number, prp1: bigint, prp2 = 0n) => ({
  opcode,
  nsid: 1,
  prp1,
  prp2,
  cdw10: slba,
  cdw11: 0,
  cdw12: blocks - 1,
});

function pattern(length: number, seed: number): Uint8Array {
  const out = new Uint8Array(length);
  for (let i = 0; i < length; i++) out[i] = (i * 31 + seed * 7 + (i >> 9)) & 0xff;
  return out;
}

/** A PRP list at `list` (may start inside its page) naming `pages`. */
function writeList(host: NvmeTestHost, list: bigint, pages: bigint[]): void {
  const v = host.view(list, pages.length * 8);
  const d = new DataView(v.buffer, v.byteOffset, v.byteLength);
  for (const [i, p] of pages.entries()) d.setBigUint64(8 * i, p, true);
}

describe('sim:nvme: reads and writes of the RAM namespace', () => {
  it('PRP1 only: 4 KiB written then read back into another buffer', () => {
    using host = ioHost();
    const src = host.alloc(4096);
    const dst = host.alloc(4096);
    host.view(src, 4096).set(pattern(4096, 1));
    expect(host.run(1, rw(WRITE, 8, 8, src)).status).toBe(0);
    expect(host.run(1, rw(READ, 8, 8, dst)).status).toBe(0);
    expect(host.view(dst, 4096)).toEqual(pattern(4096, 1));
  });

  it('PRP1 inside a page and PRP2: one sector at an offset, and 6 KiB across two pages', () => {
    using host = ioHost();
    const buf = host.alloc(8192);
    host.view(buf + 0x200n, 512).set(pattern(512, 2));
    expect(host.run(1, rw(WRITE, 17, 1, buf + 0x200n)).status).toBe(0);
    const two = host.alloc(4096);
    const a = host.alloc(4096);
    const b = host.alloc(4096);
    host.view(a + 0x800n, 2048).set(pattern(6144, 3).subarray(0, 2048));
    host.view(b, 4096).set(pattern(6144, 3).subarray(2048));
    expect(host.run(1, rw(WRITE, 100, 12, a + 0x800n, b)).status).toBe(0);
    expect(host.run(1, rw(READ, 17, 1, two)).status).toBe(0);
    expect(host.view(two, 512)).toEqual(pattern(512, 2));
    const c = host.alloc(8192);
    expect(host.run(1, rw(READ, 100, 12, c, c + 4096n)).status).toBe(0);
    expect(host.view(c, 6144)).toEqual(pattern(6144, 3));
  });

  it('a PRP list (32 KiB over scattered pages), and one that chains to a second list page', () => {
    using host = ioHost();
    const pages = Array.from({ length: 8 }, () => host.alloc(4096)).reverse(); // not contiguous in order
    const data = pattern(32768, 4);
    for (const [i, p] of pages.entries()) host.view(p, 4096).set(data.subarray(i * 4096, (i + 1) * 4096));
    const list = host.alloc(4096);
    writeList(host, list, pages.slice(1));
    expect(host.run(1, rw(WRITE, 64, 64, pages[0]!, list)).status).toBe(0);
    // Read it back through a list of two entries at the end of one page, the last chaining on.
    const out = Array.from({ length: 8 }, () => host.alloc(4096));
    const listPage = host.alloc(8192);
    const first = listPage + 4096n - 16n;
    const next = listPage + 4096n;
    writeList(host, first, [out[1]!, next]);
    writeList(host, next, out.slice(2));
    expect(host.run(1, rw(READ, 64, 64, out[0]!, first)).status).toBe(0);
    const back = new Uint8Array(32768);
    for (const [i, p] of out.entries()) back.set(host.view(p, 4096), i * 4096);
    expect(back).toEqual(data);
  });

  it('Flush, Write Zeroes and DSM deallocate; the data stays across a device reset', () => {
    using host = ioHost();
    const buf = host.alloc(4096);
    host.view(buf, 4096).set(pattern(4096, 5));
    expect(host.run(1, rw(WRITE, 0, 8, buf)).status).toBe(0);
    expect(host.run(1, { opcode: 0x00, nsid: 1 }).status).toBe(0);
    expect(host.run(1, { opcode: 0x08, nsid: 1, cdw10: 2, cdw12: 0 }).status).toBe(0); // block 2
    const range = host.alloc(4096);
    const r = new DataView(host.view(range, 16).buffer, host.view(range, 16).byteOffset, 16);
    r.setUint32(4, 1, true);
    r.setBigUint64(8, 5n, true);
    expect(host.run(1, { opcode: 0x09, nsid: 1, prp1: range, cdw10: 0, cdw11: 4 }).status).toBe(0); // block 5
    const back = host.alloc(4096);
    expect(host.run(1, rw(READ, 0, 8, back)).status).toBe(0);
    const expected = pattern(4096, 5);
    expected.fill(0, 2 * 512, 3 * 512);
    expected.fill(0, 5 * 512, 6 * 512);
    expect(host.view(back, 4096)).toEqual(expected);
    host.dev.reset();
    expect(host.reg(0x1c)).toBe(0);
    host.command(0x6);
    host.disable();
    expect(host.enable()).toBe(1);
    host.run(0, { opcode: 0x09, cdw10: 0x07, cdw11: 0 });
    host.createIoQueues(1, 8, null);
    const after = host.alloc(4096);
    expect(host.run(1, rw(READ, 0, 8, after)).status).toBe(0);
    expect(host.view(after, 4096)).toEqual(expected);
  });

  it('refuses LBAs past the end, transfers past MDTS, other namespaces and unknown opcodes', () => {
    using host = ioHost();
    const buf = host.alloc(4096);
    expect(host.run(1, rw(READ, 8191, 2, buf)).status).toBe(0x4080);
    expect(host.run(1, { ...rw(READ, 0, 1, buf), cdw11: 1 }).status).toBe(0x4080); // SLBA 2^32
    expect(host.run(1, rw(READ, 0, 1025, buf)).status).toBe(0x4002); // 512.5 KiB > 2^7 pages
    expect(host.run(1, { ...rw(READ, 0, 1, buf), nsid: 2 }).status).toBe(0x400b);
    expect(host.run(1, { opcode: 0x00, nsid: 0xffffffff }).status).toBe(0);
    expect(host.run(1, { opcode: 0x7e, nsid: 1 }).status).toBe(0x4001);
    expect(host.run(1, rw(READ, 0, 1, buf + 2n)).status).toBe(0x4013); // PRP1 not dword aligned
    expect(host.run(1, rw(READ, 0, 16, buf, buf + 0x1008n)).status).toBe(0x4013); // PRP2 data page with an offset
  });
});

describe('sim:nvme: completions and interrupts', () => {
  it('signals the vector of each completion queue: admin on 0, I/O queues on theirs; none for IEN 0', () => {
    using host = new NvmeTestHost();
    host.useMsix(4);
    host.enable();
    host.run(0, { opcode: 0x06, prp1: host.alloc(4096), cdw10: 1 });
    expect(host.interrupts()).toEqual([1, 0, 0, 0]);
    host.run(0, { opcode: 0x09, cdw10: 0x07, cdw11: 2 | (2 << 16) });
    host.createIoQueues(1, 8, 1);
    host.createIoQueues(2, 8, 3);
    host.createIoQueues(3, 8, null);
    expect(host.interrupts()).toEqual([7, 0, 0, 0]);
    const buf = host.alloc(4096);
    for (let i = 0; i < 3; i++) host.run(1, rw(READ, 0, 1, buf));
    for (let i = 0; i < 2; i++) host.run(2, rw(READ, 0, 1, buf));
    host.run(3, rw(READ, 0, 1, buf));
    expect(host.interrupts()).toEqual([0, 3, 0, 2]);
    // Several completions in one poll: one interrupt.
    for (let i = 0; i < 4; i++) host.queue(1, rw(READ, 0, 1, buf));
    host.ring(1);
    host.poll(2);
    expect(host.interrupts()).toEqual([0, 1, 0, 0]);
  });

  it('the phase tag flips each time the completion queue wraps; the SQ head follows', () => {
    using host = ioHost(4);
    const buf = host.alloc(4096);
    const seen: [number, number][] = [];
    for (let i = 0; i < 10; i++) {
      const c = host.run(1, rw(READ, 0, 1, buf));
      seen.push([c.phase, c.sqHead]);
    }
    expect(seen).toEqual([
      [1, 1],
      [1, 2],
      [1, 3],
      [1, 0],
      [0, 1],
      [0, 2],
      [0, 3],
      [0, 0],
      [1, 1],
      [1, 2],
    ]);
  });

  it('a full completion queue holds further commands until the host frees entries', () => {
    using host = ioHost(4);
    const buf = host.alloc(4096);
    for (let i = 0; i < 3; i++) host.queue(1, rw(READ, 0, 1, buf));
    host.ring(1);
    host.poll(2);
    const got = [host.reap(1), host.reap(1), host.reap(1)];
    expect(got.every((c) => c?.status === 0)).toBe(true);
    // The CQ (4 entries) holds at most 3 unconsumed: no head doorbell yet, so these wait.
    for (let i = 0; i < 2; i++) host.queue(1, rw(READ, 0, 1, buf));
    host.ring(1);
    host.poll(5);
    expect(host.reap(1)).toBeNull();
    host.release(1);
    host.poll(2);
    expect(host.reap(1)?.status).toBe(0);
    expect(host.reap(1)?.status).toBe(0);
  });

  it('without MSI-X enabled, completions assert INTx', () => {
    using host = new NvmeTestHost();
    const intx = EventFd.create();
    try {
      host.dev.setIrqs({
        index: 0,
        action: 'trigger',
        start: 0,
        count: 1,
        data: { type: 'eventfd', eventfds: [intx] },
      });
      host.enable();
      host.run(0, { opcode: 0x06, prp1: host.alloc(4096), cdw10: 1 });
      expect(intx.consume()).toBe(1n);
    } finally {
      intx.close();
    }
  });

  it('a queue deleted and created again starts from doorbell 0, not the old queue’s tail', () => {
    using host = ioHost(8);
    const buf = host.alloc(4096);
    for (let i = 0; i < 5; i++) host.run(1, rw(READ, 0, 1, buf));
    expect(host.reg(0x1008)).toBe(5);
    expect(host.run(0, { opcode: 0x00, cdw10: 1 }).status).toBe(0);
    expect(host.run(0, { opcode: 0x04, cdw10: 1 }).status).toBe(0);
    host.createIoQueues(1, 8);
    host.poll(5);
    expect(host.reap(1)).toBeNull(); // nothing ran from the stale tail
    expect(host.run(1, rw(READ, 0, 1, buf))).toMatchObject({ status: 0, sqHead: 1 });
  });

  it('a doorbell written through the slow path is acted on at once', () => {
    using host = ioHost();
    const buf = host.alloc(4096);
    const cid = host.queue(1, rw(READ, 0, 1, buf));
    host.dev.regionWrite(0, 0x1008, 1, 4);
    expect(host.reap(1)).toMatchObject({ cid, status: 0 });
  });
});

describe('sim:nvme: faults stay inside the controller', () => {
  it('data outside host memory: Data Transfer Error for that command; the next one works', () => {
    using host = ioHost();
    const outside = HOST_BASE + BigInt(HOST_BYTES) + 0x10000n;
    expect(NVME_STATUS_DATA_TRANSFER_ERROR | NVME_STATUS_DNR).toBe(0x4004);
    expect(host.run(1, rw(READ, 0, 8, outside)).status).toBe(0x4004);
    expect(host.run(1, rw(WRITE, 0, 8, outside)).status).toBe(0x4004);
    const list = host.alloc(4096);
    writeList(host, list, [outside, outside + 4096n]);
    expect(host.run(1, rw(READ, 0, 24, host.alloc(4096), list)).status).toBe(0x4004);
    expect(host.run(1, rw(READ, 0, 24, host.alloc(4096), outside)).status).toBe(0x4004); // the list itself
    expect(host.run(0, { opcode: 0x06, prp1: outside, cdw10: 1 }).status).toBe(0x4004);
    expect(host.reg(0x1c)).toBe(1);
    const buf = host.alloc(4096);
    expect(host.run(1, rw(READ, 0, 8, buf)).status).toBe(0);
  });

  it('an admin submission queue outside host memory: fatal (CFS) at the doorbell, recovered by a CC.EN toggle', () => {
    using host = new NvmeTestHost();
    host.write(0x24, 0x001f001f);
    host.write(0x28, 0);
    host.write(0x2c, 0x10); // far outside the test host's memory
    const acq = host.alloc(4096);
    host.write(0x30, Number(acq & 0xffffffffn));
    host.write(0x34, Number(acq >> 32n));
    host.write(0x14, 0x00460001);
    host.poll();
    expect(host.reg(0x1c)).toBe(1); // the queue is not touched before the host rings
    host.write(0x1000, 1);
    host.poll();
    expect(host.reg(0x1c)).toBe(2);
    host.disable();
    expect(host.enable()).toBe(1);
    expect(host.run(0, { opcode: 0x06, prp1: host.alloc(4096), cdw10: 1 }).status).toBe(0);
  });

  it('a completion queue outside host memory: fatal when the controller posts to it', () => {
    using host = ioHost();
    const outside = HOST_BASE + BigInt(HOST_BYTES);
    const sq = host.alloc(4096);
    expect(host.run(0, { opcode: 0x05, prp1: outside, cdw10: 2 | (7 << 16), cdw11: 1 }).status).toBe(0);
    expect(host.run(0, { opcode: 0x01, prp1: sq, cdw10: 2 | (7 << 16), cdw11: 1 | (2 << 16) }).status).toBe(
      0,
    );
    // One Flush in SQ 2 (written by hand: the helper does not track this queue pair).
    const e = host.view(sq, 64);
    e[0] = 0x00;
    e[4] = 1;
    host.write(0x1010, 1);
    host.poll(2);
    expect(host.reg(0x1c)).toBe(2);
  });

  it('bus mastering off: the controller cannot fetch commands and goes fatal', () => {
    using host = new NvmeTestHost();
    host.enable();
    host.command(0x2);
    host.queue(0, { opcode: 0x06, prp1: host.alloc(4096), cdw10: 1 });
    host.ring(0);
    host.poll();
    expect(host.reg(0x1c)).toBe(2);
  });

  it('a device reset puts the controller back to power-on; its poll keeps running', () => {
    using host = ioHost();
    host.write(0x1008, 3); // a stale doorbell
    host.dev.reset();
    expect(host.dev.regionRead(0, 0x14, 4)).toBe(0);
    expect(host.dev.regionRead(0, 0x1c, 4)).toBe(0);
    expect(host.reg(0x1008)).toBe(0);
    expect(host.dev.timerCount).toBe(1);
    host.command(0x6);
    expect(host.enable()).toBe(1);
    expect(host.run(0, { opcode: 0x06, prp1: host.alloc(4096), cdw10: 1 }).status).toBe(0);
  });

  it('opening and closing leaves no fd, mapping or timer behind', () => {
    const before = resourceCounts();
    for (let i = 0; i < 3; i++) {
      using host = ioHost();
      host.run(1, rw(READ, 0, 1, host.alloc(4096)));
    }
    expect(resourceCounts()).toEqual(before);
    expect(vi.getTimerCount()).toBe(0);
  });
});

describe('sim:nvme: QEMU trace events', () => {
  it('enable, an Identify and its interrupt trace as QEMU hw/nvme does', () => {
    using host = new NvmeTestHost();
    host.useMsix(1);
    const setup = traceLines('pci_nvme_*', () => host.enable());
    expect(setup).toEqual([
      'pci_nvme_mmio_cfg wrote MMIO, config controller config=0x460001',
      'pci_nvme_mmio_start_success setting controller enable bit succeeded',
    ]);
    const buf = host.alloc(4096);
    const lines = traceLines('pci_nvme_*', () =>
      host.run(0, { opcode: IDENTIFY, cid: 7, prp1: buf, cdw10: 1 }),
    );
    expect(lines).toEqual([
      'pci_nvme_mmio_doorbell_sq sqid 0 new_tail 1',
      "pci_nvme_admin_cmd cid 7 sqid 0 opc 0x6 opname 'NVME_ADM_CMD_IDENTIFY'",
      'pci_nvme_identify cid 7 cns 0x1 ctrlid 0 csi 0x0',
      'pci_nvme_enqueue_req_completion cid 7 cqid 0 dw0 0x0 dw1 0x0 status 0x0',
      'pci_nvme_irq_msix raising MSI-X IRQ vector 0',
    ]);
    // The host's CQ head doorbell (written after it reaped the entry) is seen at the next poll.
    expect(traceLines('pci_nvme_*', () => host.poll(2))).toEqual([
      'pci_nvme_mmio_doorbell_cq cqid 0 new_head 1',
    ]);
  });

  it('a refused enable and an unreachable queue say why', () => {
    using host = new NvmeTestHost();
    host.write(0x24, 0x001f001f);
    host.write(0x28, 0x0200);
    host.write(0x14, 0x00460001);
    expect(traceLines('pci_nvme_err_*', () => host.poll())).toEqual([
      'pci_nvme_err_startfail_asq_misaligned nvme_start_ctrl failed because the admin submission queue address is misaligned: 0x200',
      'pci_nvme_err_startfail setting controller enable bit failed',
    ]);
    host.disable();
    host.enable();
    host.command(0x2); // no bus mastering: the fetch fails
    host.queue(0, { opcode: IDENTIFY, prp1: host.alloc(4096), cdw10: 1 });
    host.ring(0);
    const lines = traceLines('pci_nvme_err_*', () => host.poll());
    expect(lines).toEqual([
      expect.stringMatching(/^pci_nvme_err_addr_read addr 0x1[0-9a-f]{8}$/),
      'pci_nvme_err_cfs controller fatal status',
    ]);
  });
});

describe('sim:nvme: a fault of the model itself', () => {
  it('an exception inside the poll makes the controller fatal; the poll keeps running and a CC.EN toggle recovers', () => {
    using host = ioHost();
    // Interrupt delivery throws (as a broken IRQ path would): the completion is posted, then the poll faults.
    const raise = vi.spyOn(host.dev, 'raise').mockImplementation(() => {
      throw new Error('interrupt path broken');
    });
    host.queue(1, rw(READ, 0, 1, host.alloc(4096)));
    host.ring(1);
    host.poll(2);
    expect(host.reg(0x1c)).toBe(2);
    expect(host.dev.timerCount).toBe(1);
    raise.mockRestore();
    host.disable();
    expect(host.enable()).toBe(1);
  });
});
