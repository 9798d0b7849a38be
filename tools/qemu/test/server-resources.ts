/** A served process's own resources, counted from /proc (the leak check of tests that keep one server across clients). */
import { readdirSync, readFileSync } from 'node:fs';

export function serverResources(pid: number): { fds: number; memfdMaps: number } {
  return {
    fds: readdirSync(`/proc/${pid}/fd`).length,
    memfdMaps: readFileSync(`/proc/${pid}/maps`, 'utf8')
      .split('\n')
      .filter((l) => l.includes('memfd:')).length,
  };
}

export async function until(what: string, check: () => boolean, timeoutMs = 10_000): Promise<void> {
  const started = Date.now();
  while (!check()) {
    if (Date.now() - started > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
