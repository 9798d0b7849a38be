import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { resourceCounts } from '@vfio-ts/test-support';
import { describe, expect, it } from 'vitest';
import * as libc from '../src/libc-index.js';
import {
  acceptConnection,
  bindUnix,
  connectUnix,
  listenSocket,
  MSG_DONTWAIT,
  peerCredentials,
  SocketReceiver,
  SocketSender,
  sendTry,
  sendWithFds,
  setNonBlocking,
  setReceiveTimeout,
  socketPair,
  unixSocket,
} from '../src/libc-index.js';

const openFds = () => resourceCounts().fds;

describe('AF_UNIX listening sockets', () => {
  it('binds, listens, accepts a connection and reports the peer (SO_PEERCRED)', () => {
    const before = openFds();
    const dir = mkdtempSync(join(tmpdir(), 'vfio-sys-sock-'));
    const path = join(dir, 's');
    const server = unixSocket(undefined, { nonBlocking: true });
    const client = unixSocket();
    let conn = -1;
    try {
      bindUnix(server, path);
      listenSocket(server, 4);
      expect(acceptConnection(server)).toBeNull(); // nothing pending: EAGAIN is an answer
      connectUnix(client, path);
      conn = acceptConnection(server, { nonBlocking: true })!;
      expect(conn).toBeGreaterThan(0);
      expect(peerCredentials(conn)).toEqual({
        pid: process.pid,
        uid: process.getuid!(),
        gid: process.getgid!(),
      });

      const receiver = new SocketReceiver(4);
      const buf = new Uint8Array(64);
      const fds: number[] = [];
      expect(receiver.receive(conn, buf, 0, 64, fds)).toBe(-11); // EAGAIN
      const efd = libc.sysEventfd();
      sendWithFds(client, Uint8Array.of(1, 2, 3), [efd]);
      libc.sysClose(efd);
      expect(receiver.receive(conn, buf, 8, 56, fds)).toBe(3);
      expect([...buf.subarray(8, 11)]).toEqual([1, 2, 3]);
      expect(fds).toHaveLength(1);
      libc.sysClose(fds[0]!);
      setNonBlocking(client, true);
      expect(sendTry(client, Uint8Array.of(9))).toBe(1);
      libc.sysClose(client);
      expect(receiver.receive(conn, buf, 0, 64, [])).toBe(1);
      expect(receiver.receive(conn, buf, 0, 64, [])).toBe(0); // peer closed
    } finally {
      if (conn >= 0) libc.sysClose(conn);
      libc.sysClose(server);
      rmSync(dir, { recursive: true });
    }
    expect(openFds()).toBe(before);
  });

  it('refuses a path AF_UNIX cannot hold and reports connect failures as SysError', () => {
    const fd = unixSocket();
    try {
      expect(() => bindUnix(fd, `/tmp/${'x'.repeat(120)}`)).toThrow(/AF_UNIX allows 1 to 107/);
      expect(() => connectUnix(fd, '/nonexistent/sock')).toThrow(expect.objectContaining({ code: 'ENOENT' }));
    } finally {
      libc.sysClose(fd);
    }
  });

  it('sends with a reusable sender, receives without waiting or with a timeout', () => {
    const before = openFds();
    const [a, b] = socketPair();
    try {
      const sender = new SocketSender(2);
      const receiver = new SocketReceiver(2);
      const buf = new Uint8Array(16);
      expect(receiver.receive(b, buf, 0, 16, [], MSG_DONTWAIT)).toBe(-11); // nothing there, and no wait
      setReceiveTimeout(b, 20);
      const t = Date.now();
      expect(receiver.receive(b, buf, 0, 16, [])).toBe(-11); // a blocking receive gives up after SO_RCVTIMEO
      expect(Date.now() - t).toBeGreaterThanOrEqual(15);
      const efd = libc.sysEventfd();
      expect(sender.send(a, Uint8Array.of(7, 8), [efd])).toBe(2);
      libc.sysClose(efd);
      const fds: number[] = [];
      expect(receiver.receive(b, buf, 0, 16, fds)).toBe(2);
      expect(fds).toHaveLength(1);
      libc.sysClose(fds[0]!);
      expect(() => sender.send(a, Uint8Array.of(1), [1, 2, 3])).toThrow(/allows 2/);
    } finally {
      libc.sysClose(a);
      libc.sysClose(b);
    }
    expect(openFds()).toBe(before);
  });
});
