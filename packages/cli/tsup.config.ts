import { defineConfig } from 'tsup';
import { dtsBanner, sharedBuildConfig } from '../../tsup.shared.mjs';

export default defineConfig({
  ...sharedBuildConfig,
  entry: ['src/index.ts', 'src/bin.ts'],
  dts: { banner: dtsBanner, entry: 'src/index.ts' },
  // The binary needs its shebang and the executable bit.
  onSuccess:
    "node -e \"const fs=require('fs');const f='dist/bin.js';const s=fs.readFileSync(f,'utf8');if(!s.startsWith('#!'))fs.writeFileSync(f,'#!/usr/bin/env node\\n'+s);fs.chmodSync(f,0o755)\"",
});
