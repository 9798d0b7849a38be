/** Small helpers for models: registers with behaviour as memory-core I/O regions over BAR memory. */
import { MemoryRegion, type RamDeviceMemory } from '@vfio-ts/memory-core';

export interface RegisterHandlers {
  read?(memory: RamDeviceMemory): number;
  write?(value: number, memory: RamDeviceMemory): void;
}

function load(memory: RamDeviceMemory, offset: number, size: 1 | 2 | 4): number {
  return size === 4 ? memory.u32[offset / 4]! : size === 2 ? memory.u16[offset / 2]! : memory.u8[offset]!;
}

function store(memory: RamDeviceMemory, offset: number, size: 1 | 2 | 4, value: number): void {
  if (size === 4) memory.u32[offset / 4] = value >>> 0;
  else if (size === 2) memory.u16[offset / 2] = value;
  else memory.u8[offset] = value;
}

/**
 * A register of `size` bytes at `offset` whose slow-path accesses run
 * handlers; its value lives in BAR memory (what a mapping sees). Narrower
 * accesses are combined into the register's size as QEMU does for impl.min.
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
    read: () => (h.read ? h.read(memory) : load(memory, offset, size)),
    write: (_o, value) => {
      if (h.write) h.write(Number(value), memory);
      else store(memory, offset, size, Number(value));
    },
    impl: { min: size, max: size },
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
  memory.u32[offset / 4] = value >>> 0;
}

export function put64(memory: RamDeviceMemory, offset: number, value: bigint): void {
  memory.u32[offset / 4] = Number(value & 0xffffffffn);
  memory.u32[offset / 4 + 1] = Number(value >> 32n);
}

export function bytesFromHex(hex: string): Uint8Array {
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = Number.parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return out;
}
