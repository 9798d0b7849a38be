#!/usr/bin/env node
// The packages as a user gets them. Packs every public package (pnpm pack: its
// prepack builds it), installs the tarballs with npm into a scratch project
// outside the workspace (dependencies such as koffi and commander from the npm
// cache or registry), then, with the Node running this script:
//   - checks that `turbo run test --filter <pkg>` builds everything the tests import
//   - imports and require()s every exported subpath (require(esm), Node >= 20.19)
//   - runs each README's ```js examples and compares the output they show
//   - runs the CLI README's `$ vfio-ts ... sim:...` commands and compares their output
//   - type-checks a TypeScript consumer per package (strict, module nodenext, no
//     "types" option) made of its entry points and its README's ```ts blocks
//   - imports vfio-sys as if on another OS: "vfio-ts needs Linux"
//   - runs the release script's dry run (scripts/release.mjs --dry-run)
// Writes a vitest-like JSON report (default .test-results/packages.json) that
// scripts/test-summary.mjs folds into the summary line.
//   --report <file>  where the report goes     --keep  keep the scratch folder
//   --no-release     skip the release dry run  --only <folder,...>  some packages
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { parseArgs } from 'node:util';
import {
  exportSpecifiers,
  manifestTargets,
  packPackage,
  publicPackages,
  root,
  tarballFiles,
  tarballManifest,
  workspaceDependencies,
  workspacePackages,
} from './lib/packages.mjs';
import { missingOutput, readmeExamples } from './lib/readme-examples.mjs';

const { values: opts } = parseArgs({
  options: {
    report: { type: 'string', default: join(root, '.test-results', 'packages.json') },
    keep: { type: 'boolean', default: false },
    'no-release': { type: 'boolean', default: false },
    only: { type: 'string' },
  },
});

const results = [];
const started = Date.now();

function writeReport(finished) {
  const failed = results.filter((r) => r.status === 'failed').length;
  const passed = results.filter((r) => r.status === 'passed').length;
  const report = {
    // A run that dies before the end leaves a report that says so.
    numPassedTests: passed,
    numFailedTests: finished ? failed : failed + 1,
    numPendingTests: 0,
    numTodoTests: 0,
    numFailedTestSuites: 0,
    success: finished && failed === 0,
    startTime: started,
    testResults: [
      {
        name: 'scripts/check-packages.mjs',
        status: finished && failed === 0 ? 'passed' : 'failed',
        assertionResults: results.map((r) => ({
          title: r.title,
          fullName: r.title,
          status: r.status,
          duration: r.duration,
          failureMessages: r.error ? [r.error] : [],
        })),
      },
    ],
  };
  mkdirSync(dirname(opts.report), { recursive: true });
  writeFileSync(opts.report, `${JSON.stringify(report, null, 2)}\n`);
}

function check(title, fn) {
  const t0 = Date.now();
  try {
    const note = fn();
    results.push({ title, status: 'passed', duration: Date.now() - t0 });
    console.log(`  ok    ${title}${note ? `  (${note})` : ''}`);
    return true;
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    results.push({ title, status: 'failed', duration: Date.now() - t0, error: message });
    console.log(`  FAIL  ${title}\n${message.replace(/^/gm, '        ')}`);
    return false;
  }
}

/** Runs a program; returns its output or throws one with everything it printed. */
function run(file, args, { cwd, env = process.env, input, expectFailure = false, timeout = 120_000 } = {}) {
  const child = spawnSync(file, args, { cwd, env, input, encoding: 'utf8', timeout });
  const printed = `${child.stdout ?? ''}${child.stderr ?? ''}`;
  if (child.error) throw new Error(`${file} ${args.join(' ')}: ${child.error.message}\n${printed}`);
  if (!expectFailure && child.status !== 0) {
    throw new Error(`${[file, ...args].join(' ')} exited ${child.status ?? child.signal}\n${printed}`);
  }
  return child;
}

/** A package's README, or '' (its pack check already failed for the missing file). */
function readmeOf(pkg) {
  return existsSync(join(pkg.dir, 'README.md')) ? readFileSync(join(pkg.dir, 'README.md'), 'utf8') : '';
}

writeReport(false);
const scratch = mkdtempSync(join(tmpdir(), 'vfio-ts-packages-'));
const packs = join(scratch, 'packs');
const consumer = join(scratch, 'consumer');
mkdirSync(packs);
mkdirSync(consumer);
console.log(`check-packages: node ${process.version}, scratch project ${scratch}`);

const only = opts.only ? new Set(opts.only.split(',')) : null;
const packages = publicPackages().filter((pkg) => !only || only.has(pkg.folder));
const tarballs = new Map();

