/**
 * `vfio-ts serve <device> --socket <path>`: serves a device over vfio-user
 * (QEMU's vfio-user-pci, or `vfio-ts ... vfio-user:<path>`) until Ctrl-C or
 * SIGTERM, which disconnect the client and remove the socket. A kernel
 * device (a PCI address) is opened with the global kernel options
 * (--iommu-interface, --sysfs-root) and served through KernelServedDevice:
 * the client maps its BARs through the device fd, gets its interrupts from
 * the kernel, and the device DMAs into the client's memory through the IOMMU.
 */
import type { VfioDeviceIo } from '@vfio-ts/vfio-sys';
import { KernelServedDevice, VfioUserServer } from '@vfio-ts/vfio-user';
import { type Command, Option } from 'commander';
import type { DeviceArg } from '../device-arg.js';
import { UsageError } from '../errors.js';
import { createOutput } from '../output.js';

interface ServeOptions {
  socket: string;
  allowUid: string[];
  json: boolean;
  mmap: boolean;
}

const collect = (value: string, previous: string[]) => [...previous, value];

function parseUid(text: string): number {
  const uid = Number(text);
  if (!/^\d+$/.test(text) || !Number.isSafeInteger(uid) || uid > 0xfffffffe)
    throw new UsageError(`--allow-uid ${text} is not a uid`, 'give a numeric user id, e.g. --allow-uid 1000');
  return uid;
}

/** Serves `device` on `socket` until one of `signals` arrives; resolves after cleanup. */
export async function serveUntilSignal(
  device: VfioDeviceIo,
  socket: string,
  options: { allowUids: number[]; log: (line: string) => void; ready: (server: VfioUserServer) => void },
  signals: readonly NodeJS.Signals[] = ['SIGINT', 'SIGTERM'],
): Promise<NodeJS.Signals> {
  // This process only serves: after each answer, wait briefly for the next request in a blocking
  // receive instead of going back to the event loop (one recvmsg and one sendmsg per request).
  const server = VfioUserServer.listen(device, socket, {
    allowUids: options.allowUids,
    log: options.log,
    holdMs: 2,
  });
  try {
    options.ready(server);
    return await new Promise<NodeJS.Signals>((resolve) => {
      const handlers = signals.map((s) => {
        const h = () => {
          for (const [sig, fn] of handlers) process.off(sig, fn);
          resolve(s);
        };
        process.on(s, h);
        return [s, h] as const;
      });
    });
  } finally {
    server.close();
  }
}

export function registerServe(
  program: Command,
  stdout: NodeJS.WriteStream,
  stderr: NodeJS.WriteStream,
  parse: (text: string, cmd: Command) => DeviceArg,
): void {
  program
    .command('serve')
    .description(
      'serve a device over vfio-user (QEMU vfio-user-pci, or vfio-user:<socket>) until Ctrl-C: a model, or a real device on vfio-pci (its BARs mapped by the client, its interrupts and DMA straight between the kernel and the client; the client must give its DMA memory as fds, e.g. QEMU with a shared memfd memory backend)',
    )
    .argument(
      '<device>',
      'PCI address (0000:01:00.0, bound to vfio-pci; --iommu-interface and --sysfs-root apply), sim:<name> or sim:<path>.json',
    )
    .requiredOption('--socket <path>', 'Unix socket to listen on (created 0600; a stale socket is replaced)')
    .addOption(
      new Option('--allow-uid <uid>', 'also accept clients running as this uid (repeatable)')
        .default([])
        .argParser(collect),
    )
    .option(
      '--no-mmap',
      'kernel devices: offer no region for mmap, so the client is never given the device fd (every access a message; nothing of the device outlives the connection)',
    )
    .action(async (text: string, _opts: unknown, cmd: Command) => {
      const opts = cmd.optsWithGlobals() as ServeOptions;
      const out = createOutput({ json: opts.json, stdout });
      const allowUids = opts.allowUid.map(parseUid);
      const arg = parse(text, cmd);
      if (!opts.mmap && !arg.openKernel)
        throw new UsageError('--no-mmap applies to kernel devices (a PCI address)');
      const kernel = arg.openKernel
        ? new KernelServedDevice(arg.openKernel(), { shareDeviceFd: opts.mmap })
        : null;
      const device: VfioDeviceIo = kernel ?? arg.open();
      // What the listening line says about the device: the kernel backend names its IOMMU interface and node.
      const via = kernel ? ` (kernel, ${kernel.interface} ${kernel.path})` : '';
      try {
        const signal = await serveUntilSignal(device, opts.socket, {
          allowUids,
          log: (line) => stderr.write(`vfio-ts serve: ${line}\n`),
          ready: (server) => {
            const backend = kernel ? { backend: 'kernel', iommuInterface: kernel.interface } : {};
            if (out.json)
              out.document({ device: arg.name, ...backend, socket: server.socketPath, listening: true });
            else out.line(`serving ${arg.name}${via} on ${server.socketPath} (Ctrl-C to stop)`);
          },
        });
        stderr.write(`vfio-ts serve: ${signal}: client disconnected, socket removed\n`);
      } finally {
        device.close();
      }
    });
}
