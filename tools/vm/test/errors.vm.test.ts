// Error paths that need a real kernel: a group that is not viable, a device
// opened twice, a user without access to /dev/vfio. Each must be a typed error
// that says what to do, and leave nothing open behind it.
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { expectNoLeaksInFile } from '@vfio-ts/test-support';
import { openKernelDevice, VfioError } from '@vfio-ts/vfio-sys';
import { describe, expect, it } from 'vitest';
import { guestDevice } from '../src/devices.js';
import { REPO_ROOT } from '../src/guest.js';
import { REFERENCE } from './reference.js';

function thrown(fn: () => unknown): VfioError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(VfioError);
    return err as VfioError;
  }
  throw new Error('expected an error');
}

expectNoLeaksInFile();

describe('errors from the real driver', () => {
  it('a group that is not viable names the device that blocks it', () => {
    const blocked = guestDevice('edu-shared');
    const err = thrown(() => openKernelDevice(blocked.bdf));
    expect(err.code).toBe('ERR_VFIO_GROUP_NOT_VIABLE');
    expect(err.message).toContain(`${guestDevice('rng-shared').bdf} (bound to virtio-pci)`);
    expect(err.hint).toMatch(/bind every device of the group to vfio-pci/);
  });

  it('a device opened twice: the second open is refused as busy, the first keeps working', () => {
    using first = openKernelDevice(REFERENCE.nvme.bdf);
    const err = thrown(() => openKernelDevice(REFERENCE.nvme.bdf));
    expect(err.code).toBe('ERR_VFIO_BUSY');
    expect(err.hint).toMatch(/already has it open/);
    expect(first.regionRead(7, 0, 4)).toBe(REFERENCE.nvme.vendorDevice);
  });

  it('a user without access to /dev/vfio gets a permission error that says how to fix it', () => {
    const vfioSys = pathToFileURL(join(REPO_ROOT, 'packages', 'vfio-sys', 'dist', 'index.js')).href;
    const script = `
      const { openKernelDevice } = await import(${JSON.stringify(vfioSys)});
      try { openKernelDevice(${JSON.stringify(REFERENCE.edu.bdf)}); console.log(JSON.stringify({ opened: true })); }
      catch (e) { console.log(JSON.stringify({ code: e.code, message: e.message, hint: e.hint })); }`;
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], {
      encoding: 'utf8',
      uid: 65534,
      gid: 65534,
      cwd: '/tmp',
    });
    expect(r.status, r.stderr).toBe(0);
    const result = JSON.parse(r.stdout);
    expect(result.code).toBe('ERR_VFIO_PERMISSION');
    expect(result.message).toContain('/dev/vfio/');
    expect(result.hint).toMatch(/run as root/);
  });

  it('the CLI reports the non-viable group in one line with exit code 1', () => {
    const bin = join(REPO_ROOT, 'packages', 'cli', 'dist', 'bin.js');
    const r = spawnSync(process.execPath, [bin, 'inspect', guestDevice('edu-shared').bdf], {
      encoding: 'utf8',
      env: { ...process.env, NO_COLOR: '1' },
    });
    expect(r.status).toBe(1);
    expect(r.stderr).toContain('is not viable');
    expect(r.stderr).toContain('0000:00:0a.1 (bound to virtio-pci)');
  });
});
