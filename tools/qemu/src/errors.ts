/**
 * Why a QEMU tier run failed. Each error names the part that failed and
 * carries what that part said: the guest console, QEMU's stderr and trace,
 * the server's output.
 */
export type QemuErrorCode =
  /** runQemu was given options that cannot work together (a guest script without firmware, a bad timeout). */
  | 'ERR_QEMU_OPTIONS'
  /** guest/prepare.sh failed: the root, QEMU, the kernel or the initramfs could not be built. */
  | 'ERR_QEMU_PREPARE'
  /** `vfio-ts serve` did not start listening, or died while QEMU ran. */
  | 'ERR_QEMU_SERVER'
  /** QEMU exited before the run was over (bad arguments, a realize error, a crash). */
  | 'ERR_QEMU_EXIT'
  /** A monitor (QMP) command failed or the monitor could not be reached. */
  | 'ERR_QEMU_MONITOR'
  /** The guest stopped without reporting the script's exit code (boot failure, panic). */
  | 'ERR_QEMU_GUEST'
  /** Some part did not finish in time; `part` says which, everything was killed. */
  | 'ERR_QEMU_TIMEOUT';

export interface QemuErrorDetails {
  /** The part that failed or hung: prepare, server, qemu, monitor, guest. */
  readonly part: string;
  readonly consoleLog?: string;
  readonly qemuStderr?: string;
  readonly trace?: string;
  readonly serverOutput?: string;
}

export class QemuError extends Error {
  override readonly name = 'QemuError';
  readonly part: string;
  readonly consoleLog: string;
  readonly qemuStderr: string;
  readonly trace: string;
  readonly serverOutput: string;

  constructor(
    readonly code: QemuErrorCode,
    message: string,
    details: QemuErrorDetails,
  ) {
    super(message);
    this.part = details.part;
    this.consoleLog = details.consoleLog ?? '';
    this.qemuStderr = details.qemuStderr ?? '';
    this.trace = details.trace ?? '';
    this.serverOutput = details.serverOutput ?? '';
  }

  /** The message followed by the tails of what each part said (for test failures and the CLI). */
  describe(lines = 40): string {
    const tail = (s: string) => s.trimEnd().split('\n').slice(-lines).join('\n');
    const parts = [`${this.code} (${this.part}): ${this.message}`];
    if (this.qemuStderr) parts.push(`----- QEMU stderr -----\n${tail(this.qemuStderr)}`);
    if (this.serverOutput) parts.push(`----- vfio-ts serve -----\n${tail(this.serverOutput)}`);
    if (this.consoleLog) parts.push(`----- guest console -----\n${tail(this.consoleLog)}`);
    if (this.trace) parts.push(`----- QEMU trace (last ${lines} lines) -----\n${tail(this.trace)}`);
    return parts.join('\n');
  }
}
