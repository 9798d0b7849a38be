// Shared vitest settings: every package writes a JSON report that
// scripts/test-summary.mjs folds into the plain "N passed, N failed" line CI reads.
export const sharedTestConfig = {
  pool: 'forks',
  reporters: ['default', ['json', { outputFile: '.test-results/vitest.json' }]],
  testTimeout: 20_000,
};
