/**
 * The iommufd and VFIO cdev layouts, ioctl numbers and constants against
 * Linux 6.12's UAPI headers: Debian's linux-libc-dev from bookworm-backports,
 * resolved at run time (the archive moves), fetched with `apt-get download`
 * through a private apt configuration and unpacked with `dpkg -x` into
 * node_modules/.cache (never installed). The host's own headers are 6.1 and
 * have no <linux/iommufd.h>: ./layout.test.ts checks those.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import * as sys from '../src/uapi/index.js';
import * as uapi from '../src/uapi/index.js';

const CACHE = join(dirname(fileURLToPath(import.meta.url)), '..', 'node_modules', '.cache', 'linux-libc-dev');

function apt(dir: string): string[] {
  return [
    '-q',
    '-o',
    `Dir::Etc::sourcelist=${join(dir, 'sources.list')}`,
    '-o',
    'Dir::Etc::sourceparts=-',
    '-o',
    `Dir::State::Lists=${join(dir, 'lists')}`,
    '-o',
    `Dir::Cache=${join(dir, 'cache')}`,
    '-o',
    'Debug::NoLocking=1',
  ];
}

/** The unpacked /usr/include of bookworm-backports' linux-libc-dev, fetched once per version. */
function headers612(): string {
  const aptDir = join(CACHE, 'apt');
  mkdirSync(join(aptDir, 'lists', 'partial'), { recursive: true });
  mkdirSync(join(aptDir, 'cache', 'archives', 'partial'), { recursive: true });
  writeFileSync(join(aptDir, 'sources.list'), 'deb http://deb.debian.org/debian bookworm-backports main\n');
  const update = spawnSync('apt-get', [...apt(aptDir), 'update'], { encoding: 'utf8' });
  const policy = spawnSync('apt-cache', [...apt(aptDir), 'policy', 'linux-libc-dev'], { encoding: 'utf8' });
  const version = /Candidate: (6\.12\.\S+)/.exec(policy.stdout ?? '')?.[1];
  const cached = existsSync(CACHE)
    ? readdirSync(CACHE)
        .filter((d) => d.startsWith('6.12.'))
        .sort()
    : [];
  if (!version) {
    // Offline: an earlier fetch still checks the layouts.
    const last = cached.at(-1);
    if (last) return join(CACHE, last, 'usr', 'include');
    throw new Error(
      `cannot resolve linux-libc-dev 6.12 in bookworm-backports (apt-get update: ${(update.stderr || update.stdout || '').trim().slice(0, 300)}); the layout test needs deb.debian.org once`,
    );
  }
  const dir = join(CACHE, version.replace(/[^\w.+~-]/g, '_'));
  if (!existsSync(join(dir, 'usr', 'include', 'linux', 'iommufd.h'))) {
    const work = mkdtempSync(join(CACHE, 'fetch-'));
    try {
      execFileSync('apt-get', [...apt(aptDir), 'download', `linux-libc-dev=${version}`], {
        cwd: work,
        stdio: 'pipe',
      });
      const deb = readdirSync(work).find((f) => f.endsWith('.deb'));
      if (!deb) throw new Error(`apt-get download linux-libc-dev=${version} left no .deb`);
      execFileSync('dpkg', ['-x', join(work, deb), join(work, 'root')]);
      rmSync(dir, { recursive: true, force: true });
      renameSync(join(work, 'root'), dir);
    } finally {
      rmSync(work, { recursive: true, force: true });
    }
  }
  return join(dir, 'usr', 'include');
}

const cField = (f: string) => (f === 'size_' ? 'size' : f);

/** Names of the 6.12 header our exports mirror: VFIO_, IOMMU_ and IOMMUFD_ names. */
const NOT_IN_HEADER = new Set(['VFIO_PCI_OFFSET_SHIFT', 'VFIO_DEVICE_INFO_ARGSZ', 'VFIO_BASE', 'VFIO_TYPE']);
const NAMED = Object.entries(uapi).filter(
  ([name, value]) =>
    typeof value === 'number' && /^(VFIO|IOMMU|IOMMUFD)_/.test(name) && !NOT_IN_HEADER.has(name),
);

function probe(include: string): Record<string, number> {
  const lines = [
    '#include <stdio.h>',
    '#include <stddef.h>',
    '#include <linux/vfio.h>',
    '#include <linux/iommufd.h>',
    'int main(void) {',
  ];
  const structs = { ...uapi.layouts, ...uapi.iommufdLayouts };
  for (const [struct, fields] of Object.entries(structs)) {
    lines.push(`printf("${struct}.sizeof %zu\\n", sizeof(struct ${struct}));`);
    for (const f of Object.keys(fields)) {
      if (f === 'size') continue;
      lines.push(`printf("${struct}.${f} %zu\\n", offsetof(struct ${struct}, ${cField(f)}));`);
    }
  }
  for (const [name] of NAMED) lines.push(`printf("${name} %llu\\n", (unsigned long long)(${name}));`);
  lines.push('return 0; }');
  const dir = mkdtempSync(join(tmpdir(), 'vfio-layout-612-'));
  try {
    writeFileSync(join(dir, 'probe.c'), lines.join('\n'));
    // The 6.12 headers first; glibc's own headers stay the system's.
    execFileSync(
      'gcc',
      [
        '-I',
        include,
        '-I',
        join(include, 'x86_64-linux-gnu'),
        '-o',
        join(dir, 'probe'),
        join(dir, 'probe.c'),
      ],
      { stdio: 'pipe' },
    );
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
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

describe('layouts, ioctl numbers and constants match the 6.12 <linux/vfio.h> and <linux/iommufd.h>', () => {
  const c = probe(headers612());

  it.each(Object.entries(uapi.iommufdLayouts))('struct %s (6.12)', (struct, fields) => {
    for (const [f, offset] of Object.entries(fields)) {
      expect(c[`${struct}.${f === 'size' ? 'sizeof' : f}`], `${struct}.${f}`).toBe(offset);
    }
  });

  it('the structs of the 6.1 table are unchanged in 6.12, but for vfio_device_info (grew to 24 bytes)', () => {
    for (const [struct, fields] of Object.entries(uapi.layouts)) {
      if (struct === 'vfio_device_info') continue;
      for (const [f, offset] of Object.entries(fields))
        expect(c[`${struct}.${f === 'size' ? 'sizeof' : f}`], `${struct}.${f}`).toBe(offset);
    }
    expect(c['vfio_device_info.sizeof']).toBe(uapi.VFIO_DEVICE_INFO_ARGSZ);
    expect(uapi.layouts.vfio_device_info.size).toBe(20);
  });

  it('every exported VFIO_*, IOMMU_* and IOMMUFD_* number the headers define, cdev ioctls included', () => {
    const names = NAMED.map(([n]) => n);
    for (const n of ['VFIO_DEVICE_BIND_IOMMUFD', 'IOMMU_IOAS_MAP', 'IOMMU_GET_HW_INFO', 'IOMMU_OPTION'])
      expect(names).toContain(n);
    expect(names.length).toBeGreaterThan(100);
    for (const [name, value] of NAMED) expect(value, name).toBe(c[name]);
  });

  it('the root entry exports the same iommufd numbers as /uapi', () => {
    expect(sys.IOMMU_IOAS_MAP).toBe(0x3b85);
    expect(sys.IOMMU_GET_HW_INFO).toBe(0x3b8a);
    expect(sys.VFIO_DEVICE_ATTACH_IOMMUFD_PT).toBe(0x3b77);
  });
});
