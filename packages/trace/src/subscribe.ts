/**
 * Listening to trace events by QEMU `-trace` pattern, the way QEMU's log
 * backend prints them: `<event> <formatted arguments>`. Used by the CLI's
 * `--trace` and by tests that assert on trace lines.
 */
import diagnosticsChannel from 'node:diagnostics_channel';
import { matchTraceEvents, type TraceMessage } from './events.js';
import { formatTrace } from './format.js';

/** Formats a received message as one QEMU log-backend line. */
export function formatTraceLine(message: TraceMessage): string {
  return `${message.event} ${formatTrace(message.format, message.args)}`;
}

export interface TraceSubscription {
  /** Patterns that matched no defined event (a typo, or a package not loaded yet). */
  readonly unmatched: readonly string[];
  /** Stops listening. Idempotent. */
  unsubscribe(): void;
}

/**
 * Subscribes `onLine` to every defined event matching one of `patterns`
 * (`*` and `?` globs), each event once. Only events already defined are
 * matched: load the packages whose events you want first.
 */
export function subscribeTrace(
  patterns: readonly string[],
  onLine: (line: string, message: TraceMessage) => void,
): TraceSubscription {
  const onMessage = (message: unknown) => {
    const m = message as TraceMessage;
    onLine(formatTraceLine(m), m);
  };
  const channels = new Set<string>();
  const unmatched: string[] = [];
  for (const pattern of patterns) {
    const events = matchTraceEvents(pattern);
    if (events.length === 0) unmatched.push(pattern);
    for (const e of events) channels.add(e.channelName);
  }
  for (const name of channels) diagnosticsChannel.subscribe(name, onMessage);
  let active = true;
  return {
    unmatched,
    unsubscribe() {
      if (!active) return;
      active = false;
      for (const name of channels) diagnosticsChannel.unsubscribe(name, onMessage);
    },
  };
}
