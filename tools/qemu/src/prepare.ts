/** Builds (or finds in the cache) the trixie root with QEMU 11.1, the 6.12 kernel and the initramfs: guest/prepare.sh. */
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { QemuError } from './errors.js';

export const QEMU_TIER_ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
export const REPO_ROOT = join(QEMU_TIER_ROOT, '..', '..');
export const CACHE_DIR = process.env.VFIO_TS_QEMU_CACHE ?? join(QEMU_TIER_ROOT, '.cache');

export interface QemuImage {
  /** The trixie root QEMU runs chrooted in. */
  readonly root: string;
  /** Guest kernel and base initramfs (host paths; bound into the root at the same paths). */
  readonly kernel: string;
  readonly initrd: string;
  /** Static busybox (for the per-run cpio archive). */
  readonly busybox: string;
  /** QEMU's path inside the root, and its `--version` line. */
  readonly qemu: string;
  readonly qemuVersion: string;
  readonly kernelVersion: string;
}

let cached: QemuImage | undefined;

/** Runs guest/prepare.sh once per process (its own cache makes a second call cheap anyway). */
export function prepareQemu(): QemuImage {
  if (cached) return cached;
  const r = spawnSync('bash', [join(QEMU_TIER_ROOT, 'guest', 'prepare.sh')], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, VFIO_TS_QEMU_CACHE: CACHE_DIR },
  });
  process.stderr.write(r.stderr ?? '');
  const values = new Map<string, string>();
  for (const line of (r.stdout ?? '').split('\n')) {
    const eq = line.indexOf('=');
    if (eq > 0) values.set(line.slice(0, eq), line.slice(eq + 1));
  }
  const need = ['root', 'kernel', 'initrd', 'busybox', 'qemu', 'qemu_version', 'kernel_version'];
  const absent = need.filter((k) => !values.get(k));
  if (r.status !== 0 || absent.length > 0) {
    throw new QemuError(
      'ERR_QEMU_PREPARE',
      `tools/qemu/guest/prepare.sh failed (exit ${r.status ?? r.signal}${absent.length ? `, missing ${absent.join(', ')}` : ''})`,
      { part: 'prepare', qemuStderr: r.stderr ?? String(r.error ?? '') },
    );
  }
  cached = {
    root: values.get('root')!,
    kernel: values.get('kernel')!,
    initrd: values.get('initrd')!,
    busybox: values.get('busybox')!,
    qemu: values.get('qemu')!,
    qemuVersion: values.get('qemu_version')!,
    kernelVersion: values.get('kernel_version')!,
  };
  return cached;
}
