export type { InspectReport } from './commands/inspect.js';
export { inspectReport } from './commands/inspect.js';
export type { RunContext } from './program.js';
export { buildProgram, run } from './program.js';
