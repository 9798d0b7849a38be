import type { RamDeviceMemory, RamWindow } from '../src/index.js';

/**
 * RAM-device memory the way a vfio-sys MappedArea presents it, without a
 * mapping (memory-core imports nothing of ours): `size` bytes seen through
 * windows of `windowBytes`, each an ArrayBuffer made on first use, so a
 * 64 GiB BAR costs only the windows a test touches. `made` lists them.
 */
export function windowedMemory(size: number, windowBytes = 2 ** 16): RamDeviceMemory & { made: number[] } {
  const windows = new Map<number, RamWindow>();
  const made: number[] = [];
  const window = (index: number): RamWindow => {
    let w = windows.get(index);
    if (w === undefined) {
      const length = Math.min(windowBytes, size - index * windowBytes);
      if (!Number.isInteger(index) || index < 0 || length <= 0) throw new RangeError(`no window ${index}`);
      const b = new ArrayBuffer(length);
      w = {
        u8: new Uint8Array(b),
        u16: new Uint16Array(b, 0, Math.floor(length / 2)),
        u32: new Uint32Array(b, 0, Math.floor(length / 4)),
        u64: new BigUint64Array(b, 0, Math.floor(length / 8)),
      };
      windows.set(index, w);
      made.push(index);
    }
    return w;
  };
  return { ...window(0), size, windowBytes, window, made };
}
