/** The built binary, spawned as a user would run it. */
import { type SpawnSyncOptions, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export const BIN = fileURLToPath(new URL('../dist/bin.js', import.meta.url));

export interface CliResult {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs `vfio-ts args...` with NO_COLOR set (unless `env` says otherwise). */
export function cli(
  args: readonly string[],
  env: Record<string, string | undefined> = {},
  extra: SpawnSyncOptions = {},
): CliResult {
  const r = spawnSync(process.execPath, [BIN, ...args], {
    encoding: 'utf8',
    ...extra,
    env: { ...process.env, NO_COLOR: '1', FORCE_COLOR: undefined, VFIO_TS_SYSFS_ROOT: undefined, ...env },
  });
  return { code: r.status, signal: r.signal, stdout: String(r.stdout ?? ''), stderr: String(r.stderr ?? '') };
}
