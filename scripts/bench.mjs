// `pnpm bench`: builds, runs every package's bench one after another (never
// two at once: they would time each other), then prints one table of every
// benchmark id with its figure, its target and whether it holds, and writes
// the same as bench-results.json (git-ignored) so runs can be compared.
// Each bench reports through @vfio-ts/test-support/bench, which appends a
// JSON line per result to $VFIO_TS_BENCH_OUT.
//   --only=<pkg>[,<pkg>]  run only these packages' benches (folder names)
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const only = process.argv
  .find((a) => a.startsWith('--only='))
  ?.slice('--only='.length)
  .split(',');

/** Packages with a bench script, lowest layer first (the order the ids follow). */
const packages = readdirSync(join(root, 'packages'))
  .filter((dir) => {
    const file = join(root, 'packages', dir, 'package.json');
    return existsSync(file) && JSON.parse(readFileSync(file, 'utf8')).scripts?.bench !== undefined;
  })
  .filter((dir) => only === undefined || only.includes(dir));
const ORDER = ['memory-core', 'vfio-sys', 'vfio-region', 'pci-vfio', 'plugin-host', 'vfio-user', 'cli'];
packages.sort((a, b) => (ORDER.indexOf(a) + 1 || 99) - (ORDER.indexOf(b) + 1 || 99));

const build = spawnSync(
  'pnpm',
  [
    'exec',
    'turbo',
    'run',
    'build',
    '--output-logs=errors-only',
    ...packages.map((p) => `--filter=./packages/${p}`),
  ],
  { cwd: root, stdio: 'inherit', env: { ...process.env, TURBO_TELEMETRY_DISABLED: '1' } },
);
if (build.status !== 0) process.exit(build.status ?? 1);

const scratch = mkdtempSync(join(tmpdir(), 'vfio-ts-bench-'));
const resultsFile = join(scratch, 'results.jsonl');
const failures = [];
const started = new Date();
try {
  for (const pkg of packages) {
    console.log(`\n== @vfio-ts/${pkg} bench`);
    const run = spawnSync('pnpm', ['run', '--silent', 'bench'], {
      cwd: join(root, 'packages', pkg),
      stdio: 'inherit',
      env: { ...process.env, VFIO_TS_BENCH_OUT: resultsFile, VFIO_TS_BENCH_PACKAGE: pkg },
    });
    if (run.status !== 0) failures.push(`${pkg} (exit ${run.status ?? run.signal})`);
  }
  const results = existsSync(resultsFile)
    ? readFileSync(resultsFile, 'utf8')
        .split('\n')
        .filter((line) => line !== '')
        .map((line) => JSON.parse(line))
    : [];
  printTable(results);
  const document = {
    started: started.toISOString(),
    finished: new Date().toISOString(),
    node: process.version,
    cpu: cpus()[0]?.model ?? 'unknown',
    cpus: cpus().length,
    loadavg: loadavg(),
    failed: failures,
    results,
  };
  writeFileSync(join(root, 'bench-results.json'), `${JSON.stringify(document, null, 2)}\n`);
  console.log(`\nwritten: bench-results.json (${results.length} results)`);
  const missed = results.filter((r) => r.holds === false).length;
  if (failures.length > 0) console.log(`benches that failed to run: ${failures.join(', ')}`);
  console.log(
    `${results.length - missed} of ${results.length} figures hold or are information; ${missed} miss`,
  );
  if (failures.length > 0) process.exitCode = 1;
} finally {
  rmSync(scratch, { recursive: true, force: true });
}

function formatFigure(figure, unit) {
  if (typeof figure !== 'number' || !Number.isFinite(figure)) return String(figure);
  const abs = Math.abs(figure);
  const digits = abs >= 100 ? 0 : abs >= 10 ? 1 : abs >= 1 ? 2 : 3;
  return `${figure.toFixed(digits)}${unit}`;
}

function printTable(results) {
  const rows = results.map((r) => [
    r.id,
    r.what,
    formatFigure(r.figure, r.unit),
    r.target === null ? '-' : `${r.target}${r.unit}`,
    r.holds === null ? 'info' : r.holds ? 'holds' : 'MISSES',
  ]);
  const header = ['id', 'what', 'figure', 'target', ''];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i].length)));
  const line = (cells) =>
    cells
      .map((c, i) => (i === 2 || i === 3 ? c.padStart(widths[i]) : c.padEnd(widths[i])))
      .join('  ')
      .trimEnd();
  console.log(`\n${line(header)}`);
  console.log(widths.map((w) => '-'.repeat(w)).join('  '));
  for (const row of rows) console.log(line(row));
}
