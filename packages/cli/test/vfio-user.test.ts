/**
 * vfio-user end to end through the CLI: each built-in model served by
 * `vfio-ts serve` in its own process, and `inspect`, `mtree`, `read`,
 * `write`, `bench` run against `vfio-user:<socket>`, compared with the same
 * commands on the in-process backend. Realizing a VfioPciDevice over the
 * socket must give the same layout, traces and mtree.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { builtinModels } from '@vfio-ts/plugin-host';
import { FakeSystem, tempDir } from '@vfio-ts/test-support';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BIN, cli } from './run-cli.js';

function serve(
  device: string,
  socket: string,
  extra: string[] = [],
): Promise<{ child: ChildProcess; stdout: string }> {
  const child = spawn(process.execPath, [BIN, 'serve', device, '--socket', socket, ...extra], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, NO_COLOR: '1' },
  });
  return new Promise((resolve, reject) => {
    let out = '';
    let err = '';
    child.stderr!.on('data', (d) => {
      err += d;
    });
    child.stdout!.on('data', (d) => {
      out += d;
      if (out.includes('\n')) resolve({ child, stdout: out });
    });
    child.on('exit', (code) => reject(new Error(`serve exited ${code}: ${err}`)));
  });
}

function stop(child: ChildProcess, signal: NodeJS.Signals = 'SIGTERM'): Promise<number | null> {
  return new Promise((resolve) => {
    child.removeAllListeners('exit');
    child.on('exit', (code) => resolve(code));
    child.kill(signal);
  });
}

/** The in-process and the vfio-user names differ, and so do region fd offsets (kernel-style index << 40 vs offsets into each region's fd). */
function normalized(text: string, name: string): string {
  return text
    .split(name)
    .join('<dev>')
    .replace(/offset: 0x[0-9a-f]+/g, 'offset: <fd>');
}

const MODELS = Object.keys(builtinModels).map((m) => `sim:${m}`);

describe.each(MODELS)('%s served by vfio-ts serve', (model) => {
  const tmp = tempDir('vfio-ts-cli-vfu-');
  const socket = join(tmp.dir, 'dev.sock');
  const remote = `vfio-user:${socket}`;
  let server: ChildProcess;
  beforeAll(async () => {
    const started = await serve(model, socket);
    server = started.child;
    expect(started.stdout).toBe(`serving ${model} on ${socket} (Ctrl-C to stop)\n`);
  });
  afterAll(async () => {
    await stop(server);
    tmp[Symbol.dispose]();
  });

  it('inspect --json: the same report as in-process, apart from backend, name and region fd offsets', () => {
    const local = JSON.parse(cli(['inspect', '--json', model]).stdout);
    const r = cli(['inspect', '--json', remote]);
    expect(r.stderr).toBe('');
    const over = JSON.parse(r.stdout);
    expect(over.backend).toBe('vfio-user');
    expect(over.device).toBe(remote);
    const strip = (rep: { regions: { offset: number }[] }) => ({
      ...rep,
      backend: undefined,
      device: undefined,
      regions: rep.regions.map((x) => ({ ...x, offset: undefined })),
    });
    expect(strip(over)).toEqual(strip(local));
  });

  it('mtree and mtree -f match the in-process tree', () => {
    for (const flags of [[], ['-f']]) {
      const local = cli(['mtree', ...flags, model]).stdout;
      const over = cli(['mtree', ...flags, remote]).stdout;
      expect(normalized(over, remote)).toBe(normalized(local, model));
    }
  });

  it('realizing over the socket leaves the same vfio_region_* and vfio_msix_* traces', () => {
    const args = (dev: string) => ['--trace', 'vfio_region_*', '--trace', 'vfio_msix_*', 'inspect', dev];
    const local = cli(args(model)).stderr;
    const over = cli(args(remote)).stderr;
    expect(local).toMatch(/vfio_region_setup/);
    expect(normalized(over, remote)).toBe(normalized(local, model));
  });
});

