// The CLI and the two VFIO interfaces: `list` says what the kernel offers per
// device, `--iommu-interface` picks one, `inspect` reports which it used, and
// on 6.12 the group and the cdev give the same inspect --json, mtree and reads.
import { expectNoLeaksInFile } from '@vfio-ts/test-support';
import { describe, expect, it } from 'vitest';
import { vfioTs } from './cli-in-process.js';
import { KERNEL_LINE } from './helpers.js';
import { REFERENCE } from './reference.js';

const is612 = KERNEL_LINE === '6.12';
expectNoLeaksInFile();

async function json(...args: string[]) {
  const r = await vfioTs('--json', ...args);
  expect(r.status, r.stderr || r.stdout).toBe(0);
  return JSON.parse(r.stdout);
}

describe(`vfio-ts and the VFIO interfaces on ${KERNEL_LINE}`, () => {
  it(`list: ${is612 ? 'group and cdev' : 'the group only'} for devices on vfio-pci, nothing for the others`, async () => {
    const devices = (
      (await json('list', '--all')).groups as {
        devices: { bdf: string; driver: string; interfaces: string[] }[];
      }[]
    ).flatMap((g) => g.devices);
    const of = (bdf: string) => devices.find((d) => d.bdf === bdf)!.interfaces;
    for (const name of ['nvme', 'e1000e', 'virtio-net', 'edu', 'ivshmem'] as const)
      expect(of(REFERENCE[name].bdf), name).toEqual(is612 ? ['group', 'cdev'] : ['group']);
    expect(of('0000:00:0a.1')).toEqual([]);
    const human = (await vfioTs('list')).stdout;
    expect(human).toMatch(/^group\s+viable\s+device\s+id\s+class\s+driver\s+interfaces$/m);
    expect(human).toContain(`0000:00:03.0  1b36:0010  0x010802  vfio-pci  ${is612 ? 'group,cdev' : 'group'}`);
  });

  it('inspect reports the interface it used and why', async () => {
    const auto = await json('inspect', REFERENCE.nvme.bdf);
    expect(auto.iommu.interface).toBe(is612 ? 'cdev' : 'group');
    expect(auto.iommu.reason).toMatch(is612 ? /offers a cdev/ : /no VFIO device cdev/);
    const text = await vfioTs('--iommu-interface', 'group', 'inspect', REFERENCE.nvme.bdf);
    expect(text.status, text.stderr).toBe(0);
    expect(text.stdout).toMatch(
      /^IOMMU\s+group interface\s+\/dev\/vfio\/\d+\s+\(forced \(--iommu-interface group\)\)$/m,
    );
    if (!is612) {
      const r = await vfioTs('inspect', REFERENCE.nvme.bdf, '--iommu-interface', 'cdev');
      expect(r.status).toBe(1);
      expect(r.stderr).toMatch(/cdev interface .*no VFIO device cdev/);
    }
    const bad = await vfioTs('--iommu-interface', 'legacy', 'inspect', REFERENCE.nvme.bdf);
    expect(bad.status).not.toBe(0);
    expect(bad.stderr).toMatch(/legacy/);
  });

  // On 6.12 the two interfaces; on 6.1 (group only) auto against the forced group.
  const pair = is612 ? (['group', 'cdev'] as const) : (['auto', 'group'] as const);
  it(`${pair.join(' and ')} give the same inspect --json (but for iommu), mtree and register reads`, async () => {
    const names = ['nvme', 'e1000e', 'virtio-net', 'edu', 'ivshmem'] as const;
    for (const name of names) {
      const bdf = REFERENCE[name].bdf;
      const a = await json('--iommu-interface', pair[0], 'inspect', bdf);
      const b = await json('--iommu-interface', pair[1], 'inspect', bdf);
      expect([a.iommu.interface, b.iommu.interface]).toEqual(is612 ? ['group', 'cdev'] : ['group', 'group']);
      if (is612) expect(b.iommu.path).toMatch(/^\/dev\/vfio\/devices\/vfio\d+$/);
      const { iommu: _a, ...aRest } = a;
      const { iommu: _b, ...bRest } = b;
      expect(bRest, name).toEqual(aRest);
      const mtree = [
        await vfioTs('--iommu-interface', pair[0], 'mtree', '-f', bdf),
        await vfioTs('--iommu-interface', pair[1], 'mtree', '-f', bdf),
      ];
      expect(mtree[1]!.status, mtree[1]!.stderr).toBe(0);
      expect(mtree[1]!.stdout, name).toBe(mtree[0]!.stdout);
    }
    const reads = [
      await json('--iommu-interface', pair[0], 'read', '--slow', REFERENCE.edu.bdf, '0', '0x0'),
      await json('--iommu-interface', pair[1], 'read', '--slow', REFERENCE.edu.bdf, '0', '0x0'),
    ];
    expect(reads[0].value).toBe(0x010000ed);
    expect(reads[1]).toEqual(reads[0]);
  });
});
