import { defineConfig } from 'tsup';
import { sharedBuildConfig } from '../../tsup.shared.mjs';

// bench.ts is its own entry: benches run outside vitest and must not load it (index's resources.ts does).
export default defineConfig({ ...sharedBuildConfig, entry: ['src/index.ts', 'src/bench.ts'] });
