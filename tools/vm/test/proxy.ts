/**
 * The processes of the proxy tests: a library vfio-user server of kernel
 * devices (fixtures/proxy-server.mjs), a client to kill mid-run
 * (fixtures/proxy-client.mjs), `vfio-ts serve` itself, and the CLI run in this
 * process (a node start costs seconds under TCG).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { isDeviceMapping } from '@vfio-ts/test-support';
import { REPO_ROOT } from '../src/guest.js';
import { INTERFACE } from './helpers.js';

const FIXTURES = new URL('./fixtures/', import.meta.url).pathname;
/** fixtures/proxy-client.mjs: bus master on, a memfd DMA_MAPped at `iova`, an MSI eventfd, BAR0 mapped; prints "mapped <BAR0+0>". */
export const killableClient = (socket: string, iova: number) =>
  new Child([join(FIXTURES, 'proxy-client.mjs'), socket, String(iova)]);
export const CLI_BIN = join(REPO_ROOT, 'packages', 'cli', 'dist', 'bin.js');
/** A node start under TCG takes seconds; twice that with the other passes' load. */
const START_MS = 45_000;

/** A child process with its stdout as lines and its stderr kept. */
export class Child {
  readonly process: ChildProcess;
  readonly stderr: string[] = [];
  readonly #lines: string[] = [];
  #waiters: (() => void)[] = [];
  readonly closed: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;

  constructor(args: readonly string[]) {
    this.process = spawn(process.execPath, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    this.process.stderr!.setEncoding('utf8').on('data', (d: string) => {
      this.stderr.push(...d.split('\n').filter(Boolean));
      this.#wake();
    });
    createInterface({ input: this.process.stdout! }).on('line', (line) => {
      this.#lines.push(line);
      this.#wake();
    });
    // 'close': the process has exited and its stdio pipes are closed (no fd left in this process).
    this.closed = new Promise((resolve) =>
      this.process.on('close', (code, signal) => {
        this.#wake();
        resolve({ code, signal });
      }),
    );
  }

  get pid(): number {
    return this.process.pid!;
  }

  get exited(): boolean {
    return this.process.exitCode !== null || this.process.signalCode !== null;
  }

  /** The next stdout line. */
  async line(timeoutMs = START_MS): Promise<string> {
    await this.#until(() => this.#lines.length > 0, timeoutMs, 'a line on stdout');
    return this.#lines.shift()!;
  }

  /** The next JSON document on stdout (`--json` output is indented: read lines until they parse). */
  async document(timeoutMs = START_MS): Promise<unknown> {
    let text = '';
    for (let i = 0; i < 100; i++) {
      text += await this.line(timeoutMs);
      try {
        return JSON.parse(text);
      } catch {}
    }
    throw new Error(`process ${this.pid} wrote no JSON document: ${text.slice(0, 200)}`);
  }

  /** Waits for a stderr line matching `pattern` (from line `since` on) and returns it. */
  async log(pattern: RegExp, since = 0, timeoutMs = 10_000): Promise<string> {
    let found: string | undefined;
    await this.#until(
      () => {
        found = this.stderr.slice(since).find((l) => pattern.test(l));
        return found !== undefined;
      },
      timeoutMs,
      `a log line matching ${pattern}`,
    );
    return found!;
  }

  write(line: string): void {
    this.process.stdin!.write(`${line}\n`);
  }

  async kill(signal: NodeJS.Signals): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    if (!this.exited) this.process.kill(signal);
    return this.closed;
  }

  async #until(done: () => boolean, timeoutMs: number, what: string): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!done()) {
      if (this.exited && !done())
        throw new Error(`process ${this.pid} ended before ${what}; stderr: ${this.stderr.join(' | ')}`);
      const left = deadline - Date.now();
      if (left <= 0)
        throw new Error(
          `no ${what} from process ${this.pid} in ${timeoutMs} ms; stderr: ${this.stderr.join(' | ')}`,
        );
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.#waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  #wake(): void {
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const w of waiters) w();
  }
}

/** A process's open fds and device mappings (memfd or VFIO lines of its maps), read from /proc. */
export function processResources(pid: number): { fds: number; maps: number } {
  return {
    fds: readdirSync(`/proc/${pid}/fd`).length,
    maps: readFileSync(`/proc/${pid}/maps`, 'utf8').split('\n').filter(isDeviceMapping).length,
  };
}

export interface DirectReads {
  readonly value: number;
  readonly checksum: number;
  /** ns per read. */
  readonly ns: number;
}

/** fixtures/proxy-server.mjs: kernel devices served over vfio-user with the library, over this pass's interface. */
export class ProxyServer {
  readonly child: Child;

  private constructor(child: Child) {
    this.child = child;
  }

  static async start(): Promise<ProxyServer> {
    const child = new Child(['--expose-gc', join(FIXTURES, 'proxy-server.mjs'), INTERFACE]);
    try {
      const ready = JSON.parse(await child.line());
      if (ready.ready !== true) throw new Error(`proxy-server said ${JSON.stringify(ready)}`);
    } catch (err) {
      await child.kill('SIGKILL');
      throw err;
    }
    return new ProxyServer(child);
  }

  get pid(): number {
    return this.child.pid;
  }

  async request(op: string, args: Record<string, unknown> = {}): Promise<Record<string, unknown>> {
    this.child.write(JSON.stringify({ op, ...args }));
    const answer = JSON.parse(await this.child.line(30_000));
    if (answer.ok !== true) throw new Error(`proxy-server ${op}: ${answer.code ?? ''} ${answer.message}`);
    return answer;
  }

  async serve(bdf: string, socket: string): Promise<void> {
    await this.request('serve', { bdf, socket });
  }

  /** 4-byte reads timed in the server process: pread of the device fd, or through its own mmap. */
  async directReads(
    kind: 'pread' | 'mapped',
    bdf: string,
    region: number,
    offset: number,
    iterations: number,
  ): Promise<DirectReads> {
    return (await this.request(kind, { bdf, region, offset, iterations })) as unknown as DirectReads;
  }

  /** The server's fds and device mappings after it collected its garbage. */
  async resources(): Promise<{ fds: number; maps: number }> {
    await this.request('settle');
    return processResources(this.pid);
  }

  async kill(signal: NodeJS.Signals = 'SIGKILL') {
    return this.child.kill(signal);
  }
}
