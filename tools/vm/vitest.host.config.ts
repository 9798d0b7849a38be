import { defineConfig } from 'vitest/config';
import { sharedTestConfig } from '../../vitest.shared.mjs';

// The harness's own tests, on the host (the VM tests run in the guest: vitest.config.ts).
export default defineConfig({
  test: {
    ...sharedTestConfig,
    root: new URL('.', import.meta.url).pathname,
    include: ['test-host/**/*.test.ts'],
    testTimeout: 180_000,
    reporters: ['default', ['json', { outputFile: '.test-results/host.json' }]],
  },
});
