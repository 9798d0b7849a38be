/** The `vfio-ts` command line: parsing, backend choice, composition, printing. */
import { formatMtree } from '@vfio-ts/memory-core';
import { bindToVfioPci, unbindFromVfioPci } from '@vfio-ts/vfio-sys';
import { Command, CommanderError, Option } from 'commander';
import { type AccessTarget, parseAccess, readRegister, writeRegister } from './commands/access.js';
import { bench } from './commands/bench.js';
import { inspectReport, printInspect } from './commands/inspect.js';
import { list } from './commands/list.js';
import { parseDeviceArg } from './device-arg.js';
import { parseDeviceOptions } from './device-options.js';
import { describeError, EXIT_OK, EXIT_USAGE, exitCodeOf, UsageError } from './errors.js';
import { hex } from './numbers.js';
import { createOutput, type Output } from './output.js';
import { withRealized } from './realize.js';
import { startTracing } from './trace-printer.js';
import { VERSION } from './version.js';

interface GlobalOptions {
  trace: string[];
  json: boolean;
  option: string[];
  debug: boolean;
}

export interface RunContext {
  readonly stdout: NodeJS.WriteStream;
  readonly stderr: NodeJS.WriteStream;
}

const collect = (value: string, previous: string[]) => [...previous, value];

function setup(cmd: Command, ctx: RunContext): { g: GlobalOptions; out: Output } {
  const g = cmd.optsWithGlobals() as GlobalOptions;
  return { g, out: createOutput({ json: g.json, stdout: ctx.stdout }) };
}

function device(text: string, g: GlobalOptions) {
  const opts = parseDeviceOptions(g.option);
  return { arg: parseDeviceArg(text, opts.sim), pci: opts.pci };
}

function requireRoot(action: string): void {
  if (typeof process.getuid === 'function' && process.getuid() !== 0) {
    throw new UsageError(`${action} needs root (it writes to /sys/bus/pci)`, 'run it with sudo');
  }
}

