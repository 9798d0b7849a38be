/**
 * The layering check fails on bad imports: the repository's dependency-cruiser
 * config runs on a small workspace written to a temporary folder, with one
 * import of each kind that must be refused next to imports that must pass,
 * and the violations reported must be exactly the bad ones. Also holds every
 * package.json's workspace dependencies to the same table. Run by `pnpm lint`.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import {
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { cruise } from 'dependency-cruiser';
import extractDepcruiseOptions from 'dependency-cruiser/config-utl/extract-depcruise-options';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const CONFIG = join(ROOT, '.dependency-cruiser.cjs');
const DEPCRUISE = join(ROOT, 'node_modules/.bin/depcruise');
const { LAYERS, MOCK_BACKEND_USERS, TEST_SUPPORT_DEPS } = createRequire(import.meta.url)('./layers.cjs');

/** Writes `files` (path -> source) under a new temporary folder laid out like the repository. */
function workspace(files) {
  const dir = mkdtempSync(join(tmpdir(), 'vfio-ts-layers-'));
  for (const [path, text] of Object.entries(files)) {
    mkdirSync(dirname(join(dir, path)), { recursive: true });
    writeFileSync(join(dir, path), text);
  }
  return dir;
}

const options = await extractDepcruiseOptions(CONFIG);

/** Runs the layering check in-process on `sources` of `dir`; its violations as "rule: from -> to". */
async function violations(dir, sources) {
  const result = await cruise(sources, { ...options, baseDir: dir, validate: true, outputType: 'json' });
  const report = JSON.parse(result.output);
  return report.summary.violations.map((v) => `${v.rule.name}: ${v.from} -> ${v.to}`).sort();
}

/** Runs the layering check as `pnpm lint` does (the CLI, text report). */
function depcruiseCli(dir, sources) {
  return spawnSync(DEPCRUISE, ['--config', CONFIG, ...sources], { cwd: dir, encoding: 'utf8' });
}

const index = (text = 'export const x = 1;\n') => text;
const importing = (spec) => `import { x } from '${spec}';\nexport const y = x;\n`;

