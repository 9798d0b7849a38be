/** Opens a device argument, realizes it as a VfioPciDevice, runs `fn`, and always tears it down. */
import { VfioPciDevice, type VfioPciOptions } from '@vfio-ts/pci-vfio';
import type { DeviceArg } from './device-arg.js';

function realize(arg: DeviceArg, options: VfioPciOptions): VfioPciDevice {
  const io = arg.open();
  try {
    return VfioPciDevice.realize(io, arg.name, options);
  } catch (err) {
    io.close();
    throw err;
  }
}

export function withRealized<T>(arg: DeviceArg, options: VfioPciOptions, fn: (dev: VfioPciDevice) => T): T {
  const dev = realize(arg, options);
  try {
    return fn(dev);
  } finally {
    dev.teardown();
  }
}

/** As `withRealized`, for work that awaits (the device is torn down when the promise settles). */
export async function withRealizedAsync<T>(
  arg: DeviceArg,
  options: VfioPciOptions,
  fn: (dev: VfioPciDevice) => Promise<T>,
): Promise<T> {
  const dev = realize(arg, options);
  try {
    return await fn(dev);
  } finally {
    dev.teardown();
  }
}
