import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface TempDir extends Disposable {
  readonly dir: string;
}

/** A new folder under the system's temporary directory, removed with everything in it on dispose (`using`). */
export function tempDir(prefix = 'vfio-ts-test-'): TempDir {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, [Symbol.dispose]: () => rmSync(dir, { recursive: true, force: true }) };
}
