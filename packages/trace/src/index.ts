export type { TraceArg, TraceEvent, TraceMessage } from './events.js';
export { defineTraceEvent, matchTraceEvents, traceChannelName, traceEvents } from './events.js';
export { formatTrace } from './format.js';
export type { TraceSubscription } from './subscribe.js';
export { formatTraceLine, subscribeTrace } from './subscribe.js';
