/**
 * The server's listening socket, created with mode 0600 and no window where
 * it is wider: it is bound inside a fresh 0700 directory next to the target,
 * chmod'ed, listening, and only then renamed onto the path. A stale socket
 * (nobody accepts on it) is replaced; a live one, or any other kind of file,
 * is refused. On close the file is removed if it is still ours.
 */
import { chmodSync, lstatSync, mkdtempSync, renameSync, rmdirSync, unlinkSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { SysError } from '@vfio-ts/vfio-sys';
import * as libc from '@vfio-ts/vfio-sys/libc';
import { bindUnix, connectUnix, listenSocket, UNIX_PATH_MAX, unixSocket } from '@vfio-ts/vfio-sys/libc';
import { VfioUserSocketPathError } from './errors.js';

export interface ListeningSocket extends Disposable {
  readonly fd: number;
  readonly path: string;
  close(): void;
}

function isListening(path: string): boolean {
  const probe = unixSocket();
  try {
    connectUnix(probe, path);
    return true;
  } catch (err) {
    if (err instanceof SysError && (err.code === 'ECONNREFUSED' || err.code === 'ENOENT')) return false;
    throw err;
  } finally {
    libc.sysClose(probe);
  }
}

function checkTarget(path: string): void {
  let st: ReturnType<typeof lstatSync>;
  try {
    st = lstatSync(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw err;
  }
  if (!st.isSocket()) {
    throw new VfioUserSocketPathError(
      `${path} exists and is not a socket; refusing to replace it`,
      'choose another --socket path or remove the file yourself',
    );
  }
  if (isListening(path)) {
    throw new VfioUserSocketPathError(
      `${path} is in use: another server accepts connections on it`,
      'stop that server or choose another --socket path',
    );
  }
}

/** Binds and listens on `path` (see the module comment). The caller owns the result. */
export function listenUnixSocket(path: string, backlog = 8): ListeningSocket {
  const target = resolve(path);
  if (Buffer.byteLength(target) > UNIX_PATH_MAX && Buffer.byteLength(path) > UNIX_PATH_MAX) {
    throw new VfioUserSocketPathError(
      `socket path ${path} is longer than the ${UNIX_PATH_MAX} bytes AF_UNIX allows`,
      'use a shorter path',
    );
  }
  checkTarget(target);
  const dir = mkdtempSync(join(dirname(target), `.${basename(target).slice(0, 16)}.`)); // mode 0700
  const staging = join(dir, 's');
  if (Buffer.byteLength(staging) > UNIX_PATH_MAX) {
    rmdirSync(dir);
    throw new VfioUserSocketPathError(
      `socket directory ${dirname(target)} is too deep for AF_UNIX`,
      'use a shorter path',
    );
  }
  const fd = unixSocket(undefined, { nonBlocking: true });
  try {
    bindUnix(fd, staging);
    chmodSync(staging, 0o600);
    listenSocket(fd, backlog);
    renameSync(staging, target);
  } catch (err) {
    libc.sysClose(fd);
    try {
      unlinkSync(staging);
    } catch {}
    rmdirSync(dir);
    throw err;
  }
  rmdirSync(dir);
  const { ino, dev } = lstatSync(target);
  let open = true;
  const socket: ListeningSocket = {
    fd,
    path: target,
    close() {
      if (!open) return;
      open = false;
      libc.sysClose(fd);
      try {
        const st = lstatSync(target);
        if (st.ino === ino && st.dev === dev) unlinkSync(target);
      } catch {
        // Already gone (or replaced by someone else's, which is not ours to remove).
      }
    },
    [Symbol.dispose]() {
      socket.close();
    },
  };
  return socket;
}
