/**
 * The layering of DESIGN.md ("Packages and what each may import"), checked by
 * `pnpm lint` (dependency-cruiser). Every import between our packages must
 * match one `allowed` rule below, or it is reported as `not-in-allowed`; the
 * `forbidden` rules name the mistakes worth their own message. Type-only
 * imports count as imports. The table itself is tools/lint/layers.cjs;
 * tools/lint/layering.test.mjs shows bad imports being reported.
 */

const { LAYERS, MOCK_BACKEND_USERS, TEST_SUPPORT_DEPS } = require('./tools/lint/layers.cjs');

/** A package's modules, whether the import resolved to its folder or (not built yet) stayed a bare name. */
const pkg = (name) => `^(packages/${name}/|@vfio-ts/${name}(/|$))`;
const anyOf = (names) => (names.length === 0 ? '^$' : names.map(pkg).join('|'));
const TEST_SUPPORT = '^(tools/test-support/|@vfio-ts/test-support(/|$))';
const OURS = '^(packages/|tools/|@vfio-ts/)';
const TESTS = 'test|bench';
/** Folders under tools/ other than the shared helpers and this check: test tiers on top of everything. */
const TEST_TIERS = '^tools/(?!test-support/|lint/)[^/]+/';

module.exports = {
  allowed: [
    {
      comment: 'Node built-ins and npm packages (which ones a package declares is its package.json)',
      from: {},
      to: { pathNot: OURS },
    },
    {
      comment: "A package's own modules, whatever folder (src, test, bench) they are in",
      from: { path: '^(packages|tools)/([^/]+)/' },
      to: { path: '^$1/$2/' },
    },
    ...Object.entries(LAYERS).map(([name, deps]) => ({
      comment: `${name} may import ${deps.join(', ') || 'nothing of ours'} (DESIGN.md)`,
      from: { path: `^packages/${name}/` },
      to: { path: anyOf(deps) },
    })),
    {
      comment:
        'Test-only exception: tests and benches of vfio-region and pci-vfio use plugin-host as their mock backend',
      from: { path: `^packages/(${MOCK_BACKEND_USERS.join('|')})/(${TESTS})/` },
      to: { path: pkg('plugin-host') },
    },
    {
      comment: 'Tests and benches of every package may use the shared test helpers',
      from: { path: `^packages/[^/]+/(${TESTS})/` },
      to: { path: TEST_SUPPORT },
    },
    {
      comment:
        'The shared test helpers sit just above trace, below everything else (so vfio-sys tests can use them)',
      from: { path: '^tools/test-support/' },
      to: { path: anyOf(TEST_SUPPORT_DEPS) },
    },
    {
      comment: 'Test tiers under tools/ (the VM tier, ...) drive every package, with the shared test helpers',
      from: { path: TEST_TIERS },
      to: { path: `${anyOf(Object.keys(LAYERS))}|${TEST_SUPPORT}` },
    },
  ],
  allowedSeverity: 'error',
  forbidden: [
    {
      name: 'no-relative-import-across-packages',
      comment: 'Import another package by its name (@vfio-ts/...), never by a relative path into its folder',
      severity: 'error',
      from: { path: '^(packages|tools)/([^/]+)/' },
      to: { dependencyTypes: ['local'], path: '^(packages|tools)/', pathNot: '^$1/$2/' },
    },
    {
      name: 'no-test-support-in-src',
      comment: '@vfio-ts/test-support is private and unpublished: only tests and benches may import it',
      severity: 'error',
      from: { path: '^packages/[^/]+/src/' },
      to: { path: TEST_SUPPORT },
    },
    {
      name: 'no-circular',
      comment:
        'Runtime import cycles make module initialisation order fragile (type-only imports do not count)',
      severity: 'error',
      from: { path: OURS },
      to: { circular: true, viaOnly: { dependencyTypesNot: ['type-only'] } },
    },
  ],
  options: {
    includeOnly: '^(packages|tools)/|^@vfio-ts/',
    // Sources are cruised (see SOURCES in package.json's lint:layers); built output is only ever a target.
    exclude: { path: '(^|/)(node_modules|\\.cache|\\.test-results|\\.turbo|bench/\\.build)/' },
    doNotFollow: { path: '(^|/)(node_modules|dist)/' },
    tsPreCompilationDeps: true,
    enhancedResolveOptions: {
      exportsFields: ['exports'],
      conditionNames: ['types', 'import', 'node', 'default'],
      mainFields: ['types', 'module', 'main'],
    },
    reporterOptions: { text: { highlightFocused: true } },
  },
};
