/**
 * The VM tier's entry point.
 *   tsx tools/vm/src/cli.ts run [--timeout S] -- <command...>   run a command in the guest
 *   tsx tools/vm/src/cli.ts test [vitest args...]               run the VM tests in the guest
 * Exit status: the command's own, or 1 when the guest could not be built,
 * booted or finished in time (the reason and the guest console are printed).
 */
import { copyFileSync, existsSync, mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { prepareGuest, REPO_ROOT, type RunResult, runInGuest, VM_ROOT, VmError } from './guest.js';

const RESULTS = join(VM_ROOT, '.test-results');

function report(r: RunResult, what: string): void {
  const boot = r.bootSeconds === null ? '?' : r.bootSeconds.toFixed(1);
  const body =
    r.bootSeconds !== null && r.endSeconds !== null ? (r.endSeconds - r.bootSeconds).toFixed(1) : '?';
  console.error(
    `vm: ${what} exited with ${r.exitCode}; guest boot ${boot} s, command ${body} s (guest uptime), ${r.wallSeconds.toFixed(1)} s wall in all`,
  );
}

function failWith(err: unknown): never {
  if (err instanceof VmError) {
    console.error(`vm: FAILED (${err.code}): ${err.message}`);
    if (err.consoleLog) {
      const tail = err.consoleLog.split('\n').slice(-80).join('\n');
      console.error(`----- guest console (last 80 lines) -----\n${tail}\n-----`);
    }
  } else {
    console.error('vm: FAILED:', err);
  }
  process.exit(1);
}

async function run(args: string[]): Promise<number> {
  let timeoutSeconds = 600;
  if (args[0] === '--timeout') {
    timeoutSeconds = Number(args[1]);
    if (!Number.isFinite(timeoutSeconds) || timeoutSeconds <= 0)
      throw new Error(`--timeout needs a number of seconds, got "${args[1]}"`);
    args = args.slice(2);
  }
  if (args[0] === '--') args = args.slice(1);
  if (args.length === 0) throw new Error('usage: run [--timeout S] -- <command...>');
  const r = await runInGuest({
    command: args.join(' '),
    timeoutSeconds,
    onOutput: (s) => process.stdout.write(s),
  });
  report(r, 'the command');
  r.cleanup();
  return r.exitCode;
}

async function test(args: string[]): Promise<number> {
  rmSync(join(RESULTS, 'vitest.json'), { force: true });
  const image = prepareGuest();
  const vitest = join(REPO_ROOT, 'node_modules', 'vitest', 'vitest.mjs');
  if (!existsSync(vitest))
    throw new Error(`${vitest} is missing: run ./scripts/test (or pnpm install) first`);
  const quoted = args.map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(' ');
  const r = await runInGuest({
    image,
    command: `node ${vitest} run --config tools/vm/vitest.config.ts ${quoted}`,
    // The guest's environment is its own; pass on what changes how vitest reports.
    env: Object.fromEntries(
      ['CI', 'NO_COLOR', 'FORCE_COLOR'].flatMap((k) => (process.env[k] ? [[k, process.env[k]!]] : [])),
    ),
    timeoutSeconds: 540,
    onOutput: (s) => process.stdout.write(s),
  });
  report(r, 'the VM tests');
  const json = join(r.ioDir, 'vitest.json');
  if (existsSync(json)) {
    mkdirSync(RESULTS, { recursive: true });
    copyFileSync(json, join(RESULTS, 'vitest.json'));
  } else {
    console.error('vm: the guest wrote no vitest report (tools/vm/.test-results/vitest.json)');
  }
  r.cleanup();
  return r.exitCode;
}

const [mode, ...rest] = process.argv.slice(2);
try {
  if (mode === 'run') process.exitCode = await run(rest);
  else if (mode === 'test') process.exitCode = await test(rest);
  else {
    console.error('usage: cli.ts run [--timeout S] -- <command...> | cli.ts test [vitest args...]');
    process.exitCode = 2;
  }
} catch (err) {
  failWith(err);
}