// 0. The output comparison itself must be able to fail.
check('README output comparison tells shown output from other output', () => {
  const shown = 'cafe\n...\n  00000000fe003000 mmaps[0]';
  if (missingOutput(shown, 'cafe\naddress-space: pci\n\n  00000000fe003000 mmaps[0]\n') !== null) {
    throw new Error('a matching output (with lines left out at "...") was refused');
  }
  for (const wrong of ['cafe\n', 'beef\n  00000000fe003000 mmaps[0]', '  00000000fe003000 mmaps[0]\ncafe']) {
    if (missingOutput(shown, wrong) === null)
      throw new Error(`a wrong output was accepted: ${JSON.stringify(wrong)}`);
  }
  const { js } = readmeExamples('```js\nconsole.log(1);\n```\n\nprints\n\n```\n1\n```\n');
  if (js.length !== 1 || js[0].expected !== '1')
    throw new Error(`an example and its output were not paired: ${JSON.stringify(js)}`);
});

// 0b. `turbo run test --filter <pkg>` alone, in a clean clone, must build the package
// and every workspace package it depends on (its tests import their dist/).
const workspace = workspacePackages();
for (const pkg of workspace.filter((p) => p.manifest.scripts?.test && (!only || only.has(p.folder)))) {
  check(`turbo test --filter ${pkg.name} builds what its tests import`, () => {
    const out = run('pnpm', ['turbo', 'run', 'test', `--filter=${pkg.name}`, '--dry=json'], {
      cwd: root,
      env: { ...process.env, TURBO_TELEMETRY_DISABLED: '1' },
    });
    const planned = new Set(JSON.parse(out.stdout).tasks.map((t) => t.taskId));
    const needed = [pkg, ...workspaceDependencies(pkg, workspace)].filter((p) => p.manifest.scripts?.build);
    const missing = needed.map((p) => `${p.name}#build`).filter((task) => !planned.has(task));
    if (missing.length > 0)
      throw new Error(`the test task does not run ${missing.join(', ')} first (turbo.json)`);
    return `${needed.length} builds first`;
  });
}

// 1. Pack: what npm would receive. Every file the manifest points at must be in it.
for (const pkg of packages) {
  check(`pack ${pkg.name}`, () => {
    const tarball = packPackage(pkg, packs);
    // Installed even if incomplete, so that one package's gap does not hide the rest.
    tarballs.set(pkg.name, tarball);
    const files = tarballFiles(tarball);
    const manifest = tarballManifest(tarball);
    const missing = [...manifestTargets(manifest), 'README.md'].filter((target) => !files.includes(target));
    if (missing.length > 0)
      throw new Error(`the tarball lacks ${missing.join(', ')} (is the package built?)`);
    const unresolved = Object.entries({ ...manifest.dependencies, ...manifest.peerDependencies }).filter(
      ([, range]) => String(range).startsWith('workspace:'),
    );
    if (unresolved.length > 0) throw new Error(`workspace: ranges left in ${unresolved.map(([n]) => n)}`);
    for (const field of ['repository', 'homepage', 'bugs', 'license']) {
      if (!manifest[field]) throw new Error(`package.json has no "${field}"`);
    }
    console.log(`        ${relative(scratch, tarball)}: ${files.join(' ')}`);
    return `${files.length} files`;
  });
}

// 2. Install the tarballs as a user would; overrides keep npm from looking for
// our packages on the registry when one tarball depends on another.
const installed = check('npm install the tarballs into a project outside the workspace', () => {
  if (tarballs.size !== packages.length) throw new Error('not every package could be packed');
  const deps = Object.fromEntries([...tarballs].map(([name, file]) => [name, `file:${file}`]));
  writeFileSync(
    join(consumer, 'package.json'),
    `${JSON.stringify({ name: 'vfio-ts-consumer', private: true, type: 'module', dependencies: deps, overrides: deps }, null, 2)}\n`,
  );
  const npmArgs = ['install', '--no-audit', '--no-fund', '--prefer-offline', '--loglevel=error'];
  run('npm', npmArgs, { cwd: consumer, timeout: 300_000 });
  return `${tarballs.size} tarballs`;
});

