// The vfio-ts CLI on the real devices: list, inspect --json, mtree, read, with traces.
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../src/guest.js';
import { REFERENCE } from './reference.js';

const BIN = join(REPO_ROOT, 'packages', 'cli', 'dist', 'bin.js');

function vfioTs(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [BIN, ...args], {
    encoding: 'utf8',
    env: { ...process.env, NO_COLOR: '1' },
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('vfio-ts on the real driver', () => {
  it('list: the test devices in viable groups, the shared group not viable', () => {
    const r = vfioTs('--json', 'list', '--all');
    expect(r.status, r.stderr).toBe(0);
    const groups = JSON.parse(r.stdout).groups as {
      group: number;
      viable: boolean;
      devices: { bdf: string; driver: string | null }[];
    }[];
    const groupOf = (bdf: string) => groups.find((g) => g.devices.some((d) => d.bdf === bdf))!;
    for (const name of ['nvme', 'e1000e', 'virtio-net', 'edu'] as const) {
      const g = groupOf(REFERENCE[name].bdf);
      expect(g.viable, name).toBe(true);
      expect(g.devices.find((d) => d.bdf === REFERENCE[name].bdf)!.driver).toBe('vfio-pci');
    }
    const shared = groupOf('0000:00:0a.0');
    expect(shared.viable).toBe(false);
    expect(shared.devices.map((d) => [d.bdf, d.driver])).toEqual([
      ['0000:00:0a.0', 'vfio-pci'],
      ['0000:00:0a.1', 'virtio-pci'],
    ]);
  });

  it('inspect --json: kernel backend, the reference facts, MSI-X mappable', () => {
    const r = vfioTs('--json', 'inspect', REFERENCE.nvme.bdf);
    expect(r.status, r.stderr).toBe(0);
    const doc = JSON.parse(r.stdout);
    expect(doc.backend).toBe('kernel');
    expect(doc.regions[0]).toMatchObject({ index: 0, size: 0x4000 });
    expect(doc.irqs[2]).toMatchObject({ index: 2, count: 65 });
    expect(doc.msix).toMatchObject({ entries: 65, tableBar: 0, tableOffset: 0x2000 });
  });

  it('mtree: the BAR with its mmap and the msix-table overlay, in QEMU format', () => {
    const r = vfioTs('mtree', REFERENCE.nvme.bdf);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toContain(
      '    00000000c0000000-00000000c0003fff (prio 1, i/o): 0000:00:03.0 base BAR 0\n',
    );
    expect(r.stdout).toContain(
      '        00000000c0000000-00000000c0003fff (prio 0, ramd): 0000:00:03.0 BAR 0 mmaps[0]\n',
    );
    expect(r.stdout).toContain('      00000000c0002000-00000000c000240f (prio 0, i/o): msix-table\n');
  });

  it('read: the same register fast and slow, the slow one traced as a region read', () => {
    const fast = vfioTs('--json', 'read', REFERENCE.edu.bdf, '0', '0x0');
    expect(fast.status, fast.stderr).toBe(0);
    const slow = vfioTs('--trace', 'vfio_region_read', 'read', '--slow', REFERENCE.edu.bdf, '0', '0x0');
    expect(slow.status, slow.stderr).toBe(0);
    expect(JSON.parse(fast.stdout).value).toBe(0x010000ed);
    expect(slow.stdout).toMatch(/0x0*10000ed/);
    expect(slow.stderr).toContain('vfio_region_read  (0000:00:07.0:region0+0x0, 4) = 0x10000ed');
  });

  it('inspect with realize traces on the fixup path', () => {
    const r = vfioTs(
      '--trace',
      'vfio_msix_*',
      '--option',
      'x-msix-ignore-mappable=on',
      'inspect',
      REFERENCE.nvme.bdf,
    );
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toContain('vfio_msix_fixup  (0000:00:03.0) MSI-X region 0 mmap fixup [0x3000 - 0x4000]');
    expect(r.stdout).toContain('fixup: [0x0-0x2000) [0x3000-0x4000)');
  });
});
