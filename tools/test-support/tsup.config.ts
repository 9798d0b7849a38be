import { defineConfig } from 'tsup';
import { sharedBuildConfig } from '../../tsup.shared.mjs';

export default defineConfig({ ...sharedBuildConfig });
