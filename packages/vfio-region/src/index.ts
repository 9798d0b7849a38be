export { VfioRegionError } from './errors.js';
export type { VfioMmapArea, VfioRegionOptions } from './region.js';
export { VfioRegion } from './region.js';
export { ERROR_REPORT_CHANNEL, errorReport } from './report.js';
