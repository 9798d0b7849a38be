/**
 * Values a model's register handlers return are checked, not coerced: memory
 * dispatch would turn NaN into 0, 1.5 into 1 and -1 into all ones, and a
 * string into a TypeError, hiding the bug in the plugin. A `size`-byte read
 * returns an integer number 0..2^(8*size)-1 for sizes 1, 2 and 4, a bigint
 * 0..2^64-1 for 8 (DESIGN.md's rule for register values).
 */
import type { FlatView, RegionOps } from '@vfio-ts/memory-core';
import { ModelError, quote } from './errors.js';

/** Why `value` cannot be what a `size`-byte register read returns, or null when it can. */
export function badRegisterValue(value: unknown, size: number): string | null {
  if (size === 8) {
    if (typeof value !== 'bigint')
      return `${describe(value)}, where an 8-byte read returns a bigint (numbers cannot hold every 64-bit value)`;
    return value < 0n || value >= 1n << 64n ? `${quote(value)}n, which does not fit 8 bytes` : null;
  }
  if (typeof value === 'bigint')
    return `a bigint (${quote(value)}n), where a ${size}-byte read returns a number`;
  if (typeof value !== 'number') return `${describe(value)}, where a ${size}-byte read returns a number`;
  if (Number.isNaN(value)) return 'NaN';
  if (!Number.isFinite(value)) return String(value);
  if (!Number.isInteger(value)) return `${value}, which is not an integer`;
  if (value < 0 || value >= 2 ** (8 * size))
    return `${value} (0x${value.toString(16)}), which does not fit ${size} byte${size === 1 ? '' : 's'}`;
  return null;
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (typeof value === 'string') return `a string (${quote(value)})`;
  if (typeof value === 'number') return quote(value);
  return `${typeof value === 'object' ? 'an object' : `a ${typeof value}`}`;
}

/**
 * Thrown from inside a handler's dispatch (it knows the register, not the
 * device); the in-process backend turns it into a RegisterValueError that
 * names the plugin, the BAR and the offset of the access.
 */
export class HandlerValueProblem extends Error {
  readonly register: string;
  readonly size: number;
  readonly problem: string;

  constructor(register: string, size: number, problem: string) {
    super(`register '${register}' returned ${problem} for a ${size}-byte read`);
    this.register = register;
    this.size = size;
    this.problem = problem;
  }
}

const LIMIT = [0, 0x100, 0x1_0000, 0, 0x1_0000_0000];

/** Throws a HandlerValueProblem unless `value` is a valid `size`-byte register value. */
export function checkedRegisterValue<T>(value: T, size: number, register: string): T {
  // The common case first, kept cheap: it runs on every slow-path register read.
  if (typeof value === 'number' && size <= 4 && value >= 0 && value < LIMIT[size]! && Number.isInteger(value))
    return value;
  const problem = badRegisterValue(value, size);
  if (problem !== null) throw new HandlerValueProblem(register, size, problem);
  return value;
}

/** A register handler returned a value that is not a register value. */
export class RegisterValueError extends ModelError {
  constructor(plugin: string, where: string, cause: HandlerValueProblem) {
    super(
      'ERR_MODEL_REGISTER_VALUE',
      `${plugin}: ${where}: ${cause.message}`,
      cause.size === 8
        ? 'return a bigint 0..2^64-1 from 8-byte reads'
        : `return an integer number 0..0x${(2 ** (8 * cause.size) - 1).toString(16)} from ${cause.size}-byte reads`,
    );
  }
}

const guarded = new WeakSet<RegionOps>();

function canReplaceRead(ops: RegionOps): boolean {
  const own = Object.getOwnPropertyDescriptor(ops, 'read');
  return own ? own.writable === true : Object.isExtensible(ops);
}
const guardedViews = new WeakSet<FlatView>();

/**
 * Wraps the read handler of `ops` (once) so what it returns is checked.
 * Frozen ops cannot be wrapped: those dispatch as memory-core does (masked).
 */
function guardOps(ops: RegionOps, register: string): void {
  if (guarded.has(ops) || !canReplaceRead(ops)) return;
  const read = ops.read;
  ops.read = (offset, size) => checkedRegisterValue(read.call(ops, offset, size), size, register);
  guarded.add(ops);
}

/**
 * Guards every I/O region a view dispatches to. Cheap per access: a view is
 * walked once, and a new view exists only after the tree changed (so a
 * register a model adds later is guarded on the first access after it).
 */
export function guardHandlers(view: FlatView): void {
  if (guardedViews.has(view)) return;
  for (const range of view.ranges) {
    const ops = range.region.ops;
    if (ops) guardOps(ops, range.region.name);
  }
  guardedViews.add(view);
}
