/**
 * Runs one command inside the VM tier's guest: Debian's kernel under QEMU
 * (TCG, emulated Intel IOMMU) with the test devices bound to vfio-pci, the
 * host's root filesystem seen read-only under a tmpfs overlay, and a shared
 * read-write folder (/vmio in the guest) for the command, its exit code and
 * any result files. A guest that does not finish within the timeout is killed
 * and the error carries its console log.
 */
import { spawn, spawnSync } from 'node:child_process';
import {
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readFileSync,
  readSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { GUEST_DEVICES } from './devices.js';

export const VM_ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
export const REPO_ROOT = join(VM_ROOT, '..', '..');

export class VmError extends Error {
  override readonly name = 'VmError';
  constructor(
    readonly code: 'ERR_VM_PREPARE' | 'ERR_VM_BOOT' | 'ERR_VM_TIMEOUT',
    message: string,
    readonly consoleLog = '',
  ) {
    super(message);
  }
}

/**
 * The kernels the tier boots: Debian 12's 6.1 (the container/group interface
 * only) and bookworm-backports' 6.12 with iommufd and VFIO device cdevs
 * rebuilt from Debian's source (both interfaces).
 */
export const KERNEL_LINES = ['6.1', '6.12'] as const;
export type KernelLine = (typeof KERNEL_LINES)[number];

export function isKernelLine(value: string): value is KernelLine {
  return (KERNEL_LINES as readonly string[]).includes(value);
}

export interface GuestImage {
  readonly line: KernelLine;
  readonly kernel: string;
  readonly initrd: string;
  readonly qemu: string;
}

/** Builds (or finds in the cache) the kernel and initramfs of a kernel line: guest/prepare.sh. */
export function prepareGuest(line: KernelLine = '6.1'): GuestImage {
  const r = spawnSync('bash', [join(VM_ROOT, 'guest', 'prepare.sh'), line], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const values = Object.fromEntries(
    (r.stdout ?? '')
      .split('\n')
      .map((l) => l.split('='))
      .filter((kv) => kv.length === 2),
  ) as Record<string, string>;
  if (r.status !== 0 || !values.kernel || !values.initrd || !values.qemu) {
    throw new VmError(
      'ERR_VM_PREPARE',
      `tools/vm/guest/prepare.sh ${line} failed (exit ${r.status ?? r.signal}); its messages are above`,
    );
  }
  return { line, kernel: values.kernel, initrd: values.initrd, qemu: values.qemu };
}

export interface RunOptions {
  /** Shell command run in the guest (by /bin/sh, as root, chrooted into the overlay). */
  readonly command: string;
  /** Working directory in the guest (default: the repository root, which the guest sees at the same path). */
  readonly cwd?: string;
  /** Extra environment for the command. */
  readonly env?: Readonly<Record<string, string>>;
  /** Ends a guest that runs longer (default 600 s). */
  readonly timeoutSeconds?: number;
  /** Called with the command's output as it arrives. */
  readonly onOutput?: (chunk: string) => void;
  /** Guest RAM in MiB (default 2048). */
  readonly memoryMiB?: number;
  /** Which kernel boots (default 6.1); ignored when `image` is given. */
  readonly kernel?: KernelLine;
  readonly image?: GuestImage;
}

export interface RunResult {
  readonly exitCode: number;
  /** What the command wrote to stdout and stderr. */
  readonly output: string;
  /** The guest's serial console (kernel and init messages). */
  readonly consoleLog: string;
  /** Guest uptime when the command started, as init reported it. */
  readonly bootSeconds: number | null;
  /** Guest uptime when the command ended. */
  readonly endSeconds: number | null;
  /** Host wall time from QEMU's start to its exit. */
  readonly wallSeconds: number;
  /** The shared folder (/vmio in the guest), removed by `cleanup()`. */
  readonly ioDir: string;
  cleanup(): void;
}

function qemuArgs(image: GuestImage, ioDir: string, memoryMiB: number): string[] {
  const binds = GUEST_DEVICES.filter((d) => d.vfio).map((d) => d.bdf);
  const args = [
    '-machine',
    'q35,accel=tcg',
    '-cpu',
    'max',
    '-smp',
    '2',
    '-m',
    String(memoryMiB),
    '-nodefaults',
    '-display',
    'none',
    '-no-reboot',
    '-kernel',
    image.kernel,
    '-initrd',
    image.initrd,
    '-append',
    `console=ttyS0 quiet intel_iommu=on iommu=pt panic=-1 vfio_ts.bind=${binds.join(',')}`,
    '-device',
    'intel-iommu,intremap=on',
    '-fsdev',
    'local,id=hostroot,path=/,security_model=none,readonly=on,multidevs=remap',
    '-device',
    'virtio-9p-pci,fsdev=hostroot,mount_tag=hostroot,addr=01.0',
    '-fsdev',
    `local,id=vmio,path=${ioDir},security_model=none,multidevs=remap`,
    '-device',
    'virtio-9p-pci,fsdev=vmio,mount_tag=vmio,addr=02.0',
    '-drive',
    `if=none,id=nvme0,format=raw,file=${join(ioDir, 'nvme.img')}`,
    '-object',
    'memory-backend-ram,id=ivshmem0,size=4M',
    // The NICs are plugged into nothing: the tests only need their registers.
    '-netdev',
    'hubport,id=net0,hubid=0',
    '-netdev',
    'hubport,id=net1,hubid=1',
    '-serial',
    `file:${join(ioDir, 'console.log')}`,
    '-serial',
    `file:${join(ioDir, 'output.log')}`,
  ];
  for (const d of GUEST_DEVICES) args.push('-device', d.qemu);
  return args;
}

function shellQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/** Boots the guest, runs `command`, and returns its output and exit code once the guest has powered off. */
export async function runInGuest(options: RunOptions): Promise<RunResult> {
  const image = options.image ?? prepareGuest(options.kernel);
  const runs = join(VM_ROOT, '.cache', 'runs');
  mkdirSync(runs, { recursive: true });
  const ioDir = join(runs, `${process.pid}-${Date.now()}`);
  mkdirSync(ioDir);
  const cleanup = () => rmSync(ioDir, { recursive: true, force: true });
  const env = {
    PATH: `${dirname(process.execPath)}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin`,
    HOME: '/tmp',
    VFIO_TS_VM: '1',
    VFIO_TS_VM_IO: '/vmio',
    VFIO_TS_VM_KERNEL_LINE: image.line,
    ...options.env,
  };
  const script = [
    ...Object.entries(env).map(([k, v]) => `export ${k}=${shellQuote(v)}`),
    `cd ${shellQuote(options.cwd ?? REPO_ROOT)} || exit 125`,
    options.command,
    '',
  ].join('\n');
  writeFileSync(join(ioDir, 'command.sh'), script);
  writeFileSync(join(ioDir, 'nvme.img'), '');
  spawnSync('truncate', ['-s', '16M', join(ioDir, 'nvme.img')]);
  writeFileSync(join(ioDir, 'output.log'), '');

  const started = Date.now();
  const qemu = spawn(image.qemu, qemuArgs(image, ioDir, options.memoryMiB ?? 2048), {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let qemuStderr = '';
  qemu.stderr.setEncoding('utf8').on('data', (s: string) => {
    qemuStderr += s;
  });

  // Follow output.log while the guest runs.
  let outputRead = 0;
  const outputFd = openSync(join(ioDir, 'output.log'), 'r');
  const chunks: string[] = [];
  const decoder = new TextDecoder();
  const pump = () => {
    const buf = Buffer.alloc(65536);
    for (;;) {
      const n = readSync(outputFd, buf, 0, buf.length, outputRead);
      if (n <= 0) break;
      outputRead += n;
      const text = decoder.decode(buf.subarray(0, n), { stream: true });
      chunks.push(text);
      options.onOutput?.(text);
    }
  };
  const follow = setInterval(pump, 200);

  const timeoutMs = (options.timeoutSeconds ?? 600) * 1000;
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    qemu.kill('SIGKILL');
  }, timeoutMs);
  const exit = await new Promise<number | null>((resolve) => {
    qemu.on('error', (err) => {
      qemuStderr += String(err);
      resolve(null);
    });
    qemu.on('exit', (code) => resolve(code));
  });
  clearTimeout(timer);
  clearInterval(follow);
  pump();
  closeSync(outputFd);
  const wallSeconds = (Date.now() - started) / 1000;

  const consolePath = join(ioDir, 'console.log');
  const consoleLog = existsSync(consolePath) ? readFileSync(consolePath, 'utf8') : '';
  const uptime = (what: string) => {
    const m = consoleLog.match(new RegExp(`vm-init: uptime ([0-9.]+) s: ${what}`));
    return m ? Number(m[1]) : null;
  };
  const codePath = join(ioDir, 'exit-code');
  // On failure the run folder goes too: the error carries the console log.
  if (timedOut || !existsSync(codePath)) cleanup();
  if (timedOut) {
    throw new VmError(
      'ERR_VM_TIMEOUT',
      `the guest did not finish within ${timeoutMs / 1000} s and was killed (guest console below)`,
      consoleLog,
    );
  }
  if (!existsSync(codePath)) {
    throw new VmError(
      'ERR_VM_BOOT',
      `the guest stopped without running the command (QEMU exit ${exit}${qemuStderr ? `: ${qemuStderr.trim()}` : ''}); guest console below`,
      consoleLog,
    );
  }
  return {
    exitCode: Number(readFileSync(codePath, 'utf8').trim()),
    output: chunks.join('') + decoder.decode(),
    consoleLog,
    bootSeconds: uptime('running the command'),
    endSeconds: uptime('command exited'),
    wallSeconds,
    ioDir,
    cleanup,
  };
}
