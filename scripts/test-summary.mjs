// Folds the vitest JSON reports of every package and of the VM tier into one
// plain "N passed, N failed, N skipped" line: CI reads that line, not vitest's own.
//   --vm             the VM tier ran: a missing VM report counts as a failure
//   --vm-skipped=WHY the VM tier was skipped on purpose: say so, count it as skipped
//   --qemu           the QEMU 11.1 tier ran: a missing report counts as a failure
//   --qemu-skipped=WHY the QEMU tier was skipped on purpose: say so, count it as skipped
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const args = process.argv.slice(2);
const vmRan = args.includes('--vm');
const vmSkipped = args.find((a) => a.startsWith('--vm-skipped='))?.slice('--vm-skipped='.length);
const qemuRan = args.includes('--qemu');
const qemuSkipped = args.find((a) => a.startsWith('--qemu-skipped='))?.slice('--qemu-skipped='.length);

let passed = 0;
let failed = 0;
let skipped = 0;
const missing = [];

function fold(dir) {
  for (const file of readdirSync(dir).filter((f) => f.endsWith('.json'))) {
    const report = JSON.parse(readFileSync(join(dir, file), 'utf8'));
    passed += report.numPassedTests;
    failed += report.numFailedTests;
    skipped += report.numPendingTests + (report.numTodoTests ?? 0);
    if (report.numFailedTestSuites > 0 && report.numFailedTests === 0) failed += report.numFailedTestSuites;
  }
}

// Every package, and the shared test helpers' own tests.
const suites = [
  ...readdirSync(join(root, 'packages')).map((pkg) => join('packages', pkg)),
  'tools/test-support',
];
for (const suite of suites) {
  const dir = join(root, suite, '.test-results');
  if (!existsSync(dir)) {
    if (existsSync(join(root, suite, 'package.json'))) missing.push(suite);
    continue;
  }
  fold(dir);
}

// The packages as published (scripts/check-packages.mjs), reported at the root.
if (existsSync(join(root, '.test-results'))) fold(join(root, '.test-results'));
else missing.push('the package check (.test-results/packages.json)');

const vmDir = join(root, 'tools', 'vm', '.test-results');
if (vmRan) {
  // One report per kernel line and pass (tools/vm/src/cli.ts): 6.1 over the group
  // interface; 6.12 over the group, then over the cdev.
  const lines = (process.env.VFIO_TS_VM_KERNELS ?? '6.1 6.12').split(/[\s,]+/).filter(Boolean);
  const reports = ['host.json'];
  if (lines.includes('6.1')) reports.push('vitest.json');
  if (lines.includes('6.12')) reports.push('vitest-6.12.json', 'vitest-6.12-cdev.json');
  for (const report of reports) {
    if (!existsSync(join(vmDir, report))) missing.push(`the VM tier (tools/vm/.test-results/${report})`);
  }
  if (existsSync(vmDir)) fold(vmDir);
} else if (vmSkipped) {
  console.log(`test-summary: THE VM TIER WAS SKIPPED (${vmSkipped}): the real-driver tests did not run`);
  skipped += 1;
}

const qemuDir = join(root, 'tools', 'qemu', '.test-results');
if (qemuRan) {
  if (!existsSync(join(qemuDir, 'vitest.json')))
    missing.push('the QEMU tier (tools/qemu/.test-results/vitest.json)');
  if (existsSync(qemuDir)) fold(qemuDir);
} else if (qemuSkipped) {
  console.log(
    `test-summary: THE QEMU TIER WAS SKIPPED (${qemuSkipped}): the vfio-user tests under QEMU did not run`,
  );
  skipped += 1;
}

if (missing.length > 0) {
  console.log(`test-summary: no test report from ${missing.join(', ')} (their tests did not run)`);
  failed += missing.length;
}
console.log(`${passed} passed, ${failed} failed, ${skipped} skipped`);
process.exit(failed > 0 ? 1 : 0);
