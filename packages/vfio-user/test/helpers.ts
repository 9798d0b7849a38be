/** Test helpers: a vfio-user server in a child process, and temp socket paths. */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';

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
  stop(): Promise<number | null>;
}

export function tempDir(prefix = 'vfu-'): { dir: string; [Symbol.dispose](): void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, [Symbol.dispose]: () => rmSync(dir, { recursive: true, force: true }) };
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
    async stop() {
      child.kill('SIGTERM');
      return exited;
    },
  };
}
