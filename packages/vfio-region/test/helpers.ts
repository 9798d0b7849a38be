import diagnosticsChannel from 'node:diagnostics_channel';
import { formatTrace, matchTraceEvents, type TraceMessage } from '@vfio-ts/trace';
import { type MappedArea, SysError, type VfioDeviceIo } from '@vfio-ts/vfio-sys';

/** Records trace lines (QEMU log format) of the events matching `pattern` while `fn` runs. */
export function traceLines(pattern: string, fn: () => void): string[] {
  const lines: string[] = [];
  const listener = (m: unknown) => {
    const msg = m as TraceMessage;
    lines.push(`${msg.event} ${formatTrace(msg.format, msg.args)}`);
  };
  const events = matchTraceEvents(pattern);
  for (const e of events) diagnosticsChannel.subscribe(e.channelName, listener);
  try {
    fn();
  } finally {
    for (const e of events) diagnosticsChannel.unsubscribe(e.channelName, listener);
  }
  return lines;
}

export { resourceCounts, settle } from '../../plugin-host/test/helpers.js';

/** Wraps a device so that its `failAt`-th regionMmap call (0-based) fails with ENOMEM, as a kernel could. */
export function failingMmap(device: VfioDeviceIo, failAt: number): VfioDeviceIo {
  let calls = 0;
  return new Proxy(device, {
    get(target, prop, receiver) {
      if (prop === 'regionMmap') {
        return (...args: Parameters<VfioDeviceIo['regionMmap']>): MappedArea => {
          if (calls++ === failAt) {
            throw new SysError('mmap', 12, { detail: 'injected failure' });
          }
          return target.regionMmap(...args);
        };
      }
      const value = Reflect.get(target, prop, receiver);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}
