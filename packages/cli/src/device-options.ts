/** `--option key=value`: device options by QEMU's property names, plus the simulator's own. */
import type { VfioPciOptions } from '@vfio-ts/pci-vfio';
import type { MsixMode, SimDeviceOptions } from '@vfio-ts/plugin-host';
import { UsageError } from './errors.js';
import { parseInteger } from './numbers.js';

const BOOLEAN_KEYS = ['x-no-mmap', 'x-vga', 'x-no-geforce-quirks', 'x-msix-ignore-mappable'] as const;
const KNOWN = [...BOOLEAN_KEYS, 'x-msix-relocation', 'host-page-size', 'sim-msix-mode', 'sim-page-size'];
const RELOCATIONS = ['off', 'auto', 'bar0', 'bar1', 'bar2', 'bar3', 'bar4', 'bar5'] as const;

export interface ParsedDeviceOptions {
  readonly pci: VfioPciOptions;
  readonly sim: SimDeviceOptions;
}

function onOff(key: string, value: string): boolean {
  if (['on', 'true', 'yes', '1'].includes(value)) return true;
  if (['off', 'false', 'no', '0'].includes(value)) return false;
  throw new UsageError(`option ${key} takes on or off, not "${value}"`);
}

export function parseDeviceOptions(pairs: readonly string[]): ParsedDeviceOptions {
  const pci: Record<string, unknown> = {};
  const sim: { msixMode?: MsixMode; pageSize?: number } = {};
  for (const pair of pairs) {
    const eq = pair.indexOf('=');
    if (eq <= 0)
      throw new UsageError(
        `--option "${pair}" is not key=value`,
        `e.g. --option x-no-mmap=on; known keys: ${KNOWN.join(', ')}`,
      );
    const key = pair.slice(0, eq);
    const value = pair.slice(eq + 1);
    if ((BOOLEAN_KEYS as readonly string[]).includes(key)) pci[key] = onOff(key, value);
    else if (key === 'host-page-size' || key === 'sim-page-size') {
      const size = parseInteger(value, key);
      if (size !== 4096 && size !== 65536) throw new UsageError(`${key} must be 4096 or 65536, not ${value}`);
      if (key === 'host-page-size') pci.pageSize = size;
      else sim.pageSize = size;
    } else if (key === 'x-msix-relocation') {
      const relo = RELOCATIONS.find((r) => r === value);
      if (!relo)
        throw new UsageError(`x-msix-relocation must be one of ${RELOCATIONS.join(', ')}, not "${value}"`);
      pci[key] = relo;
    } else if (key === 'sim-msix-mode') {
      if (value !== 'mappable' && value !== 'mmap-no-cap' && value !== 'sparse') {
        throw new UsageError(`sim-msix-mode must be mappable, mmap-no-cap or sparse, not "${value}"`);
      }
      sim.msixMode = value;
    } else {
      throw new UsageError(`unknown device option "${key}"`, `known options: ${KNOWN.join(', ')}`);
    }
  }
  return { pci: pci as VfioPciOptions, sim };
}
