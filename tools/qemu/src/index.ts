export { QemuError, type QemuErrorCode } from './errors.js';
export { CACHE_DIR, prepareQemu, QEMU_TIER_ROOT, type QemuImage, REPO_ROOT } from './prepare.js';
export { QmpClient, type QmpEvent } from './qmp.js';
export {
  DEVICE_BDF,
  DEVICE_ID,
  type HmpResult,
  type LiveRun,
  type QemuRunResult,
  type RunQemuOptions,
  runQemu,
} from './run.js';
export { CLI_BIN, type ServeOptions, ServeProcess } from './server.js';
