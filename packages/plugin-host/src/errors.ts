import { VfioError } from '@vfio-ts/vfio-sys';

/** A device model, spec file or plugin is malformed or used wrongly. */
export class ModelError extends VfioError {
  constructor(code: string, message: string, hint?: string) {
    super(code, message, hint === undefined ? {} : { hint });
  }
}
