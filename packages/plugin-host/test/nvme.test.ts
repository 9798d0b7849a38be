/**
 * sim:nvme as an NVMe controller, driven the way Linux's nvme driver drives
 * it: BAR0 written through a mapping (so only the controller's poll sees it),
 * host memory reached by DMA, completions read by their phase tag, MSI-X
 * vectors counted on eventfds. The poll runs on vitest's fake timers.
 */
import { resourceCounts } from '@vfio-ts/test-support';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { NVME_IDENTITY } from '../src/index.js';
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

  it('Identify active namespace list, namespace ID descriptors; other CNS and namespaces refused', () => {
    using host = new NvmeTestHost();
    host.enable();
    const list = host.adminData({ opcode: IDENTIFY, nsid: 0, cdw10: 2 });
    expect([u32(list.data, 0), u32(list.data, 4)]).toEqual([1, 0]);
    expect(u32(host.adminData({ opcode: IDENTIFY, nsid: 1, cdw10: 2 }).data, 0)).toBe(0);
    const desc = host.adminData({ opcode: IDENTIFY, nsid: 1, cdw10: 3 });
    expect([desc.data[0], desc.data[1]]).toEqual([3, 16]); // a UUID
    expect(desc.data[20]).toBe(0); // end of list
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
