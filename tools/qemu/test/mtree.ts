/**
 * `info mtree` subtrees of one device's BARs, normalized so QEMU's and
 * vfio-ts's can be compared: addresses relative to the BAR, the device's name
 * (QEMU: vfio-user:<socket>; vfio-ts: sim:<name>) replaced by <dev>, depth
 * below the BAR container instead of indentation.
 */
export interface MtreeEntry {
  readonly depth: number;
  readonly start: bigint;
  readonly end: bigint;
  readonly prio: number;
  readonly type: string;
  readonly name: string;
}

const LINE = /^(\s*)([0-9a-f]+)-([0-9a-f]+) \(prio (-?\d+), ([^)]+)\): (.*)$/;

/** The first address space of `info mtree` output with this name (`memory`, `I/O`). */
function addressSpace(text: string, name: string): string[] {
  const lines = text.split('\n');
  const start = lines.indexOf(`address-space: ${name}`);
  if (start < 0) return [];
  const body: string[] = [];
  for (const l of lines.slice(start + 1)) {
    if (l === '' || l.startsWith('address-space:') || l.startsWith('memory-region:')) break;
    body.push(l);
  }
  return body;
}

/** The subtree of `<device> base BAR <bar>` in `space`, normalized; [] when the BAR is not mapped there. */
export function barSubtree(text: string, space: 'memory' | 'I/O', device: string, bar: number): MtreeEntry[] {
  const lines = addressSpace(text, space);
  const at = lines.findIndex((l) => l.endsWith(`: ${device} base BAR ${bar}`));
  if (at < 0) return [];
  const head = LINE.exec(lines[at]!)!;
  const indent = head[1]!.length;
  const base = BigInt(`0x${head[2]}`);
  const out: MtreeEntry[] = [];
  for (const l of lines.slice(at)) {
    const m = LINE.exec(l);
    if (!m) break;
    if (out.length > 0 && m[1]!.length <= indent) break;
    out.push({
      depth: (m[1]!.length - indent) / 2,
      start: BigInt(`0x${m[2]}`) - base,
      end: BigInt(`0x${m[3]}`) - base,
      prio: Number(m[4]),
      type: m[5]!,
      name: m[6]!.split(device).join('<dev>'),
    });
  }
  return out;
}

export function formatSubtree(entries: readonly MtreeEntry[]): string[] {
  return entries.map(
    (e) =>
      `${'  '.repeat(e.depth)}+0x${e.start.toString(16)}-+0x${e.end.toString(16)} (prio ${e.prio}, ${e.type}): ${e.name}`,
  );
}
