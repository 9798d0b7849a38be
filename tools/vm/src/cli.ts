/**
 * The VM tier's entry point.
 *   tsx tools/vm/src/cli.ts run [--kernel 6.1|6.12] [--timeout S] -- <command...>   run a command in the guest
 *   tsx tools/vm/src/cli.ts test [vitest args...]   run the VM tests in a guest per kernel line
 * The test run boots each kernel of VFIO_TS_VM_KERNELS (default "6.1 6.12") in turn.
 * Exit status: the command's own, or 1 when the guest could not be built,
 * booted or finished in time (the reason and the guest console are printed).
 */
import { copyFileSync, existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import {
  isKernelLine,
  KERNEL_LINES,
  type KernelLine,
  prepareGuest,
  REPO_ROOT,
  type RunResult,
  runInGuest,
  VM_ROOT,
  VmError,
} from './guest.js';

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
  let kernel: KernelLine = '6.1';
  // `pnpm vm` puts a `--` before everything: options may follow it.
  if (args[0] === '--' && (args[1] === '--kernel' || args[1] === '--timeout')) args = args.slice(1);
  if (args[0] === '--kernel') {
    const value = args[1] ?? '';
    if (!isKernelLine(value)) throw new Error(`--kernel takes ${KERNEL_LINES.join(' or ')}, got "${value}"`);
    kernel = value;
    args = args.slice(2);
  }
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
    kernel,
    timeoutSeconds,
    onOutput: (s) => process.stdout.write(s),
  });
  report(r, 'the command');
  r.cleanup();
  return r.exitCode;
}

/** The kernel lines a test run boots: VFIO_TS_VM_KERNELS ("6.1 6.12" by default). */
function testLines(): KernelLine[] {
  const words = (process.env.VFIO_TS_VM_KERNELS ?? KERNEL_LINES.join(' ')).split(/[\s,]+/).filter(Boolean);
  const bad = words.filter((w) => !isKernelLine(w));
  if (bad.length > 0 || words.length === 0)
    throw new Error(
      `VFIO_TS_VM_KERNELS lists ${bad.join(', ') || 'nothing'}: use ${KERNEL_LINES.join(' and/or ')}`,
    );
  return words as KernelLine[];
}

async function test(args: string[]): Promise<number> {
  let status = 0;
  for (const line of testLines()) {
    const code = await testOn(line, args);
    if (code !== 0) status = code;
  }
  return status;
}

interface Pass {
  /** The interface the device tests open through (tools/vm/test/helpers.ts reads it). */
  readonly iface: 'group' | 'cdev';
  readonly report: string;
  /** The benchmark lines of the pass (test-support/bench's JSON lines, $VFIO_TS_BENCH_OUT). */
  readonly bench: string;
  /** vitest filters and options of this pass. */
  readonly select: readonly string[];
}

/**
 * What runs on each kernel: the files over the group interface (cdev.vm.test.ts
 * only on 6.12, which has cdevs), then on 6.12 the device tests again over the cdev.
 */
function passes(line: KernelLine): Pass[] {
  if (line === '6.1')
    return [
      {
        iface: 'group',
        report: 'vitest.json',
        bench: 'bench.jsonl',
        select: ['--exclude', 'test/cdev.vm.test.ts'],
      },
    ];
  return [
    // cli.vm.test.ts spawns a node per command (~10 s each under TCG): on 6.12 the
    // in-process cli-interfaces file covers the CLI. The vfio-user proxy (a server
    // process per pass) runs over the group on 6.1 and over the cdev here.
    {
      iface: 'group',
      report: 'vitest-6.12.json',
      bench: 'bench-6.12.jsonl',
      select: ['--exclude', 'test/cli.vm.test.ts', '--exclude', 'test/vfio-user-proxy.vm.test.ts'],
    },
    {
      iface: 'cdev',
      report: 'vitest-6.12-cdev.json',
      bench: 'bench-6.12-cdev.jsonl',
      select: ['kernel-backend', 'pci-vfio', 'vfio-user-proxy'],
    },
  ];
}

/** The benchmark figures a pass printed (the tests print them too, amid vitest's output): one line each. */
function printBench(file: string, line: KernelLine, iface: string): void {
  if (!existsSync(file)) return;
  for (const text of readFileSync(file, 'utf8').split('\n').filter(Boolean)) {
    const r = JSON.parse(text) as { id: string; what: string; figure: number; unit: string; detail?: string };
    const figure = Math.abs(r.figure) >= 10 ? r.figure.toFixed(1) : r.figure.toFixed(2);
    console.error(
      `vm: bench ${line} ${iface}: ${r.id} ${r.what}: ${figure}${r.unit}${r.detail ? ` (${r.detail})` : ''}`,
    );
  }
}

const quote = (a: string) => `'${a.replace(/'/g, `'\\''`)}'`;

async function testOn(line: KernelLine, args: string[]): Promise<number> {
  const runs = passes(line);
  for (const p of runs) rmSync(join(RESULTS, p.report), { force: true });
  const image = prepareGuest(line);
  const vitest = join(REPO_ROOT, 'node_modules', 'vitest', 'vitest.mjs');
  if (!existsSync(vitest))
    throw new Error(`${vitest} is missing: run ./scripts/test (or pnpm install) first`);
  // Each pass runs even when an earlier one failed; the command fails if any did.
  // A vitest killed by a signal before it wrote its report (seen once: SIGSEGV
  // of the main process under TCG on 6.12, no test had failed) runs once more,
  // saying so; a pass that fails its tests is never run again.
  const command = [
    'status=0',
    ...runs.flatMap((p) => {
      const select = (args.length > 0 ? args : p.select).map(quote).join(' ');
      const pass = `VFIO_TS_VM_INTERFACE=${p.iface} VFIO_TS_VM_REPORT=${p.report} VFIO_TS_BENCH_OUT=/vmio/${p.bench} node ${vitest} run --config tools/vm/vitest.config.ts ${select}`;
      return [
        `${pass}; rc=$?`,
        `if [ $rc -gt 128 ] && [ ! -f /vmio/${p.report} ]; then`,
        `  echo "vm: vitest (${p.iface} pass) died by signal $((rc - 128)) before writing its report; running the pass once more" >&2`,
        `  ${pass} || status=1`,
        'elif [ $rc -ne 0 ]; then status=1; fi',
      ];
    }),
    'exit $status',
  ].join('\n');
  const r = await runInGuest({
    image,
    command,
    // The guest's environment is its own; pass on what changes how vitest reports.
    env: Object.fromEntries(
      ['CI', 'NO_COLOR', 'FORCE_COLOR'].flatMap((k) => (process.env[k] ? [[k, process.env[k]!]] : [])),
    ),
    timeoutSeconds: 540,
    onOutput: (s) => process.stdout.write(s),
  });
  report(r, `the VM tests on ${line} (${runs.map((p) => p.iface).join(', then ')})`);
  for (const p of runs) {
    printBench(join(r.ioDir, p.bench), line, p.iface);
    const json = join(r.ioDir, p.report);
    if (existsSync(json)) {
      mkdirSync(RESULTS, { recursive: true });
      copyFileSync(json, join(RESULTS, p.report));
    } else {
      console.error(`vm: the guest wrote no vitest report (tools/vm/.test-results/${p.report})`);
    }
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