describe('vfio-ts serve and vfio-user: devices', () => {
  const tmp = tempDir('vfio-ts-cli-vfu-');

  it('read and write go through mmap and through messages; --trace vfio_user_* prints what QEMU would', async () => {
    const socket = join(tmp.dir, 'nvme.sock');
    const { child } = await serve('sim:nvme', socket);
    try {
      const dev = `vfio-user:${socket}`;
      expect(cli(['read', dev, '0', '0x8']).stdout).toMatch(
        /^0x00010400 {2}\(fast path, .* BAR 0 mmaps\[0\]\)/,
      );
      expect(cli(['read', '--slow', dev, '0', '0x8']).stdout).toMatch(
        /^0x00010400 {2}\(slow path, .* BAR 0\)/,
      );
      // The device lives in the server: a value written by one command is read by the next.
      expect(cli(['write', dev, '0', '0x28', '0x12345678']).stdout).toMatch(
        /^wrote 0x12345678 {2}\(fast path/,
      );
      expect(cli(['read', '--slow', dev, '0', '0x28']).stdout).toMatch(/^0x12345678 {2}\(slow path/);
      expect(cli(['write', '--slow', dev, '0', '0x28', '0x9abcdef0']).stdout).toMatch(
        /^wrote 0x9abcdef0 {2}\(slow path/,
      );
      expect(cli(['read', dev, '0', '0x28']).stdout).toMatch(/^0x9abcdef0 {2}\(fast path/);
      const traced = cli(['--trace', 'vfio_user_*', 'read', '--slow', dev, '0', '0x8']).stderr.split('\n');
      expect(traced[0]).toMatch(/^vfio_user_send_write {2}id 0x0 wrote 0x[0-9a-f]+$/);
      expect(traced).toContain('vfio_user_get_info  #regions 9 #irqs 5');
      expect(
        traced.some((l) => /^vfio_user_version {2}major 0 minor 0 caps: \{"capabilities":/.test(l)),
      ).toBe(true);
      expect(traced).toContain('vfio_user_region_rw  region 0 offset 0x8 count 4');
      const bench = JSON.parse(cli(['bench', '--json', '--iterations', '2000', dev]).stdout);
      expect(bench.slowNs).toBeGreaterThan(bench.fastNs);
    } finally {
      await stop(child, 'SIGINT');
    }
    expect(existsSync(socket)).toBe(false); // Ctrl-C removed it
  });

  it('refuses a socket path that is some other file, and a device that is not one', () => {
    const file = join(tmp.dir, 'precious');
    writeFileSync(file, 'data');
    const r = cli(['serve', 'sim:nvme', '--socket', file]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/exists and is not a socket; refusing to replace it/);
    expect(cli(['serve', 'sim:nope', '--socket', join(tmp.dir, 'x.sock')]).code).toBe(2);
    expect(cli(['serve', 'sim:nvme', '--socket', join(tmp.dir, 'y.sock'), '--allow-uid', 'root']).code).toBe(
      2,
    );
    const none = cli(['inspect', `vfio-user:${join(tmp.dir, 'nobody.sock')}`]);
    expect(none.code).toBe(1);
    expect(none.stderr).toMatch(/no vfio-user server on .*nobody.sock \(ENOENT\)/);
  });

  afterAll(() => tmp[Symbol.dispose]());
});

describe('vfio-ts serve <bdf> (kernel backend; this host has no VFIO, so only its errors)', () => {
  const tmp = tempDir('vfio-ts-cli-serve-kernel-');

  it('opens the device through the kernel backend and says why it cannot, naming interface and node; no socket is left', () => {
    const sys = new FakeSystem().addDevice('0000:00:03.0', { group: 7, driver: 'vfio-pci' });
    const socket = join(tmp.dir, 'k.sock');
    const noContainer = '\\): /dev/vfio/vfio does not exist: load the vfio-pci module';
    for (const [iface, pattern] of [
      ['auto', `\\(/dev/vfio/7; auto: no VFIO device cdev, so the container/group interface${noContainer}`],
      ['group', `\\(/dev/vfio/7; forced \\(--iommu-interface group\\)${noContainer}`],
      [
        'cdev',
        '\\(/dev/vfio/devices/<vfioN>; forced \\(--iommu-interface cdev\\)\\): 0000:00:03\\.0 has no VFIO device cdev',
      ],
    ] as const) {
      const r = cli(['--iommu-interface', iface, 'serve', '00:03.0', '--socket', socket], {
        VFIO_TS_SYSFS_ROOT: sys.sysfsRoot,
      });
      expect([r.code, r.stdout], r.stderr).toEqual([1, '']);
      expect(r.stderr).toMatch(
        new RegExp(`^vfio-ts: 0000:00:03\\.0 through the (group|cdev) interface .*${pattern}`),
      );
      expect(existsSync(socket)).toBe(false);
    }
  });

  it('--help names the kernel device and the DMA rule', () => {
    const help = cli(['serve', '--help']).stdout.replace(/\s+/g, ' ');
    expect(help).toMatch(
      /PCI address \(0000:01:00\.0, bound to vfio-pci; --iommu-interface and --sysfs-root apply\)/,
    );
    expect(help).toMatch(/the client must give its DMA memory as fds/);
    expect(help).toMatch(/--no-mmap kernel devices: offer no region for mmap/);
    const r = cli(['serve', 'sim:nvme', '--no-mmap', '--socket', join(tmp.dir, 'n.sock')]);
    expect([r.code, r.stderr]).toEqual([2, 'vfio-ts: --no-mmap applies to kernel devices (a PCI address)\n']);
  });

  afterAll(() => tmp[Symbol.dispose]());
});
