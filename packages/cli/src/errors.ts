/** Exit codes and the errors that choose them: 2 for bad usage or input, 1 for a failed operation. */
import { ModelError } from '@vfio-ts/plugin-host';
import { VfioArgumentError, VfioError } from '@vfio-ts/vfio-sys';

export const EXIT_OK = 0;
export const EXIT_FAILED = 1;
export const EXIT_USAGE = 2;

/** Bad arguments or input: exit 2. */
export class UsageError extends Error {
  readonly hint: string | undefined;

  constructor(message: string, hint?: string) {
    super(message);
    this.name = 'UsageError';
    this.hint = hint;
  }
}

const INPUT_CODES = new Set([
  'ERR_VFIO_BDF',
  'ERR_VFIO_PERMISSION',
  'ERR_VFIO_NO_DEVICE',
  'ERR_VFIO_DEVICE_IN_USE',
]);

/** Which exit code an error means. */
export function exitCodeOf(err: unknown): number {
  if (err instanceof UsageError || err instanceof ModelError || err instanceof VfioArgumentError)
    return EXIT_USAGE;
  if (err instanceof VfioError && INPUT_CODES.has(err.code)) return EXIT_USAGE;
  return EXIT_FAILED;
}

/** One or two lines: what went wrong, then what to do. */
export function describeError(err: unknown): string {
  if (err instanceof UsageError) return err.hint ? `${err.message}\n  ${err.hint}` : err.message;
  if (err instanceof VfioError && err.hint) {
    const what = err.message.endsWith(`: ${err.hint}`)
      ? err.message.slice(0, -(err.hint.length + 2))
      : err.message;
    return `${what}\n  ${err.hint}`;
  }
  return err instanceof Error ? err.message : String(err);
}
