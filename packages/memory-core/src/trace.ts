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
  emit(...args: TraceArg[]): void;
}

const CHANNEL_PREFIX = 'vfio-ts:trace:';
// The catalog of defined events (write-once per name, filled at module load),
// so a consumer can expand a glob like `vfio_region_*` to channels.
const catalog = new Map<string, TraceEvent>();

export function traceChannelName(event: string): string {
  return CHANNEL_PREFIX + event;
}

/** Defines (or returns the already defined) event `name` with a QEMU printf `format`. */
export function defineTraceEvent(name: string, format: string): TraceEvent {
  const existing = catalog.get(name);
  if (existing) {
    if (existing.format !== format) throw new Error(`trace event ${name} redefined with another format`);
    return existing;
  }
  const channel = diagnosticsChannel.channel(traceChannelName(name));
  const event: TraceEvent = {
    name,
    format,
    channelName: channel.name as string,
    get enabled() {
      return channel.hasSubscribers;
    },
    emit(...args: TraceArg[]) {
      if (channel.hasSubscribers) channel.publish({ event: name, format, args } satisfies TraceMessage);
    },
  };
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

/**
 * printf as QEMU's trace formats use it: %s %d %i %u %x %lx %llx %" PRIx64 "-style
 * conversions, with optional `0`/width and `l`/`ll`/`z` length, and %%.
 * Negative numbers under %x print as 64-bit two's complement, as a C uint64_t would.
 */
export function formatTrace(format: string, args: readonly TraceArg[]): string {
  let i = 0;
  return format.replace(
    /%([-0]?)(\d*)(?:hh|h|ll|l|z|j)?([sdiuxXpc%])/g,
    (_m, flag: string, width: string, conv: string) => {
      if (conv === '%') return '%';
      const arg = args[i++];
      let text: string;
      switch (conv) {
        case 's':
          text = String(arg);
          break;
        case 'c':
          text = typeof arg === 'number' ? String.fromCharCode(arg) : String(arg);
          break;
        case 'd':
        case 'i':
        case 'u':
          text = typeof arg === 'boolean' ? (arg ? '1' : '0') : BigInt(arg as number | bigint).toString(10);
          break;
        default: {
          let v = typeof arg === 'boolean' ? (arg ? 1n : 0n) : BigInt(arg as number | bigint);
          if (v < 0n) v = BigInt.asUintN(64, v);
          text = v.toString(16);
          if (conv === 'X') text = text.toUpperCase();
          if (conv === 'p') text = `0x${text}`;
        }
      }
      const w = width === '' ? 0 : Number(width);
      if (text.length >= w) return text;
      if (flag === '-') return text.padEnd(w, ' ');
      return text.padStart(w, flag === '0' ? '0' : ' ');
    },
  );
}
