/**
 * The drivers devices had before `bindToVfioPci` took them, so that
 * `unbindFromVfioPci` can give each back. The kernel keeps no such history
 * (driver_override only names the new driver), so it is kept in
 * `/run/vfio-ts/original-drivers.json` (beside a non-default sysfs root, see
 * paths.ts): on tmpfs, gone at reboot exactly when the bindings are.
 */
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { VfioError } from '../errors.js';
import { runStatePath, type SysfsOptions } from './paths.js';

export interface OriginalDriver {
  /** The driver it was bound to, or null for none. */
  readonly driver: string | null;
  /** Its driver_override before ours, or null for none. */
  readonly override: string | null;
}

type StateFile = Record<string, OriginalDriver>;

export function originalDriversPath(options: SysfsOptions): string {
  return runStatePath(options, 'original-drivers.json');
}

const isNameOrNull = (v: unknown) => v === null || (typeof v === 'string' && /^[\w.-]{1,64}$/.test(v));

/** The recorded state; an unreadable or malformed file counts as empty (nothing is known). */
function load(options: SysfsOptions): StateFile {
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(originalDriversPath(options), 'utf8'));
  } catch {
    return {};
  }
  const state: StateFile = {};
  if (typeof parsed !== 'object' || parsed === null) return state;
  for (const [bdf, entry] of Object.entries(parsed)) {
    const e = entry as Partial<OriginalDriver> | null;
    if (e && isNameOrNull(e.driver) && isNameOrNull(e.override))
      state[bdf] = { driver: e.driver ?? null, override: e.override ?? null };
  }
  return state;
}

function save(options: SysfsOptions, state: StateFile): void {
  const path = originalDriversPath(options);
  try {
    mkdirSync(dirname(path), { recursive: true });
    // Write then rename, so a crash never leaves half a file.
    writeFileSync(`${path}.tmp`, `${JSON.stringify(state, null, 2)}\n`);
    renameSync(`${path}.tmp`, path);
  } catch (err) {
    throw new VfioError('ERR_VFIO_STATE', `cannot record original drivers in ${path}`, {
      hint: `${(err as NodeJS.ErrnoException).code ?? 'error'}: make ${dirname(path)} writable (binding needs root)`,
      cause: err,
    });
  }
}

/** Records the driver each device has now (before it is taken; a device on vfio-pci is never recorded). */
export function rememberOriginalDrivers(
  options: SysfsOptions,
  devices: readonly { bdf: string; driver: string | null; driverOverride: string | null }[],
): void {
  const state = load(options);
  for (const d of devices) state[d.bdf] = { driver: d.driver, override: d.driverOverride };
  save(options, state);
}

/** The driver recorded for `bdf`, or undefined when vfio-ts did not bind it. */
export function originalDriver(options: SysfsOptions, bdf: string): OriginalDriver | undefined {
  return load(options)[bdf];
}

export function forgetOriginalDriver(options: SysfsOptions, bdf: string): void {
  const state = load(options);
  if (!(bdf in state)) return;
  delete state[bdf];
  save(options, state);
}
