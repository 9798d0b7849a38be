import { defineConfig } from 'vitest/config';
import { sharedTestConfig } from '../../vitest.shared.mjs';

// Runs inside the guest only (tools/vm/src/cli.ts test). The report goes to the
// shared folder (/vmio) because the guest's view of the repository is a
// throwaway overlay; the host copies it to tools/vm/.test-results/vitest.json.
const io = process.env.VFIO_TS_VM_IO;
// One report per pass (kernel line and interface): src/cli.ts names it.
const report = process.env.VFIO_TS_VM_REPORT ?? 'vitest.json';

export default defineConfig({
  test: {
    ...sharedTestConfig,
    root: new URL('.', import.meta.url).pathname,
    include: ['test/**/*.vm.test.ts'],
    setupFiles: ['test/in-guest.ts'],
    execArgv: ['--expose-gc'],
    // Two TCG vCPUs: one test file at a time keeps timings honest and the devices unshared.
    fileParallelism: false,
    testTimeout: 60_000,
    hookTimeout: 60_000,
    reporters: ['default', ['json', { outputFile: io ? `${io}/${report}` : `.test-results/${report}` }]],
  },
});
