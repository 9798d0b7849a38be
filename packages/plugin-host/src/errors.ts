import { VfioError } from '@vfio-ts/vfio-sys';

/** A device model, spec file or plugin is malformed or used wrongly. */
export class ModelError extends VfioError {
  constructor(code: string, message: string, hint?: string, cause?: unknown) {
    super(code, message, {
      ...(hint === undefined ? {} : { hint }),
      ...(cause === undefined ? {} : { cause }),
    });
  }
}

/** A bad value as messages quote it: at most a short prefix (a 10 MB string is not echoed). */
export function quote(value: unknown): string {
  let text: string;
  try {
    text = typeof value === 'string' ? JSON.stringify(value.slice(0, 41)) : String(value);
  } catch {
    text = Object.prototype.toString.call(value); // objects whose toString throws
  }
  return text.length > 40 ? `${text.slice(0, 40)}...` : text;
}
