#!/usr/bin/env node
// Releases every package that has changesets, each on its own version:
//   node scripts/release.mjs            version (changeset version), build, commit
//                                       "release: ...", publish (changeset publish:
//                                       each new version, tagged <name>@<version>)
//   node scripts/release.mjs --dry-run  the same steps in a scratch clone of this tree
//                                       (uncommitted changes included): nothing is
//                                       written here, nothing goes to the registry;
//                                       prints the plan, the changelog entries and
//                                       each package's tarball contents
// Both check that every changeset's text reaches each CHANGELOG.md it names
// verbatim (a formatter once turned vfio_vga_quirk_setup into italics).
import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { parseArgs } from 'node:util';
import { packPackage, publicPackages, root, tarballFiles, tarballManifest } from './lib/packages.mjs';

const { values: opts } = parseArgs({ options: { 'dry-run': { type: 'boolean', default: false } } });
const dryRun = opts['dry-run'];
const env = { ...process.env, TURBO_TELEMETRY_DISABLED: '1' };

function sh(cwd, file, args, { quiet = false, show = false } = {}) {
  try {
    return execFileSync(file, args, {
      cwd,
      env,
      encoding: 'utf8',
      stdio: ['ignore', show ? 'inherit' : 'pipe', quiet ? 'pipe' : 'inherit'],
    });
  } catch (error) {
    // What a quiet command printed is shown only when it failed.
    if (quiet) process.stderr.write(`${error.stdout ?? ''}${error.stderr ?? ''}`);
    error.cmd = [file, ...args].join(' ');
    throw error;
  }
}

/** The pending changesets: file, the packages they name, their text. */
function pendingChangesets(base) {
  const dir = join(base, '.changeset');
  return readdirSync(dir)
    .filter((f) => f.endsWith('.md') && f !== 'README.md')
    .map((file) => {
      const text = readFileSync(join(dir, file), 'utf8');
      const match = /^---\n([\s\S]*?)\n---\n([\s\S]*)$/.exec(text);
      if (!match) throw new Error(`.changeset/${file}: no frontmatter`);
      const packages = [...match[1].matchAll(/^"?([^":]+)"?\s*:\s*(major|minor|patch)\s*$/gm)].map(
        (m) => m[1],
      );
      return { file, packages, summary: match[2].trim() };
    });
}

/** A copy of this tree to release from without touching it: HEAD plus uncommitted changes. */
function scratchCopy() {
  const scratch = mkdtempSync(join(tmpdir(), 'vfio-ts-release-'));
  const copy = join(scratch, 'repo');
  sh(root, 'git', ['clone', '--quiet', '--shared', root, copy], { quiet: true });
  sh(copy, 'git', ['checkout', '--quiet', '--detach', sh(root, 'git', ['rev-parse', 'HEAD']).trim()]);
  const changed = sh(root, 'git', ['ls-files', '-z', '--modified', '--others', '--exclude-standard']).split(
    '\0',
  );
  for (const file of changed.filter(Boolean)) {
    if (!existsSync(join(root, file))) {
      rmSync(join(copy, file), { force: true });
      continue;
    }
    mkdirSync(dirname(join(copy, file)), { recursive: true });
    copyFileSync(join(root, file), join(copy, file));
  }
  for (const file of sh(root, 'git', ['ls-files', '-z', '--deleted']).split('\0').filter(Boolean)) {
    rmSync(join(copy, file), { force: true });
  }
  return { scratch, copy };
}

function install(base) {
  try {
    sh(base, 'pnpm', ['install', '--frozen-lockfile', '--prefer-offline', '--reporter=silent'], {
      quiet: true,
    });
  } catch {
    // A working tree whose lockfile is behind its manifests (uncommitted work) still gets a plan.
    console.log(
      'release: the lockfile is not up to date with the manifests; installing without --frozen-lockfile',
    );
    sh(base, 'pnpm', ['install', '--prefer-offline', '--reporter=silent']);
  }
}

/** The section a release added at the top of a CHANGELOG.md. */
function newestSection(changelog) {
  const start = changelog.indexOf('\n## ');
  if (start < 0) return changelog;
  const next = changelog.indexOf('\n## ', start + 1);
  return changelog.slice(start + 1, next < 0 ? undefined : next).trim();
}

