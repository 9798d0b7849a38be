/**
 * DESIGN.md's table "Packages and what each may import", as data: what each
 * package's sources may import of ours. .dependency-cruiser.cjs turns it into
 * rules; layering.test.mjs also holds every package.json to it.
 */
const LAYERS = {
  trace: [],
  'vfio-sys': ['trace'],
  'memory-core': ['trace'],
  'vfio-region': ['vfio-sys', 'memory-core', 'trace'],
  'pci-vfio': ['vfio-region', 'vfio-sys', 'memory-core', 'trace'],
  'plugin-host': ['vfio-sys', 'memory-core', 'trace'],
  'vfio-user': ['vfio-sys', 'plugin-host', 'trace'],
  cli: ['vfio-sys', 'memory-core', 'vfio-region', 'pci-vfio', 'plugin-host', 'vfio-user', 'trace'],
};

/** The one test-only exception: these packages' tests and benches use plugin-host's in-process backend as their mock device. */
const MOCK_BACKEND_USERS = ['vfio-region', 'pci-vfio'];

/** The private shared test helpers (tools/test-support) may import only these. */
const TEST_SUPPORT_DEPS = ['trace'];

module.exports = { LAYERS, MOCK_BACKEND_USERS, TEST_SUPPORT_DEPS };
