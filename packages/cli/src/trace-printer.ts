/**
 * `--trace <pattern>`: subscribe to the matching trace events and print each
 * as QEMU's log trace backend does: `<event> <formatted arguments>` on stderr.
 * Also prints error reports (QEMU's error_report) there.
 */
import diagnosticsChannel from 'node:diagnostics_channel';
import { subscribeTrace } from '@vfio-ts/trace';
import { ERROR_REPORT_CHANNEL } from '@vfio-ts/vfio-region';

export function startTracing(patterns: readonly string[], write: (line: string) => void): () => void {
  const subscription = subscribeTrace(patterns, write);
  for (const pattern of subscription.unmatched)
    write(`vfio-ts: warning: trace pattern "${pattern}" matches no event`);
  const onReport = (message: unknown) => write(`vfio-ts: ${String(message)}`);
  diagnosticsChannel.subscribe(ERROR_REPORT_CHANNEL, onReport);
  return () => {
    subscription.unsubscribe();
    diagnosticsChannel.unsubscribe(ERROR_REPORT_CHANNEL, onReport);
  };
}
