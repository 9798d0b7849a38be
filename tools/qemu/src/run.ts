/**
 * One QEMU 11.1 run against `vfio-ts serve`: starts the server on a socket,
 * boots QEMU (chrooted in the trixie root, in a private mount namespace) with
 * `vfio-user-pci` on that socket, a shared memfd memory backend and the vfio
 * trace on, runs HMP commands through QMP and/or a guest script, then quits
 * QEMU, stops the server and returns what every part said. One deadline
 * covers the whole run: whichever part is running when it passes is named in
 * the error, and QEMU and the server are killed.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { QemuError } from './errors.js';
import { CACHE_DIR, prepareQemu, QEMU_TIER_ROOT, type QemuImage } from './prepare.js';
import { QmpClient } from './qmp.js';
import { ServeProcess } from './server.js';

/** The device's address on QEMU's PCI bus 0: every run puts it in slot 4. */
export const DEVICE_BDF = '0000:00:04.0';
export const DEVICE_ID = 'dev0';

export interface RunQemuOptions {
  /** What `vfio-ts serve` serves: sim:<name> or sim:<path>.json. */
  readonly device: string;
  /**
   * A server already running (ServeProcess.start) to attach to instead of
   * starting one: the run neither stops nor kills it, and its socket is used.
   */
  readonly server?: ServeProcess;
  /** Folder for the server's socket (default: the run's own folder). Bound into QEMU's root at the same path. */
  readonly socketDir?: string;
  /** A shell script run by the guest's busybox after the modules load; the guest powers off after it. Needs firmware 'seabios'. */
  readonly guestScript?: string;
  /**
   * HMP commands, run in order through QMP: with `none` once QEMU is up (-S,
   * nothing executes); with `seabios` once the firmware has assigned the BARs
   * (it printed its boot attempt), or with a guest script after the script
   * ended (QEMU is kept with -no-shutdown).
   */
  readonly hmp?: readonly string[];
  /** Drives QEMU further after the `hmp` commands (system_reset, xp, ...). */
  readonly monitor?: (qmp: QmpClient, run: LiveRun) => Promise<void>;
  /** `none`: -S, no code runs; `seabios`: the machine runs its firmware (and the guest kernel, if any). */
  readonly firmware: 'none' | 'seabios';
  readonly timeoutSeconds: number;
  /** Guest RAM (a shared memfd backend) in MiB; default 256, 512 with a guest script. */
  readonly memoryMiB?: number;
  /** Extra trace patterns for QEMU (added to vfio_user_* and vfio_*). */
  readonly trace?: readonly string[];
  readonly image?: QemuImage;
}

export interface HmpResult {
  readonly command: string;
  readonly output: string;
}

/** What a `monitor` callback can see while QEMU runs. */
export interface LiveRun {
  readonly server: ServeProcess;
  readonly qemuPid: number;
  readonly runDir: string;
  /** QEMU's trace so far. */
  trace(): string;
}

export interface QemuRunResult {
  readonly hmp: readonly HmpResult[];
  /** QEMU's `-trace` output (vfio_user_*, vfio_*). */
  readonly trace: string;
  readonly qemuStderr: string;
  readonly qemuExit: { code: number | null; signal: NodeJS.Signals | null };
  readonly serverOutput: string;
  /** The server's exit (both null when the run attached to a given server and left it running). */
  readonly serverExit: { code: number | null; signal: NodeJS.Signals | null };
  /** SeaBIOS's debug console (isa-debugcon 0x402). */
  readonly firmwareLog: string;
  /** The guest's serial console (kernel and init lines); '' without a guest. */
  readonly consoleLog: string;
  /** What the guest script printed; '' without a guest. */
  readonly guestOutput: string;
  /** The guest script's exit code; null without a guest. */
  readonly guestExitCode: number | null;
  /** Guest uptime when the script started and ended (init's own lines). */
  readonly guestSeconds: { start: number | null; end: number | null };
  readonly wallSeconds: number;
}

