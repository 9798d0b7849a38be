/** Test helpers: a vfio-user server in a child process, and temp socket paths. */
import { type ChildProcess, spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { connectUnix, setNonBlocking, unixSocket } from '@vfio-ts/vfio-sys/libc';
import { type IncomingMessage, MessageChannel } from '../src/channel.js';
import { command, decodeBody, type VfioUserBody, type VfioUserMessage } from '../src/codec.js';

/** Temporary folders (for sockets) come from the shared helpers. */
export { tempDir } from '@vfio-ts/test-support';

const SERVE = new URL('./fixtures/serve.mjs', import.meta.url).pathname;

export interface ServerProcess {
  readonly socket: string;
  readonly child: ChildProcess;
  readonly stderr: string[];
  /** The server's own fd and mapping counts (after GC), and its stats. */
  counts(): Promise<{
    fds: number;
    maps: number;
    memfdMaps: number;
    served: number;
    refused: number;
    connected: boolean;
  }>;
  /** Makes the device raise an interrupt in the server process (as its model would). */
  raise(kind: 'intx' | 'msi' | 'msix', vector?: number): Promise<void>;
  stop(): Promise<number | null>;
}

/** Starts `serve.mjs <model> <socket>` and resolves once it listens. */
export async function startServer(
  model: string,
  socket: string,
  options: object = {},
): Promise<ServerProcess> {
  const child = spawn(process.execPath, ['--expose-gc', SERVE, model, socket, JSON.stringify(options)], {
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  const stderr: string[] = [];
  child.stderr!.setEncoding('utf8').on('data', (d: string) => stderr.push(...d.split('\n').filter(Boolean)));
  const lines = createInterface({ input: child.stdout! });
  const waiting: ((line: string) => void)[] = [];
  lines.on('line', (line) => waiting.shift()?.(line));
  const nextLine = () =>
    new Promise<string>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`server gave no answer; stderr: ${stderr.join(' | ')}`)),
        10_000,
      );
      waiting.push((l) => {
        clearTimeout(timer);
        resolve(l);
      });
    });
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const ready = await Promise.race([nextLine(), exited.then((c) => `exited ${c}`)]);
  if (ready !== 'ready') throw new Error(`server did not start (${ready}): ${stderr.join(' | ')}`);
  return {
    socket,
    child,
    stderr,
    async counts() {
      child.stdin!.write('counts\n');
      return JSON.parse(await nextLine());
    },
    async raise(kind, vector = 0) {
      child.stdin!.write(`raise ${kind} ${vector}\n`);
      const line = await nextLine();
      if (line !== 'raised') throw new Error(`raise answered ${line}`);
    },
    async stop() {
      child.kill('SIGTERM');
      return exited;
    },
  };
}

/** Lets the event loop run (the in-process server answers from it). */
export const tick = () => new Promise<void>((r) => setImmediate(r));

/** A raw vfio-user peer for edge cases against an in-process server: sends anything, waits asynchronously. */
export class RawPeer implements Disposable {
  readonly channel: MessageChannel;

  constructor(socket: string, maxFds = 16) {
    const fd = unixSocket(undefined, {});
    connectUnix(fd, socket);
    setNonBlocking(fd, true);
    this.channel = new MessageChannel(fd, { maxMessageSize: 2 * 1024 * 1024, maxFds });
  }

  send(message: VfioUserMessage | Uint8Array, fds: readonly number[] = []): void {
    if (message instanceof Uint8Array) this.channel.sendBytes(0, message, fds);
    else this.channel.send(message, fds);
  }

  /** The next message from the server, or 'closed' when it hung up, or 'timeout'. */
  async next(timeoutMs = 3000): Promise<IncomingMessage | 'closed' | 'timeout'> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      this.channel.pump();
      const m = this.channel.take();
      if (m) return m;
      if (this.channel.peerClosed) return 'closed';
      if (Date.now() > deadline) return 'timeout';
      await tick();
    }
  }

  /** Sends a request and returns its decoded reply (or the errno of an error reply). */
  async ask(
    message: VfioUserMessage,
    fds: readonly number[] = [],
  ): Promise<{ errno: number; body: VfioUserBody | null; fds: number[] }> {
    this.send(message, fds);
    const r = await this.next();
    if (typeof r === 'string') throw new Error(`no reply to ${message.command}: ${r}`);
    if (r.header.id !== message.id) throw new Error(`reply id ${r.header.id} for request ${message.id}`);
    if (r.header.flags & 0x20) return { errno: r.header.error, body: null, fds: r.fds };
    return { errno: 0, body: decodeBody(r.header.command, r.header.flags, r.payload), fds: r.fds };
  }

  close(): void {
    this.channel.close();
  }

  [Symbol.dispose](): void {
    this.close();
  }
}

export const QEMU_CAPS =
  '{"capabilities":{"pgsizes":4096,"max_msg_fds":16,"max_dma_maps":65535,"max_data_xfer_size":1048576,"migration":{"max_bitmap_size":268435456,"pgsize":4096},"write_multiple":true}}';

export function versionRequest(id = 1): VfioUserMessage {
  return command(id, 1, { kind: 'version', major: 0, minor: 0, capabilities: QEMU_CAPS });
}
