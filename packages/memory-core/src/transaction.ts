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

/** What changed: `intervals` are in the coordinates of `container` (null: the region is detached). */
export interface TopologyChange {
  readonly version: number;
  readonly region: TopologyRegion | null;
  readonly container: TopologyRegion | null;
  readonly intervals: readonly (readonly [number, number])[];
}

/** The little of a region the change log needs (kept structural to avoid an import cycle). */
export interface TopologyRegion {
  readonly address: number;
  readonly container: TopologyRegion | null;
  readonly aliasUserCount: number;
}

const LOG_LIMIT = 64;
let log: TopologyChange[] = [];
let version = 0;
let depth = 0;
let pending = false;
const observers = new Set<TopologyObserver>();

export function topologyVersion(): number {
  return version;
}

/**
 * Records a change to the region tree (called by MemoryRegion mutators).
 * Without a description, address spaces re-render in full.
 */
export function topologyChanged(change?: Omit<TopologyChange, 'version'>): void {
  version++;
  log.push({ version, region: null, container: null, intervals: [], ...change });
  if (log.length > LOG_LIMIT) log = log.slice(log.length - LOG_LIMIT);
  pending = true;
  if (depth === 0) flush();
}

/** The changes after `since`, or null when the log no longer reaches back that far. */
export function changesSince(since: number): readonly TopologyChange[] | null {
  const first = log[0];
  if (first === undefined || first.version > since + 1) return null;
  return log.filter((c) => c.version > since);
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
