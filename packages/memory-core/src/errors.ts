/** Base of every error memory-core throws; `code` is stable and safe to switch on. */
export class MemoryError extends Error {
  readonly code: string;

  constructor(code: string, message: string) {
    super(message);
    this.name = new.target.name;
    this.code = code;
  }
}

/**
 * An access the region does not accept (QEMU's memory_region_access_valid
 * failing). The message is QEMU's log line, e.g.
 * `Invalid read at addr 0x10, size 8, region 'foo', reason: invalid size (min:1 max:4)`.
 */
export class InvalidAccessError extends MemoryError {
  readonly region: string;
  readonly addr: number;
  readonly size: number;
  readonly isWrite: boolean;
  readonly reason: string;

  constructor(region: string, addr: number, size: number, isWrite: boolean, reason: string) {
    super(
      'ERR_MEMORY_INVALID_ACCESS',
      `Invalid ${isWrite ? 'write' : 'read'} at addr 0x${addr.toString(16).toUpperCase()}, size ${size}, region '${region}', reason: ${reason}`,
    );
    this.region = region;
    this.addr = addr;
    this.size = size;
    this.isWrite = isWrite;
    this.reason = reason;
  }
}