let runCounter = 0;

function readIfExists(path: string): string {
  return existsSync(path) ? readFileSync(path, 'utf8') : '';
}

/** The base initramfs followed by a second cpio archive holding /run.sh (the kernel unpacks both). */
function composeInitrd(image: QemuImage, runDir: string, script: string): string {
  const stage = join(runDir, 'initrd-stage');
  mkdirSync(stage);
  writeFileSync(join(stage, 'run.sh'), script, { mode: 0o755 });
  const extra = spawnSync('sh', ['-c', `cd "${stage}" && echo run.sh | "${image.busybox}" cpio -o -H newc`], {
    maxBuffer: 16 * 1024 * 1024,
  });
  if (extra.status !== 0) {
    throw new QemuError('ERR_QEMU_PREPARE', `busybox cpio failed: ${extra.stderr}`, { part: 'prepare' });
  }
  const initrd = join(runDir, 'initrd.cpio');
  // The kernel takes a following cpio archive only at a 4-byte aligned offset
  // (init/initramfs.c: `!(this_header & 3)`), otherwise it reads it as a
  // compressed one ("invalid magic"): pad the gzip'd base with zeros, which it skips.
  const base = readFileSync(image.initrd);
  const padding = Buffer.alloc((4 - (base.length % 4)) % 4);
  writeFileSync(initrd, Buffer.concat([base, padding, extra.stdout]));
  rmSync(stage, { recursive: true });
  return initrd;
}

function qemuArgs(o: RunQemuOptions, image: QemuImage, runDir: string, socketPath: string): string[] {
  const memory = o.memoryMiB ?? (o.guestScript ? 512 : 256);
  const device = {
    driver: 'vfio-user-pci',
    id: DEVICE_ID,
    addr: '04.0',
    socket: { path: socketPath, type: 'unix' },
  };
  const args = [
    '-machine',
    'q35,accel=tcg,memory-backend=mem',
    '-m',
    `${memory}M`,
    '-object',
    `memory-backend-memfd,id=mem,size=${memory}M,share=on`,
    '-nodefaults',
    '-display',
    'none',
    '-device',
    JSON.stringify(device),
    '-qmp',
    `unix:${join(runDir, 'qmp.sock')},server=on,wait=off`,
    '-chardev',
    `file,id=firmware,path=${join(runDir, 'firmware.log')}`,
    '-device',
    'isa-debugcon,iobase=0x402,chardev=firmware',
    '-D',
    join(runDir, 'trace.log'),
  ];
  for (const t of ['vfio_user_*', 'vfio_*', ...(o.trace ?? [])]) args.push('-trace', t);
  if (o.firmware === 'none') args.push('-S');
  if (o.guestScript !== undefined) {
    args.push(
      '-kernel',
      image.kernel,
      '-initrd',
      join(runDir, 'initrd.cpio'),
      '-append',
      'console=ttyS0 panic=-1 quiet loglevel=4',
      '-no-reboot',
      '-no-shutdown',
      '-serial',
      `file:${join(runDir, 'console.log')}`,
      '-serial',
      `file:${join(runDir, 'output.log')}`,
    );
  }
  return args;
}

