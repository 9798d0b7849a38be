/**
 * `--trace <pattern>`: subscribe to the matching trace events and print each
 * as QEMU's log trace backend does: `<event> <formatted arguments>` on stderr.
 * Also prints error reports (QEMU's error_report) there.
 */
import diagnosticsChannel from 'node:diagnostics_channel';
import { formatTrace, matchTraceEvents, type TraceMessage } from '@vfio-ts/memory-core';
import { ERROR_REPORT_CHANNEL } from '@vfio-ts/vfio-region';

export function startTracing(patterns: readonly string[], write: (line: string) => void): () => void {
  const unsubscribers: (() => void)[] = [];
  const onTrace = (message: unknown) => {
    const m = message as TraceMessage;
    write(`${m.event} ${formatTrace(m.format, m.args)}`);
  };
  const seen = new Set<string>();
  for (const pattern of patterns) {
    const events = matchTraceEvents(pattern);
    if (events.length === 0) write(`vfio-ts: warning: trace pattern "${pattern}" matches no event`);
    for (const e of events) {
      if (seen.has(e.channelName)) continue;
      seen.add(e.channelName);
      diagnosticsChannel.subscribe(e.channelName, onTrace);
      unsubscribers.push(() => diagnosticsChannel.unsubscribe(e.channelName, onTrace));
    }
  }
  const onReport = (message: unknown) => write(`vfio-ts: ${String(message)}`);
  diagnosticsChannel.subscribe(ERROR_REPORT_CHANNEL, onReport);
  unsubscribers.push(() => diagnosticsChannel.unsubscribe(ERROR_REPORT_CHANNEL, onReport));
  return () => {
    for (const u of unsubscribers) u();
  };
}
