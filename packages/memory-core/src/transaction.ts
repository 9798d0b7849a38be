/**
 * Topology changes and transactions, as QEMU's memory_region_transaction_*:
 * every change bumps a version; address spaces re-render lazily on their
 * next access, and those with listeners are brought up to date (and their
 * listeners told) when the outermost transaction commits, so a batch of
 * changes rebuilds each FlatView once.
 */

interface TopologyObserver {
  /** Called once per commit in which the topology changed. */
  topologyCommitted(): void;
}

let version = 0;
let depth = 0;
let pending = false;
const observers = new Set<TopologyObserver>();

export function topologyVersion(): number {
  return version;
}

/** Records a change to the region tree (called by MemoryRegion mutators). */
export function topologyChanged(): void {
  version++;
  pending = true;
  if (depth === 0) flush();
}

export function beginTransaction(): void {
  depth++;
}

export function commitTransaction(): void {
  if (depth === 0) throw new Error('commitTransaction() without beginTransaction()');
  depth--;
  if (depth === 0 && pending) flush();
}

/** Runs `fn` as one transaction: the FlatViews are rebuilt once, after it returns (or throws). */
export function memoryTransaction<T>(fn: () => T): T {
  beginTransaction();
  try {
    return fn();
  } finally {
    commitTransaction();
  }
}

export function observeTopology(observer: TopologyObserver): void {
  observers.add(observer);
}

export function unobserveTopology(observer: TopologyObserver): void {
  observers.delete(observer);
}

function flush(): void {
  pending = false;
  for (const observer of [...observers]) observer.topologyCommitted();
}
