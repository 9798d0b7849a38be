import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { VfioError } from '../src/errors.js';
import { assertLinux } from '../src/linux-only.js';

const built = fileURLToPath(new URL('../dist/index.js', import.meta.url));

/**
 * Imports the built package in a Node whose process.platform says `platform`.
 * koffi has native builds for macOS, Windows and the BSDs, so it is loaded first,
 * as it would load there; then only libc.so.6 is missing, as on those systems.
 */
function importAs(platform: string, entry: string): string {
  const script = `await import('koffi');
Object.defineProperty(process, 'platform', { value: ${JSON.stringify(platform)} });
try { await import(${JSON.stringify(entry)}); console.log('imported'); }
catch (error) { console.log(JSON.stringify({ name: error.name, code: error.code, message: error.message })); }`;
  const child = spawnSync(process.execPath, ['--input-type=module', '-e', script], {
    cwd: fileURLToPath(new URL('..', import.meta.url)),
    encoding: 'utf8',
  });
  expect(child.stderr).toBe('');
  return child.stdout.trim();
}

describe('vfio-sys on an OS other than Linux', () => {
  it('assertLinux refuses every platform but linux with ERR_VFIO_PLATFORM and a hint', () => {
    expect(() => assertLinux('linux')).not.toThrow();
    for (const platform of ['darwin', 'win32', 'freebsd']) {
      let caught: unknown;
      try {
        assertLinux(platform);
      } catch (error) {
        caught = error;
      }
      expect(caught).toBeInstanceOf(VfioError);
      expect(caught).toMatchObject({ code: 'ERR_VFIO_PLATFORM', hint: expect.stringContaining('Linux') });
      expect((caught as Error).message).toContain(`vfio-ts needs Linux (this is ${platform})`);
    }
  });

  it('importing the built package on darwin says "vfio-ts needs Linux", not a dlopen error', () => {
    const seen = JSON.parse(importAs('darwin', built));
    expect(seen).toMatchObject({ name: 'VfioError', code: 'ERR_VFIO_PLATFORM' });
    expect(seen.message).toMatch(/^vfio-ts needs Linux \(this is darwin\)/);
    expect(seen.message).not.toMatch(/dlopen|libc\.so/);
  });

  it('the same build imports on linux', () => {
    expect(importAs('linux', built)).toBe('imported');
  });
});
