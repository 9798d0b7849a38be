/**
 * `vfio-ts serve <device> --socket <path>` as a child process, with the
 * server's trace events (`vfio_server_*`) on: what QEMU asked for, as the
 * server saw it.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { QemuError } from './errors.js';
import { REPO_ROOT } from './prepare.js';

export const CLI_BIN = join(REPO_ROOT, 'packages', 'cli', 'dist', 'bin.js');

export interface ServeOptions {
  /** What `vfio-ts serve` serves: sim:<name>, sim:<path>.json. */
  readonly device: string;
  readonly socketPath: string;
  /** Trace patterns for the server (default `vfio_server_*`). */
  readonly trace?: readonly string[];
  readonly startTimeoutMs?: number;
  /**
   * A Node program run instead of the CLI, with the CLI's argv
   * (`[--trace <p>]... serve <device> --socket <path>`), that prints a line
   * with `serving ` once it listens: a server built from the packages' APIs.
   */
  readonly script?: string;
}

export class ServeProcess {
  readonly #child: ChildProcess;
  #output = '';
  #exit: Promise<number | null>;
  #exitCode: number | null | undefined;
  #signal: NodeJS.Signals | null = null;

  private constructor(child: ChildProcess) {
    this.#child = child;
    const append = (s: string) => {
      this.#output += s;
    };
    child.stdout?.setEncoding('utf8').on('data', append);
    child.stderr?.setEncoding('utf8').on('data', append);
    this.#exit = new Promise((resolve) => {
      child.on('error', (err) => {
        append(`spawn error: ${err.message}\n`);
        this.#exitCode = null;
        resolve(null);
      });
      child.on('exit', (code, signal) => {
        this.#exitCode = code;
        this.#signal = signal;
        resolve(code);
      });
    });
  }

  /** Starts the server and resolves once it listens (its "serving" line). */
  static async start(options: ServeOptions): Promise<ServeProcess> {
    const program = options.script ?? CLI_BIN;
    if (!existsSync(program)) {
      const what = options.script ? 'the server script is missing' : 'the CLI is not built';
      throw new QemuError('ERR_QEMU_SERVER', `${what} (${program})`, { part: 'server' });
    }
    const traces = (options.trace ?? ['vfio_server_*']).flatMap((t) => ['--trace', t]);
    const child = spawn(
      process.execPath,
      [program, ...traces, 'serve', options.device, '--socket', options.socketPath],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    const server = new ServeProcess(child);
    (server as { socketPath: string }).socketPath = options.socketPath;
    const timeoutMs = options.startTimeoutMs ?? 20_000;
    const started = Date.now();
    while (!server.#output.includes('serving ')) {
      if (server.#exitCode !== undefined) {
        throw new QemuError(
          'ERR_QEMU_SERVER',
          `vfio-ts serve ${options.device} exited (${server.#exitCode ?? server.#signal}) before listening`,
          { part: 'server', serverOutput: server.#output },
        );
      }
      if (Date.now() - started > timeoutMs) {
        child.kill('SIGKILL');
        await server.#exit;
        throw new QemuError(
          'ERR_QEMU_TIMEOUT',
          `vfio-ts serve ${options.device} did not listen within ${timeoutMs / 1000} s`,
          { part: 'server', serverOutput: server.#output },
        );
      }
      await new Promise((r) => setTimeout(r, 25));
    }
    return server;
  }

  /** The socket the server listens on. */
  readonly socketPath: string = '';

  get pid(): number {
    return this.#child.pid ?? -1;
  }

  /** Everything the server printed (its "serving" line, log lines, trace events). */
  get output(): string {
    return this.#output;
  }

  /** Still running (it must be, while QEMU is attached). */
  get running(): boolean {
    return this.#exitCode === undefined;
  }

  /** SIGTERM (the server disconnects its client and removes the socket), SIGKILL after `graceMs`; resolves with its exit code. */
  async stop(graceMs = 5000): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    if (this.#exitCode === undefined) {
      this.#child.kill('SIGTERM');
      const timer = setTimeout(() => this.#child.kill('SIGKILL'), graceMs);
      await this.#exit;
      clearTimeout(timer);
    }
    return { code: this.#exitCode ?? null, signal: this.#signal };
  }
}
