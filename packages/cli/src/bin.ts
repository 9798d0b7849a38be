import { run } from './program.js';
import { guardStdout } from './stdout-guard.js';

guardStdout(process.stdout, process.stderr, (code) => process.exit(code));

run(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`vfio-ts: internal error: ${String(err)}\n`);
    process.exitCode = 1;
  },
);
