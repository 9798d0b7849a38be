/**
 * What a user of a Unix tool expects: a closed pipe or a full disk answered
 * like other tools, errors as JSON under --json, colour as FORCE_COLOR and
 * NO_COLOR say, every argument described, the version, one parser for
 * --trace, and checks that run before a device is touched.
 */
import { spawn } from 'node:child_process';
import { closeSync, openSync, readFileSync, symlinkSync } from 'node:fs';
import { builtinModels } from '@vfio-ts/plugin-host';
import { FakeSystem } from '@vfio-ts/test-support';
import { describe, expect, it } from 'vitest';
import { colorEnabled } from '../src/output.js';
import { BIN, cli } from './run-cli.js';

const VERSION = (
  JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }
).version;

describe('output that goes away', () => {
  it('stops quietly when the reader closed the pipe (inspect | head -1)', async () => {
    const child = spawn(process.execPath, [BIN, 'inspect', 'sim:nvme'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stdout.destroy(); // the reader is gone before the first write
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    const code = await new Promise<number | null>((resolve) => child.on('close', (c) => resolve(c)));
    expect(stderr).toBe('');
    expect(code).toBe(0);
  });

  it('reports a full disk in one line and exits 1', () => {
    const full = openSync('/dev/full', 'w');
    try {
      const r = cli(['inspect', 'sim:nvme'], {}, { stdio: ['ignore', full, 'pipe'] });
      expect(r.stderr).toBe('vfio-ts: cannot write output: no space left on device (ENOSPC)\n');
      expect(r.code).toBe(1);
    } finally {
      closeSync(full);
    }
  });
});

describe('--json errors are one JSON document with the same exit code', () => {
  const cases: [string, string[], number, string][] = [
    ['bad input', ['inspect', 'sim:nvmf', '--json'], 2, 'ERR_SIM_UNKNOWN_MODEL'],
    ['usage error', ['read', 'sim:nvme', '9', '0', '--json'], 2, 'ERR_USAGE'],
    ['unknown command', ['--json', 'frob'], 2, 'ERR_USAGE'],
    ['missing argument', ['--json', 'inspect'], 2, 'ERR_USAGE'],
    ['no command', ['--json'], 2, 'ERR_USAGE'],
    [
      'device error',
      ['--json', '--option', 'x-msix-relocation=auto', 'inspect', 'sim:nvme'],
      1,
      'ERR_VFIO_PCI_MSIX_RELOCATION',
    ],
  ];
  it.each(cases)('%s', (_what, args, exit, code) => {
    const human = cli(args.filter((a) => a !== '--json'));
    const r = cli(args);
    expect(r.code).toBe(exit);
    expect(human.code).toBe(exit);
    expect(r.stderr).toBe('');
    const doc = JSON.parse(r.stdout);
    expect(Object.keys(doc)).toEqual(['error']);
    expect(Object.keys(doc.error)).toEqual(['code', 'message', 'hint']);
    expect(doc.error.code).toBe(code);
    expect(doc.error.message.length).toBeGreaterThan(0);
    // The human form says the same thing (commander's own words for a missing command: its help).
    if (args.length > 1) expect(human.stderr).toContain(doc.error.message);
    else
      expect([doc.error.message, human.stderr]).toEqual([
        'no command given',
        expect.stringMatching(/^Usage: vfio-ts/),
      ]);
  });
});

describe('colour', () => {
  it('follows FORCE_COLOR, then a non-empty NO_COLOR, then the TTY', () => {
    const tty = { isTTY: true };
    const pipe = { isTTY: false };
    expect(colorEnabled(tty, {})).toBe(true);
    expect(colorEnabled(pipe, {})).toBe(false);
    expect(colorEnabled(tty, { NO_COLOR: '1' })).toBe(false);
    expect(colorEnabled(tty, { NO_COLOR: '' })).toBe(true); // no-color.org: empty means unset
    expect(colorEnabled(pipe, { FORCE_COLOR: '1' })).toBe(true);
    expect(colorEnabled(pipe, { FORCE_COLOR: '1', NO_COLOR: '1' })).toBe(true);
    expect(colorEnabled(tty, { FORCE_COLOR: '0' })).toBe(false);
    expect(colorEnabled(tty, { FORCE_COLOR: '' })).toBe(true);
  });

  it('FORCE_COLOR colours output into a pipe; without it there is none', () => {
    expect(cli(['inspect', 'sim:nvme'], { FORCE_COLOR: '1' }).stdout).toContain('\x1b[1mDevice\x1b[22m');
    expect(cli(['inspect', 'sim:nvme'], { NO_COLOR: '' }).stdout).not.toContain('\x1b[');
  });
});

describe('help and version', () => {
  const commands = [
    'list',
    'inspect',
    'mtree',
    'config',
    'read',
    'write',
    'bench',
    'bind',
    'unbind',
    'serve',
  ];

  it.each(commands)('every argument of %s is described in its --help', (cmd) => {
    const r = cli([cmd, '--help']);
    expect(r.code).toBe(0);
    const usage = /^Usage: vfio-ts (.*)$/m.exec(r.stdout)![1]!;
    for (const [, name] of usage.matchAll(/<([^>]+)>/g)) {
      // "  name   description" in the Arguments section.
      expect(r.stdout, `${cmd} <${name}>`).toMatch(new RegExp(`^\\s+${name}\\s{2,}\\S`, 'm'));
    }
  });

  it('--version and -V print the package version', () => {
    expect(cli(['--version']).stdout).toBe(`${VERSION}\n`);
    expect(cli(['-V']).stdout).toBe(`${VERSION}\n`);
  });
});

describe('arguments are checked before any device is touched', () => {
  it('write refuses a bad value before opening the device', () => {
    // Opening and realizing would emit vfio_region_setup; nothing must be opened.
    const r = cli(['--trace', 'vfio_region_setup', 'write', 'sim:nvme', '0', '0x24', '0x1z']);
    expect(r.stderr).toBe('vfio-ts: value "0x1z" is not a number\n  use decimal or 0x-prefixed hex\n');
    expect(r.code).toBe(2);
    const k = cli(['write', '0000:00:03.0', '0', '0', '0x1ff', '--size', '1'], {
      VFIO_TS_SYSFS_ROOT: '/nonexistent/sys',
    });
    expect(k.stderr).toBe('vfio-ts: value 0x1ff does not fit a 1-byte access\n');
  });

  it('--trace is parsed once, by commander: a usage error prints no trace warnings', () => {
    const r = cli(['--trace', 'nomatch_*', 'frob']);
    expect(r.code).toBe(2);
    expect(r.stderr).toBe("error: unknown command 'frob'\n(see --help)\n");
    const eq = cli(['--trace=vfio_region_setup', 'read', 'sim:nvme', '0', '0x8']);
    expect(eq.stderr).toMatch(/^vfio_region_setup Device sim:nvme, region 0/);
  });

  it('the hint for a bad device lists the built-in models plugin-host has', () => {
    const r = cli(['inspect', 'nvme']);
    expect(r.stderr).toContain(`sim:<name> (${Object.keys(builtinModels).join(', ')})`);
  });
});

describe('list on a changing machine', () => {
  it('survives a dangling link in an IOMMU group and says which device vanished', () => {
    const sys = new FakeSystem().addDevice('0000:00:03.0', { group: 3, driver: 'vfio-pci' });
    symlinkSync(
      '../../../../devices/pci0000:00/0000:00:03.1',
      `${sys.sysfsRoot}/kernel/iommu_groups/3/devices/0000:00:03.1`,
    );
    const r = cli(['list'], { VFIO_TS_SYSFS_ROOT: sys.sysfsRoot });
    expect(r.code).toBe(0);
    expect(r.stderr).toBe(
      'vfio-ts: warning: 0000:00:03.1 in IOMMU group 3 vanished while listing (hot-unplugged?)\n',
    );
    expect(r.stdout).toContain('0000:00:03.0');
    const doc = JSON.parse(cli(['list', '--json'], { VFIO_TS_SYSFS_ROOT: sys.sysfsRoot }).stdout);
    expect(doc.groups[0].vanished).toEqual(['0000:00:03.1']);
  });

  it('a sysfs root that does not exist is an error, not "no IOMMU groups"', () => {
    const r = cli(['list', '--sysfs-root', '/nonexistent/sys']);
    expect(r.code).toBe(2);
    expect(r.stderr).toBe(
      'vfio-ts: sysfs root /nonexistent/sys does not exist\n  check --sysfs-root / VFIO_TS_SYSFS_ROOT (the default is /sys)\n',
    );
  });
});
