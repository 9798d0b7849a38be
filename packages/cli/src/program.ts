/** The `vfio-ts` command line: parsing, backend choice, composition, printing. */
import { resolve } from 'node:path';
import { formatMtree } from '@vfio-ts/memory-core';
import {
  DEFAULT_SYSFS_ROOT,
  IOMMU_INTERFACE_CHOICES,
  type IommuInterfaceChoice,
  type SysfsOptions,
} from '@vfio-ts/vfio-sys';
import { Command, CommanderError, Option } from 'commander';
import {
  type AccessTarget,
  parseAccess,
  parseWriteValue,
  readRegister,
  writeRegister,
} from './commands/access.js';
import { bench } from './commands/bench.js';
import { bind, unbind } from './commands/bind.js';
import { configSpaceReport, printConfigSpace } from './commands/config-space.js';
import { inspectReport, printInspect } from './commands/inspect.js';
import { list } from './commands/list.js';
import { registerServe } from './commands/serve.js';
import { parseDeviceArg } from './device-arg.js';
import { parseDeviceOptions } from './device-options.js';
import { describeError, EXIT_OK, errorReport, exitCodeOf, UsageError } from './errors.js';
import { hex } from './numbers.js';
import { createOutput, type Output } from './output.js';
import { withRealized, withRealizedAsync } from './realize.js';
import { startTracing } from './trace-printer.js';
import { VERSION } from './version.js';

