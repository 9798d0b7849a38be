export { defineTraceEvent, formatTrace, matchTraceEvents, traceChannelName, traceEvents } from './trace.js';
export type { TraceArg, TraceEvent, TraceMessage } from './trace.js';
