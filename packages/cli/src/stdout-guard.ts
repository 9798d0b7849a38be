/**
 * What a Unix tool does when its output goes away: a reader that closed the
 * pipe (`vfio-ts inspect sim:nvme | head -1`) means stop, quietly; any other
 * write failure (ENOSPC on a full disk, EIO) is one line on stderr and exit 1.
 * Node reports both as an 'error' event on stdout, which, unhandled, crashes
 * with a stack trace.
 */
export interface StdoutGuardTarget {
  on(event: 'error', listener: (err: NodeJS.ErrnoException) => void): unknown;
}

export function guardStdout(
  stdout: StdoutGuardTarget,
  stderr: { write(text: string): unknown },
  exit: (code: number) => void,
): void {
  let done = false;
  stdout.on('error', (err) => {
    if (done) return; // a destroyed stream may report the same failure again
    done = true;
    if (err.code === 'EPIPE') {
      exit(0);
      return;
    }
    const reason = err.code === 'ENOSPC' ? 'no space left on device' : err.message;
    stderr.write(`vfio-ts: cannot write output: ${reason} (${err.code ?? 'error'})\n`);
    exit(1);
  });
}