/** Boots QEMU against `vfio-ts serve <device>` and returns what every part said (see RunQemuOptions). */
export async function runQemu(
  o: RunQemuOptions,
): Promise<QemuRunResult & { cleanup(): void; runDir: string }> {
  if (o.guestScript !== undefined && o.firmware !== 'seabios') {
    throw new QemuError(
      'ERR_QEMU_OPTIONS',
      'a guest script needs firmware "seabios" (the machine must run)',
      {
        part: 'options',
      },
    );
  }
  if (!(o.timeoutSeconds > 0)) {
    throw new QemuError('ERR_QEMU_OPTIONS', `timeoutSeconds must be positive, not ${o.timeoutSeconds}`, {
      part: 'options',
    });
  }
  const image = o.image ?? prepareQemu();
  const started = Date.now();
  const deadline = started + o.timeoutSeconds * 1000;
  const runDir = join(CACHE_DIR, 'runs', `${process.pid}-${++runCounter}`);
  rmSync(runDir, { recursive: true, force: true });
  mkdirSync(runDir, { recursive: true });
  const cleanup = () => rmSync(runDir, { recursive: true, force: true });
  const socketPath = o.server ? o.server.socketPath : join(o.socketDir ?? runDir, 'dev.sock');
  const socketDir = dirname(socketPath);
  const ownsServer = o.server === undefined;
  const tracePath = join(runDir, 'trace.log');
  const consolePath = join(runDir, 'console.log');

  let phase = 'server start';
  let server: ServeProcess | undefined;
  let qemu: ChildProcess | undefined;
  let qmp: QmpClient | undefined;
  let qemuStderr = '';
  let qemuExit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  let qemuExited: Promise<void> = Promise.resolve();
  const details = () => ({
    part: phase,
    consoleLog: readIfExists(consolePath),
    qemuStderr,
    trace: readIfExists(tracePath),
    serverOutput: server?.output ?? '',
  });
  const killAll = async () => {
    qmp?.close();
    if (qemu && !qemuExit) qemu.kill('SIGKILL');
    await qemuExited;
    if (ownsServer) await server?.stop(1000);
  };
  /** Awaits `p` unless the deadline passes first (then everything is killed and the phase is named). */
  const within = async <T>(p: Promise<T>): Promise<T> => {
    let timer: NodeJS.Timeout | undefined;
    const expired = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new QemuError('ERR_QEMU_TIMEOUT', '', { part: phase })),
        Math.max(0, deadline - Date.now()),
      );
    });
    try {
      return await Promise.race([p, expired]);
    } finally {
      clearTimeout(timer);
    }
  };

  try {
    server = o.server ?? (await within(ServeProcess.start({ device: o.device, socketPath })));
    if (o.guestScript !== undefined) composeInitrd(image, runDir, o.guestScript);

    phase = 'QEMU start';
    const binds = [...new Set([runDir, socketDir, dirname(image.kernel)])].flatMap((d) => ['--bind', d]);
    qemu = spawn(
      'bash',
      [
        join(QEMU_TIER_ROOT, 'guest', 'run-in-root.sh'),
        image.root,
        ...binds,
        image.qemu,
        ...qemuArgs(o, image, runDir, socketPath),
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    const child = qemu;
    child.stdout?.setEncoding('utf8').on('data', (s: string) => {
      qemuStderr += s;
    });
    child.stderr?.setEncoding('utf8').on('data', (s: string) => {
      qemuStderr += s;
    });
    qemuExited = new Promise((resolve) => {
      child.on('exit', (code, signal) => {
        qemuExit = { code, signal };
        resolve();
      });
      child.on('error', (err) => {
        qemuStderr += `spawn error: ${err.message}\n`;
        qemuExit = { code: null, signal: null };
        resolve();
      });
    });
    const exitedEarly = () =>
      new QemuError(
        'ERR_QEMU_EXIT',
        `QEMU exited (${qemuExit?.code ?? qemuExit?.signal}) during ${phase}${qemuStderr ? `: ${qemuStderr.trim().split('\n')[0]}` : ''}`,
        details(),
      );
    const live: LiveRun = {
      server,
      qemuPid: child.pid ?? -1,
      runDir,
      trace: () => readIfExists(tracePath),
    };

    phase = 'QEMU start (monitor connection)';
    qmp = await within(
      QmpClient.connect(join(runDir, 'qmp.sock'), o.timeoutSeconds * 1000, () => qemuExit === undefined),
    ).catch((err: unknown) => {
      if (err instanceof QemuError) throw err;
      throw qemuExit ? exitedEarly() : new QemuError('ERR_QEMU_MONITOR', String(err), details());
    });
    const monitor = qmp;

    let guestExitCode: number | null = null;
    if (o.guestScript !== undefined) {
      phase = 'guest script (boot, modules, script, poweroff)';
      await within(
        Promise.race([
          monitor.waitForEvent('SHUTDOWN', o.timeoutSeconds * 1000),
          qemuExited.then(() => null),
        ]),
      );
      if (qemuExit) throw exitedEarly();
      const m = readIfExists(consolePath).match(/qemu-init: exit (\d+)/);
      if (!m) {
        throw new QemuError(
          'ERR_QEMU_GUEST',
          'the guest stopped without reporting the script exit code (boot failure or panic; console below)',
          details(),
        );
      }
      guestExitCode = Number(m[1]);
    } else if (o.firmware === 'seabios') {
      phase = 'firmware (SeaBIOS assigning BARs and trying to boot)';
      await within(
        (async () => {
          while (!/Booting from|No bootable device/.test(readIfExists(join(runDir, 'firmware.log')))) {
            if (qemuExit) throw exitedEarly();
            await new Promise((r) => setTimeout(r, 50));
          }
        })(),
      );
    }

    const hmp: HmpResult[] = [];
    for (const command of o.hmp ?? []) {
      phase = `monitor command "${command}"`;
      hmp.push({ command, output: await within(monitor.hmp(command)) });
    }
    if (o.monitor) {
      phase = 'monitor callback';
      await within(o.monitor(monitor, live));
    }
    if (qemuExit) throw exitedEarly();

    phase = 'QEMU quit';
    await monitor.execute('quit').catch(() => {}); // the reply may race the socket's close
    await within(qemuExited);
    monitor.close();
    phase = 'server stop';
    const serverRunning = server.running;
    const serverExit = ownsServer ? await within(server.stop()) : { code: null, signal: null };
    if (!serverRunning) {
      throw new QemuError('ERR_QEMU_SERVER', 'vfio-ts serve died while QEMU ran', details());
    }
    const guestOutput = readIfExists(join(runDir, 'output.log'));
    const consoleLog = readIfExists(consolePath);
    const uptime = (what: string) => {
      const m = consoleLog.match(new RegExp(`qemu-init: uptime ([0-9.]+) s: ${what}`));
      return m ? Number(m[1]) : null;
    };
    return {
      hmp,
      trace: readIfExists(tracePath),
      qemuStderr,
      qemuExit: qemuExit ?? { code: null, signal: null },
      serverOutput: server.output,
      serverExit,
      firmwareLog: readIfExists(join(runDir, 'firmware.log')),
      consoleLog,
      guestOutput,
      guestExitCode,
      guestSeconds: { start: uptime('running the script'), end: uptime('script exited') },
      wallSeconds: (Date.now() - started) / 1000,
      runDir,
      cleanup,
    };
  } catch (err) {
    const failedPhase = phase;
    await killAll();
    phase = failedPhase;
    const d = details();
    cleanup();
    if (err instanceof QemuError && err.code === 'ERR_QEMU_TIMEOUT') {
      throw new QemuError(
        'ERR_QEMU_TIMEOUT',
        `${failedPhase} did not finish within the run's ${o.timeoutSeconds} s; QEMU and the server were killed`,
        d,
      );
    }
    if (err instanceof QemuError) {
      // What the failing part itself collected (e.g. a server that never started) wins where we have nothing.
      throw new QemuError(err.code, err.message, {
        ...d,
        consoleLog: d.consoleLog || err.consoleLog,
        qemuStderr: d.qemuStderr || err.qemuStderr,
        trace: d.trace || err.trace,
        serverOutput: d.serverOutput || err.serverOutput,
      });
    }
    throw new QemuError('ERR_QEMU_EXIT', `${failedPhase}: ${(err as Error).message}`, d);
  }
}
