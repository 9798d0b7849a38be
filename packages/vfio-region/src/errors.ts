import { VfioError } from '@vfio-ts/vfio-sys';

/** A region used after finalize, or set up wrongly. */
export class VfioRegionError extends VfioError {
  readonly device: string;
  readonly region: number;

  constructor(code: string, device: string, region: number, message: string, hint?: string) {
    super(code, `${device} region ${region}: ${message}`, hint === undefined ? {} : { hint });
    this.device = device;
    this.region = region;
  }
}
