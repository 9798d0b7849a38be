/**
 * Trace events in QEMU's style: a name, a printf format and positional
 * arguments, published on `node:diagnostics_channel` (one channel per event,
 * named `vfio-ts:trace:<event>`). Nothing is formatted unless someone
 * subscribes, so tracing is free when off. Consumers (the CLI's `--trace`)
 * print `<event> <formatted args>` like QEMU's log trace backend.
 */
import diagnosticsChannel from 'node:diagnostics_channel';

export type TraceArg = number | bigint | string | boolean;

/** What a subscriber receives on an event's channel. */
export interface TraceMessage {
  readonly event: string;
  readonly format: string;
  readonly args: readonly TraceArg[];
}

export interface TraceEvent {
  readonly name: string;
  readonly format: string;
  readonly channelName: string;
  /** True while someone listens: guard expensive argument building with it. */
  readonly enabled: boolean;
  /** Publishes the event when someone listens (a method: call it on the event). */
  emit(...args: TraceArg[]): void;
}

const CHANNEL_PREFIX = 'vfio-ts:trace:';
// The catalog of defined events (write-once per name, filled at module load),
// so a consumer can expand a glob like `vfio_region_*` to channels. It is kept
// on globalThis under a registered symbol because diagnostics channels are
// process-wide by name: two installed copies of this package (a user's tree can
// hold several versions) must still see one catalog, or `--trace` would miss
// the events defined through the other copy.
const CATALOG_KEY = Symbol.for('@vfio-ts/trace.catalog');
const globalSlot = globalThis as { [CATALOG_KEY]?: Map<string, TraceEvent> };
globalSlot[CATALOG_KEY] ??= new Map<string, TraceEvent>();
const catalog: Map<string, TraceEvent> = globalSlot[CATALOG_KEY];

export function traceChannelName(event: string): string {
  return CHANNEL_PREFIX + event;
}

/**
 * An event over its channel. A class, not an object literal: V8 inlines a
 * prototype getter, while a getter defined in a literal cost ~15-20 ns per
 * `enabled` check here, more than some of the hot paths it guards.
 */
class ChannelTraceEvent implements TraceEvent {
  readonly name: string;
  readonly format: string;
  readonly channelName: string;
  readonly #channel: diagnosticsChannel.Channel;

  constructor(name: string, format: string) {
    this.#channel = diagnosticsChannel.channel(traceChannelName(name));
    this.name = name;
    this.format = format;
    this.channelName = this.#channel.name as string;
  }

  get enabled(): boolean {
    return this.#channel.hasSubscribers;
  }

  emit(...args: TraceArg[]): void {
    const channel = this.#channel;
    if (channel.hasSubscribers)
      channel.publish({ event: this.name, format: this.format, args } satisfies TraceMessage);
  }
}

/** Defines (or returns the already defined) event `name` with a QEMU printf `format`. */
export function defineTraceEvent(name: string, format: string): TraceEvent {
  const existing = catalog.get(name);
  if (existing) {
    if (existing.format !== format) throw new Error(`trace event ${name} redefined with another format`);
    return existing;
  }
  const event = new ChannelTraceEvent(name, format);
  catalog.set(name, event);
  return event;
}

/** Every event defined so far in this process (packages define theirs when loaded). */
export function traceEvents(): TraceEvent[] {
  return [...catalog.values()];
}

/** The events whose names match a QEMU `-trace` pattern (`*` and `?` globs). */
export function matchTraceEvents(pattern: string): TraceEvent[] {
  const re = new RegExp(
    `^${pattern
      .replace(/[.+^${}()|[\]\\]/g, '\\$&')
      .replace(/\*/g, '.*')
      .replace(/\?/g, '.')}$`,
  );
  return traceEvents().filter((e) => re.test(e.name));
}
