import { VfioError } from '@vfio-ts/vfio-sys';

/** A PCI device cannot be realized or used as asked. */
export class VfioPciError extends VfioError {
  readonly device: string;

  constructor(code: string, device: string, message: string, hint?: string, cause?: unknown) {
    super(code, `${device}: ${message}`, {
      ...(hint === undefined ? {} : { hint }),
      ...(cause === undefined ? {} : { cause }),
    });
    this.device = device;
  }
}

/**
 * Teardown (or the rollback of a failed realize) met one or more errors. It
 * still ran every step; `errors` holds each one in the order met (as
 * AggregateError's `errors`), and `cause` is the first. When a realize
 * failed, its error comes first and the rollback's follow.
 */
export class VfioPciTeardownError extends VfioPciError {
  readonly errors: readonly unknown[];

  constructor(device: string, errors: readonly unknown[], realizeError?: unknown) {
    const all = realizeError === undefined ? [...errors] : [realizeError, ...errors];
    const met = errors.map(describe).join('; ');
    super(
      'ERR_VFIO_PCI_TEARDOWN',
      device,
      realizeError === undefined
        ? `teardown met ${errors.length} error${errors.length === 1 ? '' : 's'}: ${met}`
        : `realize failed (${describe(realizeError)}), and releasing what it had acquired met ${errors.length} more: ${met}`,
      'every release step was still run; see `errors` for each failure',
      all[0],
    );
    this.errors = all;
  }
}

function describe(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
