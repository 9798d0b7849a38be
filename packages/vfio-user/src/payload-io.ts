/**
 * Reading and writing payload fields: a reader that knows which command (and
 * direction) it decodes, so every structural failure names the command and
 * the field, and a writer of little-endian fields. Shared by the per-area
 * payload codecs.
 */
import { EINVAL, VfioUserProtocolError } from './errors.js';
import type { BodyOf, VfioUserBodyKind } from './message-types.js';
import { commandName } from './protocol.js';

export function dataView(bytes: Uint8Array): DataView {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** A malformed message: `<COMMAND> request|reply: <what>`, with the errno a reply should carry. */
export function malformed(
  command: number,
  reply: boolean,
  what: string,
  errno = EINVAL,
): VfioUserProtocolError {
  return new VfioUserProtocolError(`${commandName(command)} ${reply ? 'reply' : 'request'}: ${what}`, {
    errno,
  });
}

export class PayloadReader {
  readonly len: number;
  readonly #view: DataView;

  constructor(
    readonly command: number,
    readonly reply: boolean,
    readonly payload: Uint8Array,
  ) {
    this.len = payload.byteLength;
    this.#view = dataView(payload);
  }

  u16(at: number): number {
    return this.#view.getUint16(at, true);
  }

  u32(at: number): number {
    return this.#view.getUint32(at, true);
  }

  u64(at: number): bigint {
    return this.#view.getBigUint64(at, true);
  }

  /** A copy of `payload[from..to]`: decoded bodies never alias the receive buffer. */
  copy(from: number, to = this.len): Uint8Array {
    return this.payload.slice(from, to);
  }

  bad(what: string): VfioUserProtocolError {
    return malformed(this.command, this.reply, what);
  }

  exactly(n: number, what: string): void {
    if (this.len !== n) throw this.bad(`payload of ${this.len} bytes, ${what} needs exactly ${n}`);
  }

  atLeast(n: number, what: string): void {
    if (this.len < n) throw this.bad(`payload of ${this.len} bytes, ${what} needs at least ${n}`);
  }
}

export class PayloadWriter {
  readonly #view: DataView;

  /** `target` must have the body's size (see `bodySize`). */
  constructor(readonly target: Uint8Array) {
    this.#view = dataView(target);
  }

  u16(at: number, x: number): void {
    this.#view.setUint16(at, x, true);
  }

  u32(at: number, x: number): void {
    this.#view.setUint32(at, x, true);
  }

  u64(at: number, x: bigint): void {
    this.#view.setBigUint64(at, x, true);
  }

  bytes(at: number, data: Uint8Array): void {
    this.target.set(data, at);
  }
}

/** How one body kind goes on the wire: its payload size and its encoder. */
export interface BodyLayout<K extends VfioUserBodyKind> {
  size(body: BodyOf<K>): number;
  encode(w: PayloadWriter, body: BodyOf<K>): void;
}

export type BodyLayouts<K extends VfioUserBodyKind> = { readonly [P in K]: BodyLayout<P> };
