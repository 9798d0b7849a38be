export { eventfdWait, type FdLike, sleep } from './eventfd.js';
export { failNthCall } from './failing-call.js';
export { addFakePciDevice, makeFakeSysfs } from './fake-sysfs.js';
export { type FakeDeviceSpec, FakeSystem } from './fake-system.js';
export {
  expectNoLeaksInFile,
  isDeviceMapping,
  type ResourceCounts,
  resourceCounts,
  settle,
} from './resources.js';
export { type TempDir, tempDir } from './temp-dir.js';
export { traceLines } from './trace.js';