interface GlobalOptions {
  trace: string[];
  json: boolean;
  option: string[];
  debug: boolean;
  sysfsRoot?: string;
  iommuInterface: IommuInterfaceChoice;
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

/** The one sysfs root every command that reads or writes sysfs uses. */
function sysfsOptions(g: GlobalOptions): SysfsOptions {
  return g.sysfsRoot === undefined ? {} : { sysfsRoot: g.sysfsRoot };
}

function device(text: string, g: GlobalOptions) {
  const opts = parseDeviceOptions(g.option);
  return { arg: parseDeviceArg(text, opts.sim, sysfsOptions(g), g.iommuInterface), pci: opts.pci };
}

/** Writing the real /sys needs root; a fake tree (--sysfs-root) is the user's own. */
function requireRoot(action: string, sysfs: SysfsOptions): void {
  if (resolve(sysfs.sysfsRoot ?? DEFAULT_SYSFS_ROOT) !== DEFAULT_SYSFS_ROOT) return;
  if (typeof process.getuid === 'function' && process.getuid() !== 0) {
    throw new UsageError(`${action} needs root (it writes to /sys/bus/pci)`, 'run it with sudo');
  }
}

const DEVICE_HELP = 'PCI address (0000:01:00.0), sim:<name>, sim:<path>.json or vfio-user:<socket>';

/** bind/unbind act on kernel devices only. */
function kernelAddress(action: string, text: string): string {
  const arg = parseDeviceArg(text);
  if (arg.backend !== 'kernel') throw new UsageError(`${action} takes a PCI address, not ${text}`);
  return arg.name;
}

export function buildProgram(ctx: RunContext): Command {
  const program = new Command('vfio-ts')
    .description(
      'Inspect and drive VFIO devices: kernel (/dev/vfio), simulated (sim:<name>) or, later, vfio-user.',
    )
    .version(VERSION, '-V, --version', "print vfio-ts's version")
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
    .addOption(
      new Option(
        '--sysfs-root <dir>',
        'sysfs tree to read and write instead of /sys (procfs and /run are read beside it: <dir>/../proc, <dir>/../run)',
      ).env('VFIO_TS_SYSFS_ROOT'),
    )
    .addOption(
      new Option(
        '--iommu-interface <mode>',
        'kernel devices: auto (the device cdev with /dev/iommu when the kernel offers them, else the group), group or cdev',
      )
        .choices(IOMMU_INTERFACE_CHOICES)
        .default('auto'),
    )
    .configureOutput({
      writeOut: (s) => ctx.stdout.write(s),
      // With --json a parse error is reported by run() as one JSON document, so commander stays quiet.
      writeErr: (s) => {
        if ((program.opts() as Partial<GlobalOptions>).json !== true) ctx.stderr.write(s);
      },
    })
    .exitOverride()
    .showHelpAfterError('(see --help)');

  program
    .command('list')
    .description('IOMMU groups with their devices, and whether each group is viable for VFIO')
    .option('--all', 'include devices not bound to vfio-pci', false)
    .action((opts: { all: boolean }, cmd: Command) => {
      const { g, out } = setup(cmd, ctx);
      list(out, { all: opts.all, warn: (line) => ctx.stderr.write(`${line}\n`), ...sysfsOptions(g) });
    });

  program
    .command('inspect')
    .description('device info, regions, IRQs, MSI-X, BARs and quirks of a realized device')
    .argument('<device>', DEVICE_HELP)
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
    .argument('<device>', DEVICE_HELP)
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

  program
    .command('config')
    .description(
      'config space as lspci -vv -xxx shows it: header, capability and extended capability lists, the bytes vfio-ts virtualizes, hex dump',
    )
    .argument('<device>', DEVICE_HELP)
    .option('-x, --extended', 'dump the whole space (4096 bytes on PCI Express), as lspci -xxxx', false)
    .action((text: string, opts: { extended: boolean }, cmd: Command) => {
      const { g, out } = setup(cmd, ctx);
      const { arg, pci } = device(text, g);
      withRealized(arg, pci, (dev) => {
        const report = configSpaceReport(dev, arg);
        if (out.json) out.document(report);
        else printConfigSpace(report, dev, out, opts);
      });
    });

  const access = (name: 'read' | 'write') => {
    const cmd = program
      .command(name)
      .description(
        name === 'read'
          ? 'read one register through the memory tree'
          : 'write one register through the memory tree',
      )
      .argument('<device>', DEVICE_HELP)
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
        // Every argument is checked before the device is opened: a typo must not touch hardware.
        const target: AccessTarget = parseAccess(barText!, offsetText!, opts.size);
        const value = name === 'write' ? parseWriteValue(valueText!, target.size) : null;
        const { arg, pci } = device(text!, g);
        const options = opts.slow ? { ...pci, 'x-no-mmap': true } : pci;
        const result = withRealized(arg, options, (dev) =>
          value === null ? readRegister(dev, target) : writeRegister(dev, target, value),
        );
        // 64-bit values go out as decimal strings (JSON numbers lose precision above 2^53).
        const shown = target.size === 8 ? result.value.toString() : Number(result.value);
        if (out.json) out.document({ value: shown, path: result.path, region: result.region });
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
    .argument('<device>', DEVICE_HELP)
    .option('--iterations <n>', 'fast-path reads to time (the slow path does 1/20 as many)', '1000000')
    .option('--bar <index>', 'time a register of this BAR (default: the first BAR with a mapped register)')
    .action(async (text: string, opts: { iterations: string; bar?: string }, cmd: Command) => {
      const { g, out } = setup(cmd, ctx);
      const iterations = Number(opts.iterations);
      if (!Number.isSafeInteger(iterations) || iterations < 1000)
        throw new UsageError(`--iterations ${opts.iterations} must be an integer >= 1000`);
      const bar = opts.bar === undefined ? undefined : parseAccess(opts.bar, '0', '4').bar;
      const { arg, pci } = device(text, g);
      // Ctrl-C stops the loop at the next chunk; the device is torn down and the cursor given back.
      const interrupt = new AbortController();
      const onSigint = () => interrupt.abort();
      process.once('SIGINT', onSigint);
      let r: Awaited<ReturnType<typeof bench>>;
      try {
        r = await withRealizedAsync(arg, pci, (dev) =>
          bench(dev, {
            iterations,
            ...(bar === undefined ? {} : { bar }),
            progress: !out.json && ctx.stderr.isTTY === true ? ctx.stderr : null,
            signal: interrupt.signal,
          }),
        );
      } finally {
        process.off('SIGINT', onSigint);
      }
      if (out.json) out.document(r);
      else {
        out.table(
          ['path', 'ns/read', 'register', 'region'],
          [
            ['fast (mapped)', r.fastNs.toFixed(1), `BAR ${r.bar} +${hex(r.offset)}`, r.fastRegion],
            ['slow (device)', r.slowNs.toFixed(1), `BAR ${r.bar} +${hex(r.offset)}`, r.slowRegion],
          ],
        );
        out.line(`ratio slow/fast: ${r.ratio.toFixed(1)}x`);
      }
    });

  program
    .command('bind')
    .description('bind a PCI device to vfio-pci (driver_override), refusing when that would hurt the host')
    .argument('<bdf>', 'PCI address of the device, e.g. 0000:01:00.0')
    .option(
      '--force',
      'bind even though a safety check failed (a mounted filesystem or active swap on it, a network interface up, the boot display or a GPU in use, no IOMMU group, a group shared with host drivers); the result is still checked',
      false,
    )
    .option(
      '--group',
      'also bind the other devices of its IOMMU group that are on host drivers (each checked the same way)',
      false,
    )
    .action((bdf: string, opts: { force: boolean; group: boolean }, cmd: Command) => {
      const { g, out } = setup(cmd, ctx);
      const sysfs = sysfsOptions(g);
      requireRoot('bind', sysfs);
      bind(out, kernelAddress('bind', bdf), { ...sysfs, force: opts.force, group: opts.group });
    });

  program
    .command('unbind')
    .description('give a PCI device back from vfio-pci to the driver it had before bind')
    .argument('<bdf>', 'PCI address of the device, e.g. 0000:01:00.0')
    .option(
      '--force',
      'unbind even while a process holds the device open through /dev/vfio (the kernel then waits until it lets go)',
      false,
    )
    .action((bdf: string, opts: { force: boolean }, cmd: Command) => {
      const { g, out } = setup(cmd, ctx);
      const sysfs = sysfsOptions(g);
      requireRoot('unbind', sysfs);
      unbind(out, kernelAddress('unbind', bdf), { ...sysfs, force: opts.force });
    });
  registerServe(program, ctx.stdout, ctx.stderr, (text, cmd) => device(text, setup(cmd, ctx).g).arg);
  return program;
}

/** Runs the CLI; resolves to the exit code. */
export async function run(
  argv: readonly string[],
  ctx: RunContext = { stdout: process.stdout, stderr: process.stderr },
): Promise<number> {
  const program = buildProgram(ctx);
  let stopTracing = () => {};
  // Tracing starts once the arguments parsed (commander is the one parser of --trace), before the action runs.
  program.hook('preAction', (_program, action) => {
    const { trace } = action.optsWithGlobals() as GlobalOptions;
    stopTracing = startTracing(trace, (line) => ctx.stderr.write(`${line}\n`));
  });
  try {
    await program.parseAsync([...argv], { from: 'user' });
    return EXIT_OK;
  } catch (err) {
    const code = exitCodeOf(err);
    if (code === EXIT_OK) return code; // --help, --version
    const g = program.opts() as GlobalOptions;
    if (err instanceof CommanderError && !g.json) return code; // commander has said it already
    if (g.json) {
      ctx.stdout.write(`${JSON.stringify({ error: errorReport(err) }, null, 2)}\n`);
    } else {
      ctx.stderr.write(`vfio-ts: ${describeError(err)}\n`);
      if (g.debug && err instanceof Error && err.stack) ctx.stderr.write(`${err.stack}\n`);
    }
    return code;
  } finally {
    stopTracing();
  }
}
