/**
 * The TypeScript layouts, ioctl numbers and constants against the system's
 * <linux/vfio.h>, through a small C program compiled with gcc. Every struct
 * and number vfio-sys exports that the header defines is compared.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import * as sys from '../src/uapi/index.js';

const HEADER = '/usr/include/linux/vfio.h';
const PCI_HEADER = '/usr/include/linux/pci_regs.h';

/** TS layout table name -> C struct name, and TS field -> C field (size_ is `size`). */
const cField = (f: string) => (f === 'size_' ? 'size' : f);

const IOCTLS = [
  'VFIO_GET_API_VERSION',
  'VFIO_CHECK_EXTENSION',
  'VFIO_SET_IOMMU',
  'VFIO_GROUP_GET_STATUS',
  'VFIO_GROUP_SET_CONTAINER',
  'VFIO_GROUP_UNSET_CONTAINER',
  'VFIO_GROUP_GET_DEVICE_FD',
  'VFIO_DEVICE_GET_INFO',
  'VFIO_DEVICE_GET_REGION_INFO',
  'VFIO_DEVICE_GET_IRQ_INFO',
  'VFIO_DEVICE_SET_IRQS',
  'VFIO_DEVICE_RESET',
  'VFIO_DEVICE_GET_PCI_HOT_RESET_INFO',
  'VFIO_DEVICE_PCI_HOT_RESET',
  'VFIO_DEVICE_FEATURE',
  'VFIO_IOMMU_GET_INFO',
  'VFIO_IOMMU_MAP_DMA',
  'VFIO_IOMMU_UNMAP_DMA',
] as const;

/** Every exported numeric constant named like the header's macros and enum values. */
const CONSTANTS = Object.entries(sys).filter(
  ([name, value]) =>
    typeof value === 'number' && /^VFIO_/.test(name) && !(IOCTLS as readonly string[]).includes(name),
);
/** Every exported number named PCI_*: the <linux/pci_regs.h> vocabulary. */
const PCI_CONSTANTS = Object.entries(sys).filter(
  ([name, value]) => typeof value === 'number' && /^PCI_/.test(name),
);

/** Ours but not the header's: the cdev ioctls (newer than 6.1) and our own helpers. */
const NOT_IN_61_HEADER = new Set([
  'VFIO_DEVICE_BIND_IOMMUFD',
  'VFIO_DEVICE_ATTACH_IOMMUFD_PT',
  'VFIO_DEVICE_DETACH_IOMMUFD_PT',
  'VFIO_PCI_OFFSET_SHIFT',
  'VFIO_DEVICE_INFO_ARGSZ',
]);

function compileProbe(): Record<string, number> {
  const gcc = spawnSync('gcc', ['--version']);
  if (gcc.error || gcc.status !== 0)
    throw new Error('gcc is missing: install it (apt-get install gcc) to check the VFIO layouts');
  if (!existsSync(HEADER))
    throw new Error(`${HEADER} is missing: install the kernel headers (apt-get install linux-libc-dev)`);
  if (!existsSync(PCI_HEADER))
    throw new Error(`${PCI_HEADER} is missing: install the kernel headers (apt-get install linux-libc-dev)`);
  const lines: string[] = [
    '#include <stdio.h>',
    '#include <stddef.h>',
    '#include <linux/vfio.h>',
    '#include <linux/pci_regs.h>',
    'int main(void) {',
  ];
  for (const [struct, fields] of Object.entries(sys.layouts)) {
    lines.push(`printf("${struct}.sizeof %zu\\n", sizeof(struct ${struct}));`);
    for (const f of Object.keys(fields)) {
      if (f === 'size') continue;
      lines.push(`printf("${struct}.${f} %zu\\n", offsetof(struct ${struct}, ${cField(f)}));`);
    }
  }
  for (const name of IOCTLS) lines.push(`printf("${name} %lu\\n", (unsigned long)${name});`);
  for (const [name] of CONSTANTS) {
    if (NOT_IN_61_HEADER.has(name)) continue;
    lines.push(`printf("${name} %lld\\n", (long long)(${name}));`);
  }
  for (const [name] of PCI_CONSTANTS) lines.push(`printf("${name} %lld\\n", (long long)(${name}));`);
  lines.push('return 0; }');
  const dir = mkdtempSync(join(tmpdir(), 'vfio-layout-'));
  writeFileSync(join(dir, 'probe.c'), lines.join('\n'));
  execFileSync('gcc', ['-o', join(dir, 'probe'), join(dir, 'probe.c')], { stdio: 'pipe' });
  const out = execFileSync(join(dir, 'probe'), { encoding: 'utf8' });
  return Object.fromEntries(
    out
      .trim()
      .split('\n')
      .map((l) => {
        const [k, v] = l.split(' ');
        return [k!, Number(v)];
      }),
  );
}

describe('layouts, ioctl numbers and constants match <linux/vfio.h>', () => {
  const c = compileProbe();

  it.each(Object.entries(sys.layouts))('struct %s', (struct, fields) => {
    for (const [f, offset] of Object.entries(fields)) {
      expect(c[`${struct}.${f === 'size' ? 'sizeof' : f}`], `${struct}.${f}`).toBe(offset);
    }
  });

  it.each(IOCTLS)('%s', (name) => {
    expect((sys as unknown as Record<string, number>)[name]).toBe(c[name]);
  });

  it('every exported constant the header defines', () => {
    const checked = CONSTANTS.filter(([n]) => !NOT_IN_61_HEADER.has(n));
    expect(checked.length).toBeGreaterThan(50);
    for (const [name, value] of checked) expect(value, name).toBe(c[name]);
  });

  it('every exported PCI_* constant equals <linux/pci_regs.h>', () => {
    expect(PCI_CONSTANTS.length).toBeGreaterThan(150);
    for (const [name, value] of PCI_CONSTANTS) expect(value, name).toBe(c[name]);
  });

  it('the extended capability header macros unpack as PCI_EXT_CAP_ID/VER/NEXT do', () => {
    // AER version 2 followed by a capability at 0x148 (e1000e's first extended capability).
    const header = 0x14820001;
    expect([sys.PCI_EXT_CAP_ID(header), sys.PCI_EXT_CAP_VER(header), sys.PCI_EXT_CAP_NEXT(header)]).toEqual([
      sys.PCI_EXT_CAP_ID_ERR,
      2,
      0x148,
    ]);
  });

  it('the cdev ioctls newer than the 6.1 header follow the _IO arithmetic (6.6+ UAPI)', () => {
    expect(sys.VFIO_DEVICE_BIND_IOMMUFD).toBe((0x3b << 8) | (100 + 18));
    expect(sys.VFIO_DEVICE_ATTACH_IOMMUFD_PT).toBe((0x3b << 8) | (100 + 19));
    expect(sys.VFIO_DEVICE_DETACH_IOMMUFD_PT).toBe((0x3b << 8) | (100 + 20));
    expect(sys.VFIO_DEVICE_BIND_IOMMUFD).toBe(0x3b76);
    expect(sys.ioc(3, 0x3b, 1, 8)).toBe(0xc0083b01);
  });
});
