import { describe, expect, it } from 'vitest';
import { ConfigBuilder, type DeviceModel, type DmaHost, register32, SimDevice } from '../src/index.js';

/** A model whose BAR0 +0x10 doorbell copies 4 bytes from client memory at +0x0 to +0x8, by DMA. */
function dmaModel(): DeviceModel {
  const bars = [{ index: 0, size: 4096, kind: 'mem32' as const, prefetchable: false }];
  return {
    name: 'dma',
    config: new ConfigBuilder().build({ vendor: 0x1234, device: 0x0d3a, classCode: 0xff0000 }, bars),
    bars,
    setup(ctx) {
      const { region, memory } = ctx.bar(0);
      register32(region, memory, 0x10, 'doorbell', {
        write: () => {
          const from = BigInt(memory.u32[0]!);
          const to = BigInt(memory.u32[2]!);
          ctx.dmaWrite(to, ctx.dmaRead(from, 4));
        },
      });
      return undefined;
    },
  };
}

describe('model DMA through a host', () => {
  it('fails with ERR_MODEL_NO_DMA while no client memory is attached', () => {
    using dev = new SimDevice(dmaModel(), 'sim:dma');
    dev.regionWrite(7, 4, 0x2, 2); // memory decode on
    expect(() => dev.regionWrite(0, 0x10, 1, 4)).toThrow(
      expect.objectContaining({
        code: 'ERR_MODEL_NO_DMA',
        message: expect.stringContaining('vfio-ts serve'),
      }),
    );
  });

  it('reads and writes the attached host, and stops when detached', () => {
    using dev = new SimDevice(dmaModel(), 'sim:dma');
    dev.regionWrite(7, 4, 0x2, 2);
    const memory = new Uint8Array(0x100);
    memory.set([1, 2, 3, 4], 0x20);
    const host: DmaHost = {
      read: (a, n) => memory.slice(Number(a), Number(a) + n),
      write: (a, d) => memory.set(d, Number(a)),
    };
    dev.attachDmaHost(host);
    dev.regionWrite(0, 0x0, 0x20, 4);
    dev.regionWrite(0, 0x8, 0x40, 4);
    dev.regionWrite(0, 0x10, 1, 4);
    expect([...memory.subarray(0x40, 0x44)]).toEqual([1, 2, 3, 4]);
    dev.attachDmaHost(null);
    expect(() => dev.regionWrite(0, 0x10, 1, 4)).toThrow(
      expect.objectContaining({ code: 'ERR_MODEL_NO_DMA' }),
    );
  });

  it('hands out the memfd of mappable BARs for sharing, and nothing for other regions', () => {
    using dev = new SimDevice(dmaModel(), 'sim:dma');
    const shared = dev.regionFd(0);
    expect(shared).toEqual({ fd: expect.any(Number), offset: 0 });
    expect(dev.regionFd(1)).toBeNull();
    expect(dev.regionFd(7)).toBeNull();
  });
});
