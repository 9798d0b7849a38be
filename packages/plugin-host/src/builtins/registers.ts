/** Small helpers for models: registers with behaviour as memory-core I/O regions over BAR memory. */
import { MemoryRegion, memoryRead, memoryWrite, type RamDeviceMemory } from '@vfio-ts/memory-core';
import { checkedRegisterValue } from '../handler-values.js';

export interface RegisterHandlers {
  read?(memory: RamDeviceMemory): number;
  write?(value: number, memory: RamDeviceMemory): void;
}

// Through memory-core's windowed accessors: a register may sit past the first
// window of a large BAR's memory, where `memory.u32` does not reach.
function load(memory: RamDeviceMemory, offset: number, size: 1 | 2 | 4): number {
  return memoryRead(memory, offset, size) as number;
}

function store(memory: RamDeviceMemory, offset: number, size: 1 | 2 | 4, value: number): void {
  memoryWrite(memory, offset, size === 4 ? value >>> 0 : value, size);
}

/** Bytes `at`..`at + n` of a register value (little endian), as a narrower access sees them. */
function bytesOf(value: number, at: number, n: number): number {
  return ((value >>> (8 * at)) & (2 ** (8 * n) - 1)) >>> 0;
}

/** `current` with bytes `at`..`at + n` replaced by `value`: what a narrower write leaves in the register. */
function mergeBytes(current: number, at: number, value: number, n: number): number {
  const mask = ((2 ** (8 * n) - 1) << (8 * at)) >>> 0;
  return ((current & ~mask) | ((value << (8 * at)) & mask)) >>> 0;
}

/**
 * A register of `size` bytes at `offset` whose slow-path accesses run
 * handlers; its value lives in BAR memory (what a mapping sees). Handlers
 * see whole-register values: a narrower read gets its bytes of what `read`
 * returns, a narrower write is merged into the bytes in memory before
 * `write` runs, so both paths agree on every byte of the register.
 */
export function register(
  bar: MemoryRegion,
  memory: RamDeviceMemory,
  offset: number,
  size: 1 | 2 | 4,
  name: string,
  h: RegisterHandlers,
): void {
  const region = MemoryRegion.io(name, size, {
    read: (at, n) => {
      const value = h.read ? checkedRegisterValue(h.read(memory), size, name) : load(memory, offset, size);
      return n === size ? value : bytesOf(value, at, n);
    },
    write: (at, v, n) => {
      const value = n === size ? Number(v) : mergeBytes(load(memory, offset, size), at, Number(v), n);
      if (h.write) h.write(value, memory);
      else store(memory, offset, size, value);
    },
    impl: { min: 1, max: size },
    valid: { min: 1, max: size },
  });
  bar.addSubregionOverlap(offset, region, 1);
}

export function register32(
  bar: MemoryRegion,
  memory: RamDeviceMemory,
  offset: number,
  name: string,
  h: RegisterHandlers,
): void {
  register(bar, memory, offset, 4, name, h);
}

export function put32(memory: RamDeviceMemory, offset: number, value: number): void {
  memoryWrite(memory, offset, value >>> 0, 4);
}

export function put64(memory: RamDeviceMemory, offset: number, value: bigint): void {
  memoryWrite(memory, offset, Number(value & 0xffffffffn), 4);
  memoryWrite(memory, offset + 4, Number(value >> 32n), 4);
}

export function bytesFromHex(hex: string): Uint8Array {
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = Number.parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return out;
}
