// Shared tsup settings, spread by every package's tsup.config.ts (like vitest.shared.mjs).
// ESM only: a process that loaded both an ESM and a CJS build would define koffi's
// named types twice and throw. Dependencies (koffi among them) stay external, so
// koffi finds its binary next to its own package.
export const sharedBuildConfig = {
  entry: ['src/index.ts'],
  format: ['esm'],
  dts: true,
  clean: true,
  sourcemap: true,
  target: 'node20',
};
