/**
 * Reading a device spec file (`sim:<path>.json`) safely: only a regular file
 * is read, and at most SPEC_FILE_MAX_BYTES of it. A path that names a FIFO
 * (which would block the open or the read forever), a device such as
 * /dev/zero (endless) or a directory, directly or through a symlink, is
 * refused from fstat of the opened file, before anything is read. The text is
 * UTF-8, with or without a byte order mark.
 */
import { closeSync, constants, fstatSync, openSync, readSync } from 'node:fs';
import { ModelError } from './errors.js';
import type { DeviceModel } from './model.js';
import { modelFromSpec, parseDeviceSpec } from './spec.js';

/** Far above any real spec (a full one with hundreds of registers is a few KiB). */
export const SPEC_FILE_MAX_BYTES = 1024 * 1024;

/** A path as messages show it: a 10 MB path argument is not echoed in full. */
function shown(path: string): string {
  return path.length > 200 ? `${path.slice(0, 200)}...` : path;
}

function specFileError(path: string, problem: string, hint: string): ModelError {
  return new ModelError('ERR_SPEC_FILE', `cannot read device spec file ${shown(path)}: it ${problem}`, hint);
}

function kindOf(stat: import('node:fs').Stats): string {
  if (stat.isFIFO()) return 'a FIFO';
  if (stat.isCharacterDevice()) return 'a character device';
  if (stat.isBlockDevice()) return 'a block device';
  if (stat.isDirectory()) return 'a directory';
  if (stat.isSocket()) return 'a socket';
  return 'not a regular file';
}

/** The file's text, checked to be a regular file of at most `maxBytes`, decoded as UTF-8 (a BOM is dropped). */
export function readSpecText(path: string, maxBytes = SPEC_FILE_MAX_BYTES): string {
  let fd: number;
  try {
    // O_NONBLOCK: opening a FIFO must not wait for a writer; regular files read as usual.
    fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOCTTY);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'EIO';
    throw new ModelError(
      'ERR_SPEC_FILE',
      `cannot read device spec file ${shown(path)} (${code})`,
      'check the path; it is relative to the current directory',
    );
  }
  try {
    const stat = fstatSync(fd);
    if (!stat.isFile())
      throw specFileError(path, `is ${kindOf(stat)}, not a regular file`, 'name a JSON file');
    if (stat.size > maxBytes)
      throw specFileError(
        path,
        `is ${stat.size} bytes, over the ${maxBytes}-byte limit`,
        'a device spec is a small JSON file',
      );
    // Read to the end, but never more than the limit: the size can change under us (or be 0 on procfs).
    const buf = Buffer.alloc(maxBytes + 1);
    let length = 0;
    for (;;) {
      const n = readSync(fd, buf, length, buf.length - length, null);
      if (n === 0) break;
      length += n;
      if (length > maxBytes)
        throw specFileError(path, `is over the ${maxBytes}-byte limit`, 'a device spec is a small JSON file');
    }
    try {
      return new TextDecoder('utf-8', { fatal: true }).decode(buf.subarray(0, length));
    } catch {
      throw specFileError(path, 'is not UTF-8 text', 'save it as UTF-8 (a byte order mark is fine)');
    }
  } finally {
    closeSync(fd);
  }
}

/** Reads and validates a device spec file into a model. */
export function loadSpecFile(path: string): DeviceModel {
  const text = readSpecText(path);
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    const why = (err as Error).message;
    throw new ModelError(
      'ERR_MODEL_SPEC',
      `device spec file ${shown(path)} is not valid JSON: ${why.length > 120 ? `${why.slice(0, 120)}...` : why}`,
    );
  }
  return { ...modelFromSpec(parseDeviceSpec(json, `device spec file ${shown(path)}`)), source: path };
}
