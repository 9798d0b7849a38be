/**
 * The controller's DMA into host memory: through the model context, only
 * while Bus Master Enable is set (a controller without it cannot master the
 * bus), and with every failure (no bus mastering, an address outside the
 * client's DMA maps, a client gone) turned into one error the command and
 * queue code turn into statuses or a fatal controller, never a throw out of
 * the poll.
 */
import { PCI_COMMAND, PCI_COMMAND_MASTER } from '@vfio-ts/vfio-sys/uapi';
import type { ModelContext } from '../../model.js';

export class NvmeDmaFault extends Error {
  readonly address: bigint;
  constructor(what: string, address: bigint, length: number, cause?: unknown) {
    const why = cause instanceof Error ? `: ${cause.message}` : '';
    super(`DMA ${what} of ${length} bytes at 0x${address.toString(16)} failed${why}`, { cause });
    this.address = address;
  }
}

export interface NvmeDma {
  read(address: bigint, length: number): Uint8Array;
  write(address: bigint, data: Uint8Array): void;
}

export function contextDma(ctx: ModelContext): NvmeDma {
  const master = () => (ctx.configRead(PCI_COMMAND, 2) & PCI_COMMAND_MASTER) !== 0;
  return {
    read(address, length) {
      if (!master()) throw new NvmeDmaFault('read', address, length, new Error('bus mastering is off'));
      try {
        return ctx.dmaRead(address, length);
      } catch (err) {
        throw new NvmeDmaFault('read', address, length, err);
      }
    },
    write(address, data) {
      if (!master()) throw new NvmeDmaFault('write', address, data.length, new Error('bus mastering is off'));
      try {
        ctx.dmaWrite(address, data);
      } catch (err) {
        throw new NvmeDmaFault('write', address, data.length, err);
      }
    },
  };
}
