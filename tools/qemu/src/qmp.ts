/**
 * A small QMP client (QEMU's JSON monitor) over a Unix socket: one command at
 * a time, events collected on the side. HMP commands go through QMP's
 * `human-monitor-command`, so `info pci` or `xp` return their text.
 */
import { createConnection, type Socket } from 'node:net';
import { QemuError } from './errors.js';

export interface QmpEvent {
  readonly event: string;
  readonly data?: unknown;
}

type Pending = { resolve(value: unknown): void; reject(err: Error): void; command: string };

export class QmpClient {
  readonly #socket: Socket;
  readonly #pending = new Map<number, Pending>();
  readonly events: QmpEvent[] = [];
  #buffer = '';
  #nextId = 1;
  #closed: Error | null = null;
  #greeting: ((v: unknown) => void) | null = null;

  private constructor(socket: Socket) {
    this.#socket = socket;
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => this.#receive(chunk));
    const fail = (why: string) => {
      this.#closed ??= new Error(why);
      for (const p of this.#pending.values()) p.reject(this.#monitorError(p.command, why));
      this.#pending.clear();
    };
    socket.on('error', (err) => fail(err.message));
    socket.on('close', () => fail('the monitor connection closed (QEMU exited?)'));
  }

  /** Connects (retrying until QEMU has created the socket) and negotiates capabilities. */
  static async connect(path: string, timeoutMs: number, alive: () => boolean): Promise<QmpClient> {
    const started = Date.now();
    for (;;) {
      try {
        const socket = await new Promise<Socket>((resolve, reject) => {
          const s = createConnection(path);
          s.once('connect', () => resolve(s));
          s.once('error', reject);
        });
        const client = new QmpClient(socket);
        await new Promise((resolve, reject) => {
          client.#greeting = resolve;
          socket.once('close', () => reject(new Error('closed before the QMP greeting')));
        });
        await client.execute('qmp_capabilities');
        return client;
      } catch (err) {
        if (!alive()) throw new Error(`QEMU exited before its monitor answered (${(err as Error).message})`);
        if (Date.now() - started > timeoutMs) throw err;
        await new Promise((r) => setTimeout(r, 50));
      }
    }
  }

  #monitorError(command: string, why: string): QemuError {
    return new QemuError('ERR_QEMU_MONITOR', `QMP ${command}: ${why}`, { part: 'monitor' });
  }

  #receive(chunk: string): void {
    this.#buffer += chunk;
    for (let nl = this.#buffer.indexOf('\n'); nl >= 0; nl = this.#buffer.indexOf('\n')) {
      const line = this.#buffer.slice(0, nl).trim();
      this.#buffer = this.#buffer.slice(nl + 1);
      if (!line) continue;
      const msg = JSON.parse(line) as {
        QMP?: unknown;
        event?: string;
        data?: unknown;
        id?: number;
        return?: unknown;
        error?: { class: string; desc: string };
      };
      if (msg.QMP !== undefined) {
        this.#greeting?.(msg.QMP);
        this.#greeting = null;
      } else if (msg.event !== undefined) {
        this.events.push({ event: msg.event, data: msg.data });
      } else if (msg.id !== undefined) {
        const p = this.#pending.get(msg.id);
        this.#pending.delete(msg.id);
        if (!p) continue;
        if (msg.error) p.reject(this.#monitorError(p.command, `${msg.error.class}: ${msg.error.desc}`));
        else p.resolve(msg.return);
      }
    }
  }

  /** Runs a QMP command and resolves with its `return` value. */
  execute(command: string, args?: Record<string, unknown>): Promise<unknown> {
    if (this.#closed) return Promise.reject(this.#monitorError(command, this.#closed.message));
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve, reject, command });
      this.#socket.write(`${JSON.stringify({ execute: command, arguments: args, id })}\n`);
    });
  }

  /** Runs an HMP command (`info pci`, `xp /4xw 0x...`, `system_reset`) and resolves with its text (\n line ends). */
  async hmp(commandLine: string): Promise<string> {
    const text = (await this.execute('human-monitor-command', { 'command-line': commandLine })) as string;
    return text.replace(/\r\n/g, '\n'); // the monitor ends lines with CRLF
  }

  /** Resolves once `event` has arrived (counting from `since` events). */
  async waitForEvent(event: string, timeoutMs: number, since = 0): Promise<QmpEvent> {
    const started = Date.now();
    for (;;) {
      const found = this.events.slice(since).find((e) => e.event === event);
      if (found) return found;
      if (this.#closed) throw this.#monitorError(`waiting for ${event}`, this.#closed.message);
      if (Date.now() - started > timeoutMs)
        throw this.#monitorError(`waiting for ${event}`, `no ${event} within ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 25));
    }
  }

  close(): void {
    this.#socket.destroy();
  }
}
