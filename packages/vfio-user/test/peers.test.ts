/**
 * Who may connect, and what a client that dies mid-message leaves behind:
 * a peer with another uid is refused (SO_PEERCRED) unless allowed; a client
 * killed between header and body, with fds in flight, 100 times, leaves no
 * fd or mapping in the server, which keeps serving.
 */
import { spawn } from 'node:child_process';
import { chmodSync } from 'node:fs';
import { join } from 'node:path';
import { openSimDevice } from '@vfio-ts/plugin-host';
import { resourceCounts, settle } from '@vfio-ts/test-support';
import { EventFd } from '@vfio-ts/vfio-sys';
import * as libc from '@vfio-ts/vfio-sys/libc';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { command, encodeMessage } from '../src/codec.js';
import { VfioUserServer } from '../src/index.js';
import { RawPeer, tempDir, tick, versionRequest } from './helpers.js';

const NOBODY = 65534;
const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;

/** Runs a child as uid `uid` that connects, sends VERSION and reports what came back. */
function connectAs(uid: number, socket: string): Promise<string> {
  const version = Buffer.from(encodeMessage(versionRequest(1))).toString('hex');
  const script = `
    process.setgid(${uid}); process.setuid(${uid});
    const s = require('node:net').connect(${JSON.stringify(socket)});
    let got = Buffer.alloc(0);
    s.on('connect', () => s.write(Buffer.from('${version}', 'hex')));
    s.on('data', (d) => { got = Buffer.concat([got, d]); if (got.length >= 16) { console.log('reply ' + got.readUInt32LE(8).toString(16)); s.destroy(); } });
    let failed = '';
    s.on('close', () => { if (got.length < 16) console.log(failed === 'EACCES' ? 'error EACCES' : 'closed'); });
    s.on('error', (e) => { failed = e.code; });`;
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d) => {
      out += d;
    });
    child.on('exit', () => resolve(out.trim()));
  });
}

describe('peer credentials (SO_PEERCRED)', () => {
  if (!isRoot) {
    it.skip('needs root to run a client as another uid (skipped: not root)', () => {});
    return;
  }
  const tmp = tempDir();
  const device = openSimDevice('sim:nvme');
  afterAll(() => {
    device.close();
    tmp[Symbol.dispose]();
  });

  it('refuses a client with another uid and logs it; --allow-uid lets it in', async () => {
    chmodSync(tmp.dir, 0o755);
    const socket = join(tmp.dir, 'uid.sock');
    const log: string[] = [];
    {
      using server = VfioUserServer.listen(device, socket, { log: (l) => log.push(l) });
      chmodSync(socket, 0o666); // test only: let the other uid reach connect(), so the uid check is what refuses
      expect(await connectAs(NOBODY, socket)).toBe('closed');
      expect(server.stats.refused).toBe(1);
      expect(log.join('\n')).toMatch(/refused client pid \d+: uid 65534 is not allowed/);
    }
    {
      using server = VfioUserServer.listen(device, socket, { allowUids: [NOBODY] });
      chmodSync(socket, 0o666);
      expect(await connectAs(NOBODY, socket)).toBe('reply 1');
      await server.idle();
      expect(server.stats).toMatchObject({ served: 1, refused: 0 });
    }
  });

  it('keeps the 0600 socket out of reach of other uids in the first place', async () => {
    chmodSync(tmp.dir, 0o755);
    const socket = join(tmp.dir, 'private.sock');
    using _server = VfioUserServer.listen(device, socket);
    expect(await connectAs(NOBODY, socket)).toBe('error EACCES');
  });
});

describe('clients that die mid-message', () => {
  const tmp = tempDir();
  const socket = join(tmp.dir, 'kill.sock');
  const device = openSimDevice('sim:e1000e');
  let server: VfioUserServer;
  beforeAll(() => {
    server = VfioUserServer.listen(device, socket);
  });
  afterAll(() => {
    server.close();
    device.close();
    tmp[Symbol.dispose]();
  });

  it('100 clients gone between header and body, with fds in flight: no fd or mapping left, the next client is served', async () => {
    await settle();
    const before = resourceCounts();
    for (let i = 0; i < 100; i++) {
      const p = new RawPeer(socket);
      if (i % 2 === 0) {
        // Negotiated, a DMA map with a memfd and an eventfd attached, then a message cut after its header.
        expect((await p.ask(versionRequest(1))).errno).toBe(0);
        const mem = libc.sysMemfdCreate('dying-client');
        libc.sysFtruncate(mem, 0x2000);
        await p.ask(
          command(2, 2, { kind: 'dma-map', argsz: 32, flags: 3, offset: 0n, addr: 0x10000n, size: 0x2000n }),
          [mem],
        );
        libc.sysClose(mem);
        const e = EventFd.create();
        await p.ask(
          command(3, 8, {
            kind: 'set-irqs',
            argsz: 20,
            flags: 0x24,
            index: 2,
            start: 0,
            count: 1,
            data: new Uint8Array(0),
          }),
          [e.fd],
        );
        e.close();
      }
      const e1 = EventFd.create();
      const e2 = EventFd.create();
      const bytes = encodeMessage(
        command(9, 8, {
          kind: 'set-irqs',
          argsz: 20,
          flags: 0x24,
          index: 2,
          start: 0,
          count: 2,
          data: new Uint8Array(0),
        }),
      );
      p.send(bytes.subarray(0, i % 3 === 0 ? 16 : 20), [e1.fd, e2.fd]); // header (and a little body), fds attached
      e1.close();
      e2.close();
      await tick();
      p.close();
      await server.idle();
    }
    await tick();
    await settle();
    expect(resourceCounts()).toEqual(before);
    using p = new RawPeer(socket);
    expect((await p.ask(versionRequest(1))).errno).toBe(0);
    expect(server.stats.served).toBe(101);
  });

  it('a child process SIGKILLed mid-message (10 times) leaves nothing behind either', async () => {
    await settle();
    const before = resourceCounts();
    const header = Buffer.from(encodeMessage(versionRequest(1)))
      .subarray(0, 16)
      .toString('hex');
    for (let i = 0; i < 10; i++) {
      const script = `
        const s = require('node:net').connect(${JSON.stringify(socket)});
        s.on('connect', () => { s.write(Buffer.from('${header}', 'hex')); console.log('sent'); });
        setInterval(() => {}, 1000);`;
      const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
      await new Promise<void>((resolve) => child.stdout.once('data', () => resolve()));
      await new Promise((r) => setTimeout(r, 5));
      child.kill('SIGKILL');
      await new Promise((r) => child.once('exit', r));
      await server.idle();
    }
    await settle();
    expect(resourceCounts()).toEqual(before);
  });
});