describe('the layering check', () => {
  const dirs = [];
  after(() => {
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  it('reports imports up the stack, forbidden pairs, relative imports into another package and runtime cycles, and nothing else', async () => {
    const dir = workspace({
      // Allowed: the table's rows, the mock-backend exception in tests, shared helpers in tests.
      'packages/trace/src/index.ts': index(),
      'packages/vfio-sys/src/index.ts': importing('@vfio-ts/trace'),
      'packages/vfio-sys/src/own.ts': importing('./index.js'),
      'packages/vfio-region/src/index.ts': importing('@vfio-ts/vfio-sys'),
      'packages/pci-vfio/src/index.ts': importing('@vfio-ts/vfio-region/sub'),
      'packages/pci-vfio/test/mock.test.ts': importing('@vfio-ts/plugin-host'),
      'packages/pci-vfio/test/helpers.test.ts': importing('@vfio-ts/test-support'),
      'packages/cli/src/index.ts': importing('@vfio-ts/vfio-user'),
      'packages/vfio-sys/test/fake.test.ts': importing('@vfio-ts/test-support'),
      'tools/test-support/src/index.ts': importing('@vfio-ts/trace'),
      'tools/vm/test/tier.test.ts': importing('@vfio-ts/cli'),
      'tools/vm/test/leaks.test.ts': importing('@vfio-ts/test-support'),
      // A cycle of type-only imports is no runtime cycle.
      'packages/vfio-sys/src/type-a.ts': "import type { B } from './type-b.js';\nexport type A = B[];\n",
      'packages/vfio-sys/src/type-b.ts': "import type { A } from './type-a.js';\nexport type B = A | 1;\n",
      // Refused.
      'packages/memory-core/src/up.ts': importing('@vfio-ts/vfio-region'),
      'packages/vfio-sys/src/sideways.ts': importing('@vfio-ts/memory-core'),
      'packages/plugin-host/src/pair.ts': importing('@vfio-ts/vfio-region'),
      'packages/pci-vfio/src/mock.ts': importing('@vfio-ts/plugin-host'),
      'packages/vfio-region/test/relative.test.ts': importing('../../plugin-host/src/index.js'),
      'packages/plugin-host/src/index.ts': index(),
      'packages/cli/src/helpers.ts': importing('@vfio-ts/test-support'),
      'tools/test-support/src/device.ts': importing('@vfio-ts/vfio-sys'),
      'packages/trace/src/cycle-a.ts': importing('./cycle-b.js'),
      'packages/trace/src/cycle-b.ts': importing('./cycle-a.js'),
    });
    dirs.push(dir);
    assert.deepEqual(await violations(dir, ['packages', 'tools']), [
      'no-circular: packages/trace/src/cycle-a.ts -> packages/trace/src/cycle-b.ts',
      'no-relative-import-across-packages: packages/vfio-region/test/relative.test.ts -> packages/plugin-host/src/index.ts',
      'no-test-support-in-src: packages/cli/src/helpers.ts -> @vfio-ts/test-support',
      'not-in-allowed: packages/cli/src/helpers.ts -> @vfio-ts/test-support',
      'not-in-allowed: packages/memory-core/src/up.ts -> @vfio-ts/vfio-region',
      'not-in-allowed: packages/pci-vfio/src/mock.ts -> @vfio-ts/plugin-host',
      'not-in-allowed: packages/plugin-host/src/pair.ts -> @vfio-ts/vfio-region',
      'not-in-allowed: packages/vfio-sys/src/sideways.ts -> @vfio-ts/memory-core',
      'not-in-allowed: tools/test-support/src/device.ts -> @vfio-ts/vfio-sys',
    ]);
    // As `pnpm lint` runs it: a failing exit status and the rule named.
    const lint = depcruiseCli(dir, ['packages/memory-core']);
    assert.notEqual(lint.status, 0);
    assert.match(
      lint.stdout,
      /error not-in-allowed: packages\/memory-core\/src\/up\.ts → @vfio-ts\/vfio-region/,
    );
  });

  it('judges an import that resolved into the package folder (after a build) the same as a bare name', async () => {
    const dir = workspace({
      'packages/vfio-region/package.json': JSON.stringify({
        name: '@vfio-ts/vfio-region',
        exports: { '.': { types: './dist/index.d.ts', import: './dist/index.js' } },
      }),
      'packages/vfio-region/dist/index.js': index(),
      'packages/vfio-region/dist/index.d.ts': 'export declare const x: number;\n',
      'packages/memory-core/package.json': JSON.stringify({ name: '@vfio-ts/memory-core' }),
      'packages/memory-core/src/up.ts': importing('@vfio-ts/vfio-region'),
      'packages/pci-vfio/src/index.ts': importing('@vfio-ts/vfio-region'),
    });
    dirs.push(dir);
    for (const consumer of ['memory-core', 'pci-vfio']) {
      mkdirSync(join(dir, `packages/${consumer}/node_modules/@vfio-ts`), { recursive: true });
      symlinkSync(
        '../../../vfio-region',
        join(dir, `packages/${consumer}/node_modules/@vfio-ts/vfio-region`),
      );
    }
    assert.deepEqual(await violations(dir, ['packages/memory-core/src', 'packages/pci-vfio/src']), [
      'not-in-allowed: packages/memory-core/src/up.ts -> packages/vfio-region/dist/index.d.ts',
    ]);
  });

  it('passes a workspace with only allowed imports', async () => {
    const dir = workspace({
      'packages/trace/src/index.ts': index(),
      'packages/vfio-sys/src/index.ts': importing('@vfio-ts/trace'),
      'packages/vfio-region/test/mock.test.ts': importing('@vfio-ts/plugin-host'),
    });
    dirs.push(dir);
    assert.deepEqual(await violations(dir, ['packages']), []);
  });
});

describe("the packages' declared dependencies", () => {
  const ours = (deps = {}) =>
    Object.keys(deps)
      .filter((d) => d.startsWith('@vfio-ts/'))
      .map((d) => d.slice('@vfio-ts/'.length));
  const manifest = (folder) => JSON.parse(readFileSync(join(ROOT, folder, 'package.json'), 'utf8'));

  it('are each a row of the table (runtime) or the test-only exceptions (dev)', () => {
    const packages = readdirSync(join(ROOT, 'packages'));
    assert.deepEqual(
      packages.toSorted(),
      Object.keys(LAYERS).toSorted(),
      'every package has a row in layers.cjs',
    );
    for (const name of packages) {
      const pkg = manifest(`packages/${name}`);
      for (const dep of ours(pkg.dependencies))
        assert.ok(LAYERS[name].includes(dep), `${name} depends on ${dep}`);
      const devAllowed = [
        ...LAYERS[name],
        'test-support',
        ...(MOCK_BACKEND_USERS.includes(name) ? ['plugin-host'] : []),
      ];
      for (const dep of ours(pkg.devDependencies))
        assert.ok(devAllowed.includes(dep), `${name} dev-depends on ${dep}`);
    }
    const support = manifest('tools/test-support');
    assert.equal(support.private, true, 'test-support is never published');
    assert.deepEqual(ours(support.dependencies), TEST_SUPPORT_DEPS);
  });
});
