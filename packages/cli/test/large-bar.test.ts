/**
 * The repro: a device spec with a mem64 BAR of 0x200000000 bytes
 * (8 GiB), inspected and shown as info mtree; and a BAR no firmware window has
 * room for, which inspect shows as unmapped (never address 0).
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tempDir } from '@vfio-ts/test-support';
import { describe, expect, it } from 'vitest';
import { cli } from './run-cli.js';

function specFile(dir: string, name: string, bars: unknown[]): string {
  const path = join(dir, `${name}.json`);
  writeFileSync(path, JSON.stringify({ name, vendor: '0x1234', device: '0x5678', class: '0x030000', bars }));
  return `sim:${path}`;
}

describe('GPU-sized BARs from a device spec', () => {
  it('inspects a mem64 BAR of 0x200000000 (used to abort Node) and prints its mtree with 16-digit addresses', () => {
    using tmp = tempDir();
    const dev = specFile(tmp.dir, 'big', [
      { index: 0, type: 'mem64', size: '0x200000000', prefetchable: true },
    ]);
    const r = cli(['inspect', dev]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/\n0 +mem64 +yes +0x200000000 +0x8000000000\n/);
    const doc = JSON.parse(cli(['inspect', dev, '--json']).stdout);
    expect(doc.bars).toEqual([
      { index: 0, type: 'mem64', prefetch: true, size: 0x2_0000_0000, address: 0x80_0000_0000 },
    ]);
    expect(doc.regions.find((x: { index: number }) => x.index === 0).mmaps).toEqual([
      { offset: 0, size: 0x2_0000_0000 },
    ]);
    const m = cli(['mtree', dev]);
    expect(m.code).toBe(0);
    expect(m.stdout).toContain(
      [
        '  0000000000000000-ffffffffffffffff (prio 0, i/o): system',
        `    0000008000000000-00000081ffffffff (prio 1, i/o): ${dev} base BAR 0`,
        `      0000008000000000-00000081ffffffff (prio 0, i/o): ${dev} BAR 0`,
        `        0000008000000000-00000081ffffffff (prio 0, ramd): ${dev} BAR 0 mmaps[0]`,
        '',
      ].join('\n'),
    );
  });

  it('shows a BAR left unmapped by placement as "unmapped" and null, with the warning, never address 0', () => {
    using tmp = tempDir();
    const dev = specFile(tmp.dir, 'full', [
      { index: 0, type: 'mem32', size: '2G' },
      { index: 2, type: 'mem32', size: '16M' },
    ]);
    const r = cli(['inspect', dev]);
    expect(r.code).toBe(0);
    expect(r.stderr).toContain('no space for mem32 BAR 0 of 0x80000000 bytes');
    expect(r.stdout).toMatch(/\n0 +mem32 +no +0x80000000 +unmapped\n/);
    expect(r.stdout).toMatch(/\n2 +mem32 +no +0x1000000 +0xc0000000\n/);
    const doc = JSON.parse(cli(['inspect', dev, '--json']).stdout);
    expect(doc.bars.map((b: { address: number | null }) => b.address)).toEqual([null, 0xc000_0000]);
  });
});
