/** Exit codes and the errors that choose them: 2 for bad usage or input, 1 for a failed operation. */
import { ModelError } from '@vfio-ts/plugin-host';
import { BindRefusedError, VfioArgumentError, VfioError } from '@vfio-ts/vfio-sys';
import { CommanderError } from 'commander';

export const EXIT_OK = 0;
export const EXIT_FAILED = 1;
export const EXIT_USAGE = 2;
/** 128 + SIGINT, as a shell reports a command stopped by Ctrl-C. */
export const EXIT_INTERRUPTED = 130;

/** Bad arguments or input: exit 2. */
export class UsageError extends Error {
  readonly code = 'ERR_USAGE';
  readonly hint: string | undefined;

  constructor(message: string, hint?: string) {
    super(message);
    this.name = 'UsageError';
    this.hint = hint;
  }
}

/** The user pressed Ctrl-C: the command stopped and cleaned up. */
export class InterruptedError extends Error {
  readonly code = 'ERR_INTERRUPTED';
  readonly hint = undefined;

  constructor(what: string) {
    super(`${what} interrupted`);
    this.name = 'InterruptedError';
  }
}

const INPUT_CODES = new Set([
  'ERR_VFIO_BDF',
  'ERR_VFIO_PERMISSION',
  'ERR_VFIO_NO_DEVICE',
  'ERR_VFIO_DEVICE_IN_USE',
  'ERR_VFIO_SYSFS_ROOT',
]);

/** Which exit code an error means. */
export function exitCodeOf(err: unknown): number {
  if (err instanceof CommanderError) return err.exitCode === 0 ? EXIT_OK : EXIT_USAGE;
  if (err instanceof InterruptedError) return EXIT_INTERRUPTED;
  if (err instanceof UsageError || err instanceof ModelError || err instanceof VfioArgumentError)
    return EXIT_USAGE;
  if (err instanceof VfioError && INPUT_CODES.has(err.code)) return EXIT_USAGE;
  return EXIT_FAILED;
}

export interface ErrorReport {
  readonly code: string;
  /** What went wrong. */
  readonly message: string;
  /** What to do about it, when there is something to say. */
  readonly hint: string | null;
  /** A refused bind: each reason with its own hint. */
  readonly hazards?: readonly { kind: string; bdf: string; message: string; hint: string }[];
}

/** The error as data: `--json` prints it as `{"error": ...}`, the human form is made from it. */
export function errorReport(err: unknown): ErrorReport {
  if (err instanceof CommanderError) {
    // commander.help is help shown for a missing command; its message is only a placeholder.
    const message = err.code === 'commander.help' ? 'no command given' : err.message.replace(/^error: /, '');
    return { code: 'ERR_USAGE', message, hint: 'see vfio-ts --help' };
  }
  if (err instanceof UsageError || err instanceof InterruptedError)
    return { code: err.code, message: err.message, hint: err.hint ?? null };
  if (err instanceof BindRefusedError) {
    const hazards = err.hazards.map((h) => ({ kind: h.kind, bdf: h.bdf, message: h.message, hint: h.hint }));
    return {
      code: err.code,
      message: `refusing to bind ${err.bdf} to vfio-pci`,
      hint: 'fix each reason as it says; --force binds anyway',
      hazards,
    };
  }
  if (err instanceof VfioError) {
    // VfioError appends ": <hint>" to its message; keep the two apart.
    const message =
      err.hint && err.message.endsWith(`: ${err.hint}`)
        ? err.message.slice(0, -(err.hint.length + 2))
        : err.message;
    return { code: err.code, message, hint: err.hint ?? null };
  }
  if (err instanceof Error) return { code: 'ERR_INTERNAL', message: err.message, hint: null };
  return { code: 'ERR_INTERNAL', message: String(err), hint: null };
}

/** What went wrong, then what to do (a refused bind lists each reason with its hint). */
export function describeError(err: unknown): string {
  const r = errorReport(err);
  if (r.hazards)
    return [
      `${r.message}:`,
      ...r.hazards.flatMap((h) => [`  - ${h.message}`, `    ${h.hint}`]),
      `  ${r.hint}`,
    ].join('\n');
  return r.hint ? `${r.message}\n  ${r.hint}` : r.message;
}
