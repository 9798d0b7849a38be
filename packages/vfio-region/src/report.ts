/**
 * error_report: problems that are reported but not fatal (a failed slow-path
 * access, an mmap that fell back to the slow path). Published on the
 * `vfio-ts:error-report` diagnostics channel; when nobody listens they go to
 * stderr, as QEMU's error_report does.
 */
import diagnosticsChannel from 'node:diagnostics_channel';

export const ERROR_REPORT_CHANNEL = 'vfio-ts:error-report';
const channel = diagnosticsChannel.channel(ERROR_REPORT_CHANNEL);

export function errorReport(message: string): void {
  if (channel.hasSubscribers) channel.publish(message);
  else process.stderr.write(`${message}\n`);
}
