import { VfioError } from '@vfio-ts/vfio-sys';

/** A PCI device cannot be realized or used as asked. */
export class VfioPciError extends VfioError {
  readonly device: string;

  constructor(code: string, device: string, message: string, hint?: string) {
    super(code, `${device}: ${message}`, hint === undefined ? {} : { hint });
    this.device = device;
  }
}
