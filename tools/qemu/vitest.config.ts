import { defineConfig } from 'vitest/config';
import { sharedTestConfig } from '../../vitest.shared.mjs';

// The QEMU tier (tools/qemu/README.md): every file boots QEMU 11.1, so one
// file at a time on two cores; the report goes to .test-results/vitest.json,
// which scripts/test-summary.mjs --qemu requires.
export default defineConfig({
  test: {
    ...sharedTestConfig,
    root: new URL('.', import.meta.url).pathname,
    include: ['test/**/*.qemu.test.ts'],
    fileParallelism: false,
    // Every file checks its own fds and mappings before and after (test-support's leak check).
    execArgv: ['--expose-gc'],
    testTimeout: 120_000,
    hookTimeout: 600_000,
  },
});
