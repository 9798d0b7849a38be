import { subscribeTrace } from '@vfio-ts/trace';

/**
 * Records the trace lines (QEMU's log-backend format, `<event> <arguments>`)
 * of the events matching `pattern` while `fn` runs. A pattern that matches
 * no defined event throws: a typo would otherwise make the assertion vacuous.
 */
export function traceLines(pattern: string, fn: () => void): string[] {
  const lines: string[] = [];
  const subscription = subscribeTrace([pattern], (line) => lines.push(line));
  try {
    if (subscription.unmatched.length > 0) {
      throw new Error(`traceLines: no trace event matches "${pattern}" (is its package imported?)`);
    }
    fn();
  } finally {
    subscription.unsubscribe();
  }
  return lines;
}