export function buildProgram(ctx: RunContext): Command {
  const program = new Command('vfio-ts')
    .description(
      'Inspect and drive VFIO devices: kernel (/dev/vfio), simulated (sim:<name>) or, later, vfio-user.',
    )
    .version(VERSION, '--version')
    .addOption(
      new Option(
        '--trace <pattern>',
        'print trace events matching a QEMU -trace pattern (repeatable), e.g. vfio_region_*',
      )
        .default([])
        .argParser(collect),
    )
    .option('--json', 'print one JSON document on stdout', false)
    .addOption(
      new Option(
        '--option <key=value>',
        'device option by QEMU property name (repeatable), e.g. x-no-mmap=on',
      )
        .default([])
        .argParser(collect),
    )
    .option('--debug', 'show stack traces on errors', false)
    .configureOutput({ writeOut: (s) => ctx.stdout.write(s), writeErr: (s) => ctx.stderr.write(s) })
    .exitOverride()
    .showHelpAfterError('(see --help)');

  program
    .command('list')
    .description('IOMMU groups with their devices, and whether each group is viable for VFIO')
    .option('--all', 'include devices not bound to vfio-pci', false)
    .action((opts: { all: boolean }, cmd: Command) => {
      const { out } = setup(cmd, ctx);
      // VFIO_TS_SYSFS_ROOT points discovery at another sysfs tree (tests, chroots).
      const sysfsRoot = process.env.VFIO_TS_SYSFS_ROOT;
      list(out, sysfsRoot ? { all: opts.all, sysfsRoot } : { all: opts.all });
    });

  program
    .command('inspect')
    .description('device info, regions, IRQs, MSI-X, BARs and quirks of a realized device')
    .argument('<device>', 'PCI address, sim:<name>, sim:<path>.json or vfio-user:<socket>')
    .action((text: string, _opts: unknown, cmd: Command) => {
      const { g, out } = setup(cmd, ctx);
      const { arg, pci } = device(text, g);
      const report = withRealized(arg, pci, (dev) => inspectReport(dev, arg));
      if (out.json) out.document(report);
      else printInspect(report, out);
    });

  program
    .command('mtree')
    .description("the realized device in its PCI address spaces, as QEMU's info mtree")
    .argument('<device>')
    .option('-f, --flat', 'flat view (info mtree -f)', false)
    .option('-D, --disabled', 'show disabled regions too', false)
    .action((text: string, opts: { flat: boolean; disabled: boolean }, cmd: Command) => {
      const { g, out } = setup(cmd, ctx);
      const { arg, pci } = device(text, g);
      const tree = withRealized(arg, pci, (dev) =>
        formatMtree([dev.memory, dev.io], { flat: opts.flat, disabled: opts.disabled }),
      );
      if (out.json) out.document({ device: arg.name, flat: opts.flat, mtree: tree });
      else ctx.stdout.write(tree);
    });

  const access = (name: 'read' | 'write') => {
    const cmd = program
      .command(name)
      .description(
        name === 'read'
          ? 'read one register through the memory tree'
          : 'write one register through the memory tree',
      )
      .argument('<device>')
      .argument('<bar>', 'BAR index, 0-5')
      .argument('<offset>', 'offset in the BAR (decimal or 0x hex)');
    if (name === 'write') cmd.argument('<value>', 'value (decimal or 0x hex)');
    cmd
      .option('--size <bytes>', 'access size: 1, 2, 4 or 8', '4')
      .option('--slow', 'force the slow path (realize with x-no-mmap)', false)
      .action((...args: unknown[]) => {
        const c = args[args.length - 1] as Command;
        const opts = c.opts() as { size: string; slow: boolean };
        const [text, barText, offsetText, valueText] = args as string[];
        const { g, out } = setup(c, ctx);
        const target: AccessTarget = parseAccess(barText!, offsetText!, opts.size);
        const { arg, pci } = device(text!, g);
        const options = opts.slow ? { ...pci, 'x-no-mmap': true } : pci;
        const result = withRealized(arg, options, (dev) =>
          name === 'read' ? readRegister(dev, target) : writeRegister(dev, target, valueText!),
        );
        // 64-bit values go out as decimal strings (JSON numbers lose precision above 2^53).
        const value = target.size === 8 ? result.value.toString() : Number(result.value);
        if (out.json) out.document({ value, path: result.path, region: result.region });
        else
          out.line(
            `${name === 'read' ? '' : 'wrote '}${hex(result.value, target.size * 2)}  (${result.path} path, ${result.region})`,
          );
      });
  };
  access('read');
  access('write');

  program
    .command('bench')
    .description('fast-path (mapped) vs slow-path register reads on a device: ns per access and the ratio')
    .argument('<device>')
    .option('--iterations <n>', 'fast-path reads to time (the slow path does 1/20 as many)', '1000000')
    .action((text: string, opts: { iterations: string }, cmd: Command) => {
      const { g, out } = setup(cmd, ctx);
      const { arg, pci } = device(text, g);
      const iterations = Number(opts.iterations);
      if (!Number.isSafeInteger(iterations) || iterations < 1000)
        throw new UsageError(`--iterations ${opts.iterations} must be an integer >= 1000`);
      const r = withRealized(arg, pci, (dev) =>
        bench(dev, { iterations, progress: !out.json && ctx.stderr.isTTY === true }),
      );
      if (out.json) out.document(r);
      else {
        out.table(
          ['path', 'ns/read', 'register'],
          [
            ['fast (mapped)', r.fastNs.toFixed(1), `BAR ${r.bar} +${hex(r.offset)}`],
            ['slow (device)', r.slowNs.toFixed(1), `BAR ${r.bar} +${hex(r.offset)}`],
          ],
        );
        out.line(`ratio slow/fast: ${r.ratio.toFixed(1)}x`);
      }
    });

  for (const name of ['bind', 'unbind'] as const) {
    program
      .command(name)
      .description(
        name === 'bind'
          ? 'bind a PCI device to vfio-pci (driver_override)'
          : 'unbind a PCI device from vfio-pci and let the kernel reprobe it',
      )
      .argument('<bdf>')
      .option('--force', 'bind even if the device drives a network interface that is up', false)
      .action((bdf: string, opts: { force: boolean }, cmd: Command) => {
        const { out } = setup(cmd, ctx);
        const arg = parseDeviceArg(bdf);
        if (arg.backend !== 'kernel') throw new UsageError(`${name} takes a PCI address, not ${bdf}`);
        requireRoot(name);
        const change =
          name === 'bind' ? bindToVfioPci(arg.name, { force: opts.force }) : unbindFromVfioPci(arg.name);
        if (out.json) out.document(change);
        else out.line(`${change.bdf}: ${change.from ?? 'no driver'} -> ${change.to ?? 'kernel default'}`);
      });
  }
  return program;
}

/** Runs the CLI; resolves to the exit code. */
export async function run(
  argv: readonly string[],
  ctx: RunContext = { stdout: process.stdout, stderr: process.stderr },
): Promise<number> {
  const program = buildProgram(ctx);
  const traceIndex = argv.indexOf('--trace');
  const patterns: string[] = [];
  for (let i = 0; i < argv.length; i++) if (argv[i] === '--trace' && argv[i + 1]) patterns.push(argv[i + 1]!);
  for (const a of argv) if (a.startsWith('--trace=')) patterns.push(a.slice(8));
  const stop = startTracing(traceIndex >= 0 || patterns.length > 0 ? patterns : [], (line) =>
    ctx.stderr.write(`${line}\n`),
  );
  try {
    await program.parseAsync([...argv], { from: 'user' });
    return EXIT_OK;
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode === 0 ? EXIT_OK : EXIT_USAGE;
    ctx.stderr.write(`vfio-ts: ${describeError(err)}\n`);
    if (argv.includes('--debug') && err instanceof Error && err.stack) ctx.stderr.write(`${err.stack}\n`);
    return exitCodeOf(err);
  } finally {
    stop();
  }
}
