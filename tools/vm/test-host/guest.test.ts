// The harness itself, on the host: a command's output and exit code come
// back, a hung guest is ended by the timeout, a guest that cannot boot fails
// with its console log. Needs QEMU and the cached image (prepareGuest builds them).
import { existsSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { GUEST_DEVICES } from '../src/devices.js';
import { type GuestImage, prepareGuest, runInGuest, VM_ROOT, VmError } from '../src/guest.js';

let image: GuestImage;
const runFolders = () => {
  const dir = join(VM_ROOT, '.cache', 'runs');
  return existsSync(dir) ? readdirSync(dir).sort() : [];
};
beforeAll(() => {
  image = prepareGuest();
}, 300_000);

async function failure(p: Promise<unknown>): Promise<VmError> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(VmError);
    return err as VmError;
  }
  throw new Error('expected the guest run to fail');
}

describe('runInGuest', () => {
  it('returns the command output and exit code, and the guest saw the devices bound to vfio-pci', async () => {
    const seen: string[] = [];
    const r = await runInGuest({
      image,
      command: 'echo "vfio: $(ls /sys/bus/pci/drivers/vfio-pci | grep -c 0000:)"; pwd; exit 7',
      onOutput: (s) => seen.push(s),
      timeoutSeconds: 120,
    });
    try {
      expect(r.exitCode).toBe(7);
      expect(r.output).toBe(
        `vfio: ${GUEST_DEVICES.filter((d) => d.vfio).length}\n${join(VM_ROOT, '..', '..')}\n`,
      );
      expect(seen.join('')).toBe(r.output);
      expect(r.bootSeconds).toBeGreaterThan(0);
      expect(r.endSeconds).toBeGreaterThanOrEqual(r.bootSeconds!);
    } finally {
      r.cleanup();
    }
  });

  it('kills a guest that runs past its timeout and says so, with the console log', async () => {
    const before = runFolders();
    const err = await failure(runInGuest({ image, command: 'sleep 1000', timeoutSeconds: 15 }));
    expect(err.code).toBe('ERR_VM_TIMEOUT');
    expect(err.message).toContain('did not finish within 15 s');
    expect(err.consoleLog).toContain('vm-init: uptime');
    expect(runFolders()).toEqual(before);
  });

  it('fails with the console log when the guest cannot boot (no usable initramfs)', async () => {
    const before = runFolders();
    const broken = join(VM_ROOT, '.cache', 'broken-initrd.cpio.gz');
    writeFileSync(broken, 'not an initramfs');
    const err = await failure(
      runInGuest({ image: { ...image, initrd: broken }, command: 'true', timeoutSeconds: 120 }).finally(() =>
        rmSync(broken),
      ),
    );
    expect(err.code).toBe('ERR_VM_BOOT');
    expect(err.message).toContain('stopped without running the command');
    expect(err.consoleLog).toMatch(/Kernel panic/);
    expect(runFolders()).toEqual(before);
  });
});
