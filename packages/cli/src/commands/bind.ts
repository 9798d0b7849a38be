/**
 * `vfio-ts bind|unbind <bdf>`: the sysfs layer decides (what is safe, what
 * was there before); this only prints what changed.
 */
import { type BindChange, bindToVfioPci, type SysfsOptions, unbindFromVfioPci } from '@vfio-ts/vfio-sys';
import type { Output } from '../output.js';

function printChanges(out: Output, changes: readonly BindChange[]): void {
  if (out.json) {
    out.document({ changes });
    return;
  }
  for (const c of changes)
    out.line(
      c.from === c.to
        ? `${c.bdf}: already on ${c.to ?? 'no driver'}, unchanged`
        : `${c.bdf}: ${c.from ?? 'no driver'} -> ${c.to ?? 'no driver'}`,
    );
}

export function bind(
  out: Output,
  bdf: string,
  options: SysfsOptions & { force: boolean; group: boolean },
): void {
  printChanges(out, bindToVfioPci(bdf, options));
}

export function unbind(out: Output, bdf: string, options: SysfsOptions & { force: boolean }): void {
  printChanges(out, [unbindFromVfioPci(bdf, options)]);
}
