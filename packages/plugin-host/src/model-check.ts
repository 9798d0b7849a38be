/**
 * A device model is checked before the in-process backend builds anything
 * from it: plugins are code from outside, so a BAR index, kind or size, a
 * ROM, or a hook of the wrong shape is a ModelError that names the plugin and
 * the field, not a crash (or a silently wrong device) later.
 */
import { ModelError, quote } from './errors.js';
import type { DeviceModel, ModelHooks } from './model.js';

const KINDS = ['mem32', 'mem64', 'io'];
const MODES = ['mappable', 'mmap-no-cap', 'sparse'];
const HOOKS = ['reset', 'close', 'vgaRead', 'vgaWrite', 'configWritten'] as const;
/** The PCI limits: an I/O BAR decodes at most 256 bytes, a 32-bit memory BAR at most 2 GiB. */
const IO_MAX = 256;
const MEM32_MAX = 2 ** 31;

/** Exact for every safe integer (no 32-bit `&`). */
export function isPowerOfTwo(n: number): boolean {
  return Number.isSafeInteger(n) && n > 0 && 2 ** Math.round(Math.log2(n)) === n;
}

/** How messages name a model: its plugin or spec file when it came from one. */
export function modelLabel(model: Pick<DeviceModel, 'name' | 'source'>): string {
  const name = typeof model.name === 'string' ? model.name.slice(0, 60) : '(unnamed)';
  return model.source ? `plugin ${model.source} (model ${name})` : `model ${name}`;
}

function fail(label: string, field: string, problem: string): never {
  throw new ModelError(
    'ERR_MODEL_INVALID',
    `${label}: ${field}: ${problem}`,
    'fix the model the plugin returns',
  );
}

/** Checks the parts of a model the backend builds from; throws a ModelError naming the first bad field. */
export function checkModel(model: DeviceModel): void {
  const label = modelLabel(model);
  if (typeof model.name !== 'string' || model.name === '') fail(label, 'name', 'expected a non-empty string');
  if (!(model.config instanceof Uint8Array))
    fail(label, 'config', 'expected the config space bytes (a Uint8Array)');
  if (!Array.isArray(model.bars) || model.bars.length > 6)
    fail(label, 'bars', 'expected an array of at most 6 BARs');
  const taken = new Map<number, number>();
  model.bars.forEach((bar, i) => {
    const field = `bars[${i}]`;
    if (bar === null || typeof bar !== 'object') fail(label, field, 'expected a BAR object');
    const { index, kind, size } = bar;
    if (!Number.isInteger(index) || index < 0 || index > 5)
      fail(label, `${field}.index`, `expected a BAR index 0-5, got ${quote(index)}`);
    if (!KINDS.includes(kind))
      fail(label, `${field}.kind`, `expected "mem32", "mem64" or "io", got ${quote(kind)}`);
    const registers = kind === 'mem64' ? [index, index + 1] : [index];
    if (kind === 'mem64' && index === 5)
      fail(label, `${field}.index`, 'a 64-bit BAR takes two registers; BAR 5 has no upper half');
    for (const reg of registers) {
      const clash = taken.get(reg);
      if (clash !== undefined)
        fail(label, `${field}.index`, `BAR register ${reg} is already used by bars[${clash}]`);
      taken.set(reg, i);
    }
    if (!isPowerOfTwo(size)) fail(label, `${field}.size`, `expected a power of two, got ${quote(size)}`);
    if (kind === 'io' && (size < 4 || size > IO_MAX))
      fail(label, `${field}.size`, `expected an I/O BAR of 4 to ${IO_MAX} bytes, got ${size}`);
    if (kind !== 'io' && size < 16)
      fail(label, `${field}.size`, `expected a memory BAR of at least 16 bytes, got ${size}`);
    if (kind === 'mem32' && size > MEM32_MAX)
      fail(
        label,
        `${field}.size`,
        `a 32-bit BAR decodes at most 2 GiB, got 0x${size.toString(16)}; use "mem64"`,
      );
    if (bar.prefetchable !== undefined && typeof bar.prefetchable !== 'boolean')
      fail(label, `${field}.prefetchable`, `expected true, false or absent, got ${quote(bar.prefetchable)}`);
    if (bar.mappable !== undefined && typeof bar.mappable !== 'boolean')
      fail(label, `${field}.mappable`, `expected true, false or absent, got ${quote(bar.mappable)}`);
  });
  if (model.rom !== undefined && (!(model.rom instanceof Uint8Array) || !isPowerOfTwo(model.rom.length)))
    fail(label, 'rom', 'expected the ROM bytes (a Uint8Array whose length is a power of two)');
  if (model.msixMode !== undefined && !MODES.includes(model.msixMode))
    fail(label, 'msixMode', `expected "mappable", "mmap-no-cap" or "sparse", got ${quote(model.msixMode)}`);
  if (model.setup !== undefined && typeof model.setup !== 'function')
    fail(label, 'setup', `expected a function, got ${quote(model.setup)}`);
}

/** Checks what setup returned: nothing, or an object whose hooks are functions. */
export function checkHooks(model: DeviceModel, hooks: unknown): ModelHooks | undefined {
  if (hooks === undefined || hooks === null) return undefined;
  const label = modelLabel(model);
  if (typeof hooks !== 'object')
    fail(label, 'setup()', `expected hooks (an object) or nothing, got ${quote(hooks)}`);
  for (const name of HOOKS) {
    const hook = (hooks as Record<string, unknown>)[name];
    if (hook !== undefined && typeof hook !== 'function')
      fail(label, `setup().${name}`, `expected a function, got ${quote(hook)}`);
  }
  return hooks as ModelHooks;
}
