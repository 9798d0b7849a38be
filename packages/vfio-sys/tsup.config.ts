import { defineConfig } from 'tsup';
import { sharedBuildConfig } from '../../tsup.shared.mjs';

// Three entry points: the safe API at the root, the raw layers behind subpaths
// (as rust-vmm keeps vfio-bindings apart from vfio-ioctls). Shared code lands
// in one chunk, so koffi's named types are defined once.
export default defineConfig({
  ...sharedBuildConfig,
  entry: { index: 'src/index.ts', uapi: 'src/uapi/index.ts', libc: 'src/libc-index.ts' },
});
