/** Opens a device argument, realizes it as a VfioPciDevice, runs `fn`, and always tears it down. */
import { VfioPciDevice, type VfioPciOptions } from '@vfio-ts/pci-vfio';
import type { DeviceArg } from './device-arg.js';

export function withRealized<T>(arg: DeviceArg, options: VfioPciOptions, fn: (dev: VfioPciDevice) => T): T {
  const io = arg.open();
  let dev: VfioPciDevice;
  try {
    dev = VfioPciDevice.realize(io, arg.name, options);
  } catch (err) {
    io.close();
    throw err;
  }
  try {
    return fn(dev);
  } finally {
    dev.teardown();
  }
}
