// Shared tsup settings, spread by every package's tsup.config.ts (like vitest.shared.mjs).
// ESM only: a process that loaded both an ESM and a CJS build would define koffi's
// named types twice and throw. Dependencies (koffi among them) stay external, so
// koffi finds its binary next to its own package.

// The public types use Node's (Buffer, NodeJS.WriteStream, Disposable). TypeScript 6
// no longer loads @types/* on its own, so each .d.ts says it needs them; every package
// declares @types/node as a peer dependency, so the consumer's one copy serves.
export const dtsBanner = '/// <reference types="node" />';

export const sharedBuildConfig = {
  entry: ['src/index.ts'],
  format: ['esm'],
  dts: { banner: dtsBanner },
  clean: true,
  sourcemap: true,
  target: 'node20',
};