if (installed) {
  const nodeEnv = { ...process.env, NODE_OPTIONS: '' };
  delete nodeEnv.FORCE_COLOR;

  // 3. Every entry point loads through import and through require.
  for (const pkg of packages) {
    for (const specifier of exportSpecifiers(tarballManifest(tarballs.get(pkg.name)))) {
      check(`import and require ${specifier}`, () => {
        const probe = `const viaImport = await import(${JSON.stringify(specifier)});
const { createRequire } = await import('node:module');
const viaRequire = createRequire(import.meta.url)(${JSON.stringify(specifier)});
if (viaImport !== viaRequire && Object.keys(viaImport).join() !== Object.keys(viaRequire).join()) throw new Error('import and require differ');
console.log(Object.keys(viaImport).length);`;
        const out = run(process.execPath, ['--input-type=module', '-e', probe], {
          cwd: consumer,
          env: nodeEnv,
        });
        if (out.stderr.trim()) throw new Error(`printed on stderr:\n${out.stderr}`);
        return `${out.stdout.trim()} exports`;
      });
    }
  }

  // 4. README examples, as the reader would paste them.
  const examplesDir = join(consumer, 'examples');
  mkdirSync(examplesDir);
  for (const pkg of packages) {
    const { js, shell } = readmeExamples(readmeOf(pkg));
    const runnable = shell.filter((c) => /^vfio-ts\b/.test(c.command) && /\bsim:/.test(c.command));
    if (js.length === 0 && runnable.length === 0) {
      check(`${pkg.name} README has a runnable example`, () => {
        throw new Error(
          `no \`\`\`js example (or $ vfio-ts ... sim: command) in ${relative(root, pkg.dir)}/README.md`,
        );
      });
    }
    for (const example of js) {
      check(`${pkg.name} README example (line ${example.line})`, () => {
        const file = join(examplesDir, `${pkg.folder}-${example.line}.mjs`);
        writeFileSync(file, example.code);
        const out = run(process.execPath, [file], { cwd: consumer, env: nodeEnv });
        if (out.stderr.trim()) throw new Error(`printed on stderr:\n${out.stderr}`);
        if (example.expected !== null) {
          const missing = missingOutput(example.expected, out.stdout);
          if (missing) throw new Error(`the README shows\n${missing}\nbut it printed\n${out.stdout}`);
          return 'output as shown';
        }
        return 'ran';
      });
    }
    for (const command of runnable) {
      check(`${pkg.name} README: $ ${command.command}`, () => {
        // The output shown mixes stdout and stderr (traces) as a terminal does.
        const out = run('sh', ['-c', `${command.command} 2>&1`], {
          cwd: consumer,
          env: { ...nodeEnv, PATH: `${join(consumer, 'node_modules', '.bin')}:${process.env.PATH}` },
        });
        // Timings differ on every run: bench only has to work.
        if (/^vfio-ts\b.*\bbench\b/.test(command.command)) return 'ran (timings not compared)';
        const missing = missingOutput(command.expected, out.stdout);
        if (missing) throw new Error(`the README shows\n${missing}\nbut it printed\n${out.stdout}`);
        return 'output as shown';
      });
    }
  }

  // 5. A TypeScript consumer per package, each in its own program so that one
  // package's types cannot lean on globals another one pulled in.
  const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc');
  for (const pkg of packages) {
    check(`${pkg.name} types: strict nodenext consumer`, () => {
      const dir = join(consumer, 'types', pkg.folder);
      mkdirSync(dir, { recursive: true });
      const specifiers = exportSpecifiers(tarballManifest(tarballs.get(pkg.name)));
      const lines = specifiers.map((s, i) => `import * as entry${i} from '${s}';`);
      lines.push(`export const entries = [${specifiers.map((_, i) => `entry${i}`).join(', ')}];`);
      writeFileSync(join(dir, 'entries.ts'), `${lines.join('\n')}\n`);
      // A CommonJS consumer: require(esm) is typed under nodenext too.
      writeFileSync(
        join(dir, 'entries-cjs.cts'),
        `${specifiers.map((s, i) => `import cjs${i} = require('${s}');\nexport const c${i} = cjs${i};`).join('\n')}\n`,
      );
      const { ts } = readmeExamples(readmeOf(pkg));
      for (const example of ts) writeFileSync(join(dir, `readme-${example.line}.ts`), example.code);
      writeFileSync(
        join(dir, 'tsconfig.json'),
        `${JSON.stringify({ compilerOptions: { strict: true, module: 'nodenext', noEmit: true } }, null, 2)}\n`,
      );
      const out = run(process.execPath, [tsc, '-p', dir], { cwd: dir, expectFailure: true });
      if (out.status !== 0) throw new Error(`tsc found errors:\n${out.stdout}${out.stderr}`);
      return `${specifiers.length} entry points, ${ts.length} README blocks`;
    });
  }

  // 6. On another OS the import says what is wrong instead of failing in dlopen.
  if (tarballs.has('@vfio-ts/vfio-sys')) {
    check('@vfio-ts/vfio-sys on another OS says "vfio-ts needs Linux"', () => {
      const probe = join(consumer, 'as-darwin.mjs');
      writeFileSync(
        probe,
        // koffi has a macOS build and loads there; then only libc.so.6 is missing.
        `await import('koffi');
Object.defineProperty(process, 'platform', { value: 'darwin' });
try { await import('@vfio-ts/vfio-sys'); console.log('imported'); }
catch (error) { console.log(error.code, error.message); }\n`,
      );
      const out = run(process.execPath, [probe], { cwd: consumer, env: nodeEnv });
      if (!out.stdout.includes('vfio-ts needs Linux'))
        throw new Error(`it printed\n${out.stdout}${out.stderr}`);
      return out.stdout.trim();
    });
  }
}

// 7. The release script, without touching the registry or this tree.
if (!opts['no-release'] && !only) {
  check('release dry run (scripts/release.mjs --dry-run)', () => {
    const out = run(process.execPath, [join(root, 'scripts', 'release.mjs'), '--dry-run'], {
      cwd: root,
      timeout: 600_000,
    });
    console.log(out.stdout.trimEnd().replace(/^/gm, '        '));
    return 'versioned, built and packed in a scratch copy';
  });
}

writeReport(true);
if (!opts.keep) rmSync(scratch, { recursive: true, force: true });
const failed = results.filter((r) => r.status === 'failed').length;
console.log(
  `check-packages: ${results.length - failed} passed, ${failed} failed in ${Math.round((Date.now() - started) / 1000)} s`,
);
process.exitCode = failed > 0 ? 1 : 0;