const { scratch, copy } = dryRun ? scratchCopy() : { scratch: null, copy: root };
try {
  if (!dryRun && sh(root, 'git', ['status', '--porcelain']).trim() !== '') {
    throw new Error(
      'release: the work tree has uncommitted changes; commit or remove them first (or use --dry-run)',
    );
  }
  if (dryRun) {
    console.log(`release: DRY RUN in ${copy} (a clone of this tree with its uncommitted changes)`);
    install(copy);
  }

  const changesets = pendingChangesets(copy);
  if (changesets.length === 0) console.log('release: no pending changesets, nothing to release');
  else release(changesets);
} catch (error) {
  // One clear line (the failing command's own output is above it), not a stack.
  console.error(
    error.cmd ? `release: failed: ${error.cmd} (exit ${error.status ?? error.code})` : error.message,
  );
  process.exitCode = 1;
} finally {
  if (scratch) rmSync(scratch, { recursive: true, force: true });
}

function release(changesets) {
  const before = new Map(publicPackages(copy).map((pkg) => [pkg.name, pkg.version]));
  sh(copy, 'pnpm', ['exec', 'changeset', 'version'], { quiet: true });
  const after = publicPackages(copy);
  const changed = after.filter((pkg) => before.get(pkg.name) !== pkg.version);
  console.log(`release: ${changesets.length} changesets -> ${changed.length} packages`);

  // The changelog a user reads must carry each changeset's words as written.
  const problems = [];
  for (const pkg of changed) {
    const changelog = readFileSync(join(pkg.dir, 'CHANGELOG.md'), 'utf8');
    for (const changeset of changesets.filter((c) => c.packages.includes(pkg.name))) {
      if (!changelog.includes(changeset.summary.split('\n')[0])) {
        problems.push(`${pkg.name}/CHANGELOG.md does not carry .changeset/${changeset.file} as written`);
      }
    }
  }
  if (problems.length > 0)
    throw new Error(`release: changelog entries changed on the way:\n  ${problems.join('\n  ')}`);

  sh(copy, 'pnpm', ['turbo', 'run', 'build', '--output-logs=errors-only'], { quiet: true });

  const packs = mkdtempSync(join(tmpdir(), 'vfio-ts-release-packs-'));
  try {
    for (const pkg of changed) {
      const tarball = packPackage(pkg, packs);
      const manifest = tarballManifest(tarball);
      const ours = Object.entries(manifest.dependencies ?? {})
        .filter(([name]) => before.has(name))
        .map(([name, range]) => `${name}@${range}`);
      console.log(`\n${pkg.name} ${before.get(pkg.name)} -> ${pkg.version}`);
      console.log(`  depends on: ${ours.length > 0 ? ours.join(', ') : 'none of ours'}`);
      console.log(`  tarball ${tarball.split('/').pop()}:`);
      for (const file of tarballFiles(tarball)) console.log(`    ${file}`);
      console.log('  changelog:');
      const section = newestSection(readFileSync(join(pkg.dir, 'CHANGELOG.md'), 'utf8'));
      console.log(section.replace(/^/gm, '    '));
    }
  } finally {
    rmSync(packs, { recursive: true, force: true });
  }

  if (dryRun) {
    console.log(
      `\nrelease: dry run done; a release would commit these versions and publish ${changed.map((p) => `${p.name}@${p.version}`).join(', ')} (each one not yet on the registry)`,
    );
  } else {
    const names = changed.map((p) => `${p.name}@${p.version}`).join(', ');
    sh(root, 'git', ['add', '--all', '--', '.changeset', 'packages', 'pnpm-lock.yaml']);
    sh(root, 'git', [
      'commit',
      '--quiet',
      '-m',
      `release: ${names}`,
      '--',
      '.changeset',
      'packages',
      'pnpm-lock.yaml',
    ]);
    // changeset publish runs pnpm publish per package (workspace: ranges become real ones)
    // for every version the registry lacks, and tags each one.
    sh(root, 'pnpm', ['exec', 'changeset', 'publish'], { show: true });
    console.log(`release: published ${names}; push the commit and tags: git push --follow-tags`);
  }
}
