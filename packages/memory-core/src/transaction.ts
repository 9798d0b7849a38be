/**
 * Topology changes and transactions, as QEMU's memory_region_transaction_*.
 *
 * Each address space keeps its own record of what changed under its root
 * (its own version and change list), so one device's churn never touches
 * another device's view: a change is routed, when it is made, to the address
 * spaces whose root it sits under. Views re-render lazily on their next
 * access, patching only the windows the changes touched; address spaces with
 * listeners are brought up to date, and their listeners told, when the
 * outermost transaction commits, so a batch rebuilds each FlatView once.
 *
 * Two things stay process-wide on purpose. The transaction depth: like
 * QEMU's memory_region_transaction_depth, a transaction batches every change
 * made inside it, whichever tree it touches (a device's realize reshapes its
 * BARs and the PCI address space together). And the list of address spaces
 * to route changes to (QEMU's `address_spaces`), held weakly so an address
 * space nobody references can be collected without `destroy()`.
 */

/** What changed: `intervals` are in the coordinates of `container` (null: the region is detached). */
export interface TopologyChange {
  readonly region: TopologyRegion | null;
  readonly container: TopologyRegion | null;
  readonly intervals: readonly (readonly [number, number])[];
}

/** The little of a region the routing needs (kept structural to avoid an import cycle). */
export interface TopologyRegion {
  readonly address: number;
  readonly container: TopologyRegion | null;
  readonly aliasUserCount: number;
}

/** Where a change lands for one root. */
export type ChangeReach = 'outside' | 'inside' | 'anywhere';

/** An address space, as the router sees it. */
export interface TopologyObserver {
  readonly root: TopologyRegion;
  /** A change that may show in this view (`reach` 'inside' or 'anywhere') was made. */
  topologyChanged(change: TopologyChange, reach: ChangeReach): void;
  /** The outermost transaction committed (or a change was made outside any). */
  topologyCommitted(): void;
}

const observers = new Set<WeakRef<TopologyObserver>>();
const forget = new FinalizationRegistry<WeakRef<TopologyObserver>>((ref) => observers.delete(ref));
let depth = 0;
let pending = false;

/** Starts routing changes to `observer` until it is collected or unregistered. Returns the unregistration. */
export function observeTopology(observer: TopologyObserver): () => void {
  const ref = new WeakRef(observer);
  observers.add(ref);
  forget.register(observer, ref, ref);
  return () => {
    observers.delete(ref);
    forget.unregister(ref);
  };
}

/**
 * Whether `change` can show in a view of `root`: under it ('inside'), nowhere
 * near it ('outside'), or possibly anywhere, because an alias points into the
 * changed subtree or the change was not described ('anywhere').
 */
export function changeReach(change: TopologyChange, root: TopologyRegion): ChangeReach {
  if (change.region === null) return 'anywhere';
  // Up from the region while it is attached, then (a removed region) from its old container.
  let at: TopologyRegion | null = change.region;
  while (at !== null) {
    if (at.aliasUserCount > 0) return 'anywhere';
    if (at === root) return 'inside';
    at = at.container ?? (at === change.region ? change.container : null);
  }
  return 'outside';
}

/**
 * Records a change to the region tree (called by MemoryRegion mutators).
 * Without a description, every address space re-renders in full.
 */
export function topologyChanged(change: Partial<TopologyChange> = {}): void {
  const full: TopologyChange = { region: null, container: null, intervals: [], ...change };
  for (const ref of observers) {
    const observer = ref.deref();
    if (observer === undefined) {
      observers.delete(ref);
      continue;
    }
    const reach = changeReach(full, observer.root);
    if (reach !== 'outside') observer.topologyChanged(full, reach);
  }
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

function flush(): void {
  pending = false;
  for (const ref of [...observers]) ref.deref()?.topologyCommitted();
}
