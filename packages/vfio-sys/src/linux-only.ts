/**
 * vfio-ts drives Linux's VFIO and loads glibc by its Linux name. On another OS
 * that load fails as an opaque dlopen error, so the modules that load libc call
 * this first and say what is wrong instead.
 */
import { VfioError } from './errors.js';

export function assertLinux(platform: string = process.platform): void {
  if (platform === 'linux') return;
  throw new VfioError('ERR_VFIO_PLATFORM', `vfio-ts needs Linux (this is ${platform})`, {
    hint: 'VFIO is a Linux kernel interface: run on a Linux host or in a Linux VM',
  });
}
