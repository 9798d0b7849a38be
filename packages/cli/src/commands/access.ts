/** `vfio-ts read|write <device> <bar> <offset>`: one register access dispatched through the memory tree. */
import type { VfioPciDevice } from '@vfio-ts/pci-vfio';
import { UsageError } from '../errors.js';
import { hex, parseBigInteger, parseInteger } from '../numbers.js';

export type Size = 1 | 2 | 4 | 8;

export interface AccessTarget {
  readonly bar: number;
  readonly offset: number;
  readonly size: Size;
}

export function parseAccess(barText: string, offsetText: string, sizeText: string): AccessTarget {
  const bar = /^(bar)?[0-5]$/i.test(barText) ? Number(barText.slice(-1)) : Number.NaN;
  if (Number.isNaN(bar)) throw new UsageError(`BAR "${barText}" is not a BAR index`, 'use 0 to 5');
  const size = Number(sizeText);
  if (![1, 2, 4, 8].includes(size))
    throw new UsageError(`--size ${sizeText} is not an access size`, 'use 1, 2, 4 or 8');
  return { bar, offset: parseInteger(offsetText, 'offset'), size: size as Size };
}

/** The value of a `write`, checked against the access size before any device is opened (a typo must not reach hardware). */
export function parseWriteValue(valueText: string, size: Size): bigint {
  const value = parseBigInteger(valueText, 'value');
  if (value >= 1n << BigInt(8 * size))
    throw new UsageError(`value ${valueText} does not fit a ${size}-byte access`);
  return value;
}

/** Checks the target against the realized BAR; returns its absolute address and address space. */
function locate(dev: VfioPciDevice, t: AccessTarget) {
  const bar = dev.bar(t.bar);
  if (!bar)
    throw new UsageError(
      `${dev.name} has no BAR ${t.bar}`,
      `its BARs: ${dev.bars.map((b) => b.index).join(', ') || 'none'}`,
    );
  if (t.offset + t.size > bar.size) {
    throw new UsageError(
      `offset ${hex(t.offset)} (+${t.size}) is outside BAR ${t.bar} of ${hex(bar.size)} bytes`,
    );
  }
  if (t.offset % t.size !== 0)
    throw new UsageError(
      `offset ${hex(t.offset)} is not aligned to the ${t.size}-byte access`,
      'device registers take naturally aligned accesses',
    );
  if (bar.address === null) throw new UsageError(`BAR ${t.bar} is not mapped (decode disabled)`);
  const as = bar.kind === 'io' ? dev.io : dev.memory;
  const address = bar.address + t.offset;
  const range = as.flatView().lookup(address);
  return {
    as,
    address,
    path: range?.region.mtreeType === 'ramd' ? ('fast' as const) : ('slow' as const),
    region: range?.region.name ?? '(unassigned)',
  };
}

export function readRegister(dev: VfioPciDevice, t: AccessTarget) {
  const { as, address, path, region } = locate(dev, t);
  const value: number | bigint = t.size === 8 ? as.read64(address) : as.read(address, t.size);
  return { value, path, region };
}

export function writeRegister(dev: VfioPciDevice, t: AccessTarget, value: bigint) {
  const { as, address, path, region } = locate(dev, t);
  if (t.size === 8) as.write64(address, value);
  else as.write(address, Number(value), t.size);
  return { value, path, region };
}
