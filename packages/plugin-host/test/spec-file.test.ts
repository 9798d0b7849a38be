/**
 * Device spec files are input from outside: only a regular file is read, at
 * most SPEC_FILE_MAX_BYTES of it, so a path naming a FIFO or /dev/zero (even
 * through a symlink) gets one clear error instead of a hang or unbounded
 * memory; a UTF-8 BOM is fine; an MSI-X table overlapping the PBA is refused
 * as QEMU refuses it; and messages quote at most a short prefix of a bad value.
 */
import { spawnSync } from 'node:child_process';
import { closeSync, ftruncateSync, mkdirSync, openSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { resourceCounts, tempDir } from '@vfio-ts/test-support';
import { afterAll, describe, expect, it } from 'vitest';
import { openSimDevice, parseDeviceSpec, SPEC_FILE_MAX_BYTES } from '../src/index.js';

const tmp = tempDir('vfio-ts-spec-file-');
afterAll(() => tmp[Symbol.dispose]());

const good = {
  name: 'bom-dev',
  vendor: '0x1234',
  device: '0x5678',
  class: '0x020000',
  bars: [{ index: 0, type: 'mem32', size: '16K' }],
  msix: { vectors: 8, table: { bar: 0, offset: '0x2000' }, pba: { bar: 0, offset: '0x3000' } },
};

function file(name: string, content: string | Uint8Array): string {
  const path = join(tmp.dir, name);
  writeFileSync(path, content);
  return path;
}

const specFileError = (message: RegExp) =>
  expect.objectContaining({ code: 'ERR_SPEC_FILE', message: expect.stringMatching(message) });

/**
 * Opens `sim:<path>` in a child process with a deadline, so a regression to
 * reading a FIFO or /dev/zero shows as a failure here rather than a hung run.
 */
function openInChild(path: string): { status: number | null; stderr: string; signal: string | null } {
  const dist = new URL('../dist/index.js', import.meta.url).href;
  const script = `import(${JSON.stringify(dist)}).then((m) => {
    try { m.openSimDevice(${JSON.stringify(`sim:${path}`)}).close(); process.exit(0); }
    catch (e) { process.stderr.write(e.code + ' ' + e.message); process.exit(3); }
  });`;
  const r = spawnSync(process.execPath, ['--max-old-space-size=256', '-e', script], {
    timeout: 10_000,
    encoding: 'utf8',
  });
  return { status: r.status, stderr: r.stderr, signal: r.signal };
}

describe('what a spec path may name', () => {
  it('refuses a FIFO at once, without waiting for a writer', () => {
    const fifo = join(tmp.dir, 'fifo.json');
    expect(spawnSync('mkfifo', [fifo]).status).toBe(0);
    expect(() => openSimDevice(`sim:${fifo}`)).toThrow(
      specFileError(/fifo\.json: it is a FIFO, not a regular file/),
    );
    const child = openInChild(fifo);
    expect(child).toMatchObject({ status: 3, signal: null });
    expect(child.stderr).toMatch(/^ERR_SPEC_FILE .*is a FIFO/);
  });

  it('refuses a symlink to /dev/zero without reading it', () => {
    const link = join(tmp.dir, 'zero.json');
    symlinkSync('/dev/zero', link);
    expect(() => openSimDevice(`sim:${link}`)).toThrow(specFileError(/zero\.json: it is a character device/));
    expect(openInChild(link)).toMatchObject({ status: 3, signal: null });
  });

  it('refuses a directory', () => {
    const dir = join(tmp.dir, 'dir.json');
    mkdirSync(dir);
    expect(() => openSimDevice(`sim:${dir}`)).toThrow(specFileError(/it is a directory/));
  });

  it('refuses a file over the size limit before reading it', () => {
    const big = join(tmp.dir, 'big.json');
    const fd = openSync(big, 'w');
    ftruncateSync(fd, 64 * 1024 * 1024); // sparse: costs nothing
    closeSync(fd);
    expect(() => openSimDevice(`sim:${big}`)).toThrow(
      specFileError(new RegExp(`it is 67108864 bytes, over the ${SPEC_FILE_MAX_BYTES}-byte limit`)),
    );
  });

  it('leaves no fd open after any refusal', () => {
    const before = resourceCounts().fds;
    for (const name of ['fifo.json', 'zero.json', 'dir.json', 'big.json', 'missing.json']) {
      expect(() => openSimDevice(`sim:${join(tmp.dir, name)}`)).toThrow();
    }
    expect(resourceCounts().fds).toBe(before);
  });
});

describe('what a spec file may hold', () => {
  it('accepts a UTF-8 byte order mark', () => {
    using dev = openSimDevice(`sim:${file('bom.json', `\uFEFF${JSON.stringify(good)}`)}`);
    expect(dev.model.name).toBe('bom-dev');
    expect(dev.regionRead(7, 0, 4)).toBe(0x56781234);
  });

  it('refuses text that is not UTF-8', () => {
    const path = file('latin1.json', Uint8Array.from([0x7b, 0x22, 0xe9, 0x22, 0x7d])); // {"é"} in Latin-1
    expect(() => openSimDevice(`sim:${path}`)).toThrow(specFileError(/is not UTF-8 text/));
  });

  it.each([
    ['inside the table', '0x2040'],
    ['on the table’s first byte', '0x2000'],
    ['on its last bytes', '0x2078'],
  ])('refuses an MSI-X PBA %s (QEMU’s msix_init does)', (_what, pbaOffset) => {
    const spec = { ...good, msix: { ...good.msix, pba: { bar: 0, offset: pbaOffset } } };
    expect(() => parseDeviceSpec(spec)).toThrow(
      expect.objectContaining({
        code: 'ERR_MODEL_SPEC',
        message: expect.stringMatching(
          /msix\.pba\.offset: the PBA \(0x8 bytes at 0x20[0-9a-f]+\) overlaps the table \(0x80 bytes at 0x2000\) in BAR 0; put it at 0x2080 or beyond/,
        ),
      }),
    );
  });

  it('accepts a PBA right after the table, and the same offsets in different BARs', () => {
    expect(() =>
      parseDeviceSpec({ ...good, msix: { ...good.msix, pba: { bar: 0, offset: '0x2080' } } }),
    ).not.toThrow();
    const twoBars = {
      ...good,
      bars: [...good.bars, { index: 1, type: 'mem32', size: '4K' }],
      msix: { ...good.msix, pba: { bar: 1, offset: '0x2000' }, table: { bar: 0, offset: '0x2000' } },
    };
    expect(() =>
      parseDeviceSpec({ ...twoBars, msix: { ...twoBars.msix, pba: { bar: 1, offset: 0 } } }),
    ).not.toThrow();
  });
});

describe('messages quote a short prefix of a bad value', () => {
  const TEN_MB = 'x'.repeat(10 * 1024 * 1024);
  const messageOf = (fn: () => unknown): string => {
    try {
      fn();
    } catch (err) {
      return (err as Error).message;
    }
    throw new Error('expected a throw');
  };

  it.each([
    ['a 10 MB value', { ...good, vendor: TEN_MB }],
    ['a 10 MB unknown key', { ...good, [TEN_MB]: 1 }],
    ['a 10 MB size', { ...good, bars: [{ index: 0, type: 'mem32', size: TEN_MB }] }],
  ])('%s', (_what, spec) => {
    const message = messageOf(() => parseDeviceSpec(spec));
    expect(message).toMatch(/^device spec is invalid: /);
    expect(message.length).toBeLessThan(500);
  });

  it('ten thousand bad registers are counted, not listed', () => {
    const registers = Array.from({ length: 10_000 }, () => ({ bar: 9, offset: 0, size: 4, value: 0 }));
    const message = messageOf(() => parseDeviceSpec({ ...good, registers }));
    expect(message).toMatch(/\.\.\. and \d{4,} more/);
    expect(message.length).toBeLessThan(5000);
  });

  it('a 10 MB device specifier or spec path', () => {
    expect(messageOf(() => openSimDevice(`sim:${TEN_MB}`)).length).toBeLessThan(500);
    expect(messageOf(() => openSimDevice(`sim:${TEN_MB}.json`))).toMatch(
      /^cannot read device spec file x{200}\.\.\. \(ENAMETOOLONG\)/,
    );
  });
});
