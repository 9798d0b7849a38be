// What the packing check and the release script share: the workspace's public
// packages, packing one the way `pnpm publish` would, and a tarball's contents.
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

export const root = new URL('../..', import.meta.url).pathname.replace(/\/$/, '');

function packagesUnder(base, folder) {
  const dir = join(base, folder);
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((name) => existsSync(join(dir, name, 'package.json')))
    .map((name) => {
      const manifest = JSON.parse(readFileSync(join(dir, name, 'package.json'), 'utf8'));
      return { folder: name, dir: join(dir, name), name: manifest.name, version: manifest.version, manifest };
    });
}

/** Every workspace package, private ones included (packages/*, tools/*). */
export function workspacePackages(base = root) {
  return [...packagesUnder(base, 'packages'), ...packagesUnder(base, 'tools')];
}

/** The workspace packages `pkg` depends on, directly or not, through any kind of dependency. */
export function workspaceDependencies(pkg, workspace) {
  const byName = new Map(workspace.map((p) => [p.name, p]));
  const found = new Map();
  const visit = (p) => {
    const { dependencies, devDependencies, peerDependencies, optionalDependencies } = p.manifest;
    for (const name of Object.keys({
      ...dependencies,
      ...devDependencies,
      ...peerDependencies,
      ...optionalDependencies,
    })) {
      const dep = byName.get(name);
      if (dep && !found.has(name)) {
        found.set(name, dep);
        visit(dep);
      }
    }
  };
  visit(pkg);
  return [...found.values()];
}

/** Every workspace package that is published: packages/*, not private, in dependency order. */
export function publicPackages(base = root) {
  const all = packagesUnder(base, 'packages').filter((pkg) => !pkg.manifest.private);
  // Dependencies first, so a reader sees trace and vfio-sys before the CLI.
  const byName = new Map(all.map((pkg) => [pkg.name, pkg]));
  const ordered = [];
  const visit = (pkg) => {
    if (ordered.includes(pkg)) return;
    for (const dep of Object.keys(pkg.manifest.dependencies ?? {})) {
      const inner = byName.get(dep);
      if (inner) visit(inner);
    }
    ordered.push(pkg);
  };
  for (const pkg of all) visit(pkg);
  return ordered;
}

/**
 * Packs one package with pnpm (its prepack builds it first; workspace: ranges
 * become real ones, as in a publish) and returns the tarball's path.
 */
export function packPackage(pkg, destination) {
  const before = new Set(readdirSync(destination));
  execFileSync('pnpm', ['pack', '--pack-destination', destination], {
    cwd: pkg.dir,
    stdio: ['ignore', 'ignore', 'pipe'],
    encoding: 'utf8',
    env: { ...process.env, TURBO_TELEMETRY_DISABLED: '1' },
  });
  const made = readdirSync(destination).filter((f) => f.endsWith('.tgz') && !before.has(f));
  if (made.length !== 1) throw new Error(`pnpm pack in ${pkg.dir} made ${made.length} tarballs`);
  return join(destination, made[0]);
}

/** The files in a tarball (without npm's `package/` prefix), sorted. */
export function tarballFiles(tarball) {
  return execFileSync('tar', ['-tzf', tarball], { encoding: 'utf8' })
    .split('\n')
    .filter((line) => line && !line.endsWith('/'))
    .map((line) => line.replace(/^package\//, ''))
    .sort();
}

/** The package.json inside a tarball, as a user's installer reads it. */
export function tarballManifest(tarball) {
  return JSON.parse(execFileSync('tar', ['-xzOf', tarball, 'package/package.json'], { encoding: 'utf8' }));
}

/**
 * Every file a manifest points at (exports targets, main, types, bin), which an
 * unbuilt or half-built package would lack.
 */
export function manifestTargets(manifest) {
  const targets = new Set();
  const walk = (value) => {
    if (typeof value === 'string') targets.add(value.replace(/^\.\//, ''));
    else if (value && typeof value === 'object') for (const inner of Object.values(value)) walk(inner);
  };
  walk(manifest.exports);
  walk(manifest.bin);
  for (const field of ['main', 'types']) if (manifest[field]) walk(manifest[field]);
  return [...targets].sort();
}

/** The subpaths a package exports, as import specifiers ('@x/y', '@x/y/uapi'), without package.json. */
export function exportSpecifiers(manifest) {
  const subpaths = manifest.exports ? Object.keys(manifest.exports) : ['.'];
  return subpaths
    .filter((sub) => sub !== './package.json')
    .map((sub) => (sub === '.' ? manifest.name : `${manifest.name}/${sub.replace(/^\.\//, '')}`));
}
