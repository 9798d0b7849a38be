/** The shared helpers do what the suites rely on: each check here fails if a helper went vacuous. */
import { execFileSync } from 'node:child_process';
import {
  closeSync,
  constants,
  existsSync,
  mkdtempSync,
  openSync,
  readFileSync,
  realpathSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { defineTraceEvent } from '@vfio-ts/trace';
import { describe, expect, it } from 'vitest';
import {
  addFakePciDevice,
  eventfdWait,
  failNthCall,
  makeFakeSysfs,
  resourceCounts,
  settle,
  tempDir,
  traceLines,
} from '../src/index.js';

describe('resourceCounts', () => {
  it('sees an fd opened and closed', () => {
    const before = resourceCounts();
    const fd = openSync('/proc/self/status', 'r');
    expect(resourceCounts().fds).toBe(before.fds + 1);
    closeSync(fd);
    expect(resourceCounts()).toEqual(before);
  });

  it('counts the mappings the filter accepts', () => {
    expect(resourceCounts((l) => l.endsWith('[stack]')).maps).toBe(1);
    expect(resourceCounts(() => false).maps).toBe(0);
  });

  it('settles with the collector exposed', async () => {
    await expect(settle()).resolves.toBeUndefined();
  });
});

describe('eventfdWait', () => {
  // A FIFO opened non-blocking reads like an eventfd: 8 bytes when written, EAGAIN when empty.
  function fifo(): number {
    const path = join(mkdtempSync(join(tmpdir(), 'test-support-')), 'fifo');
    execFileSync('mkfifo', [path]);
    return openSync(path, constants.O_RDWR | constants.O_NONBLOCK);
  }

  it('returns the counter once it is written', async () => {
    const fd = fifo();
    try {
      setTimeout(() => writeSync(fd, Buffer.from([3, 0, 0, 0, 0, 0, 0, 0])), 30);
      expect(await eventfdWait({ fd })).toBe(3n);
    } finally {
      closeSync(fd);
    }
  });

  it('gives 0n when nothing arrives in time', async () => {
    const fd = fifo();
    try {
      const start = Date.now();
      expect(await eventfdWait(fd, 100)).toBe(0n);
      expect(Date.now() - start).toBeGreaterThanOrEqual(100);
    } finally {
      closeSync(fd);
    }
  });

  it('passes errors other than EAGAIN on', async () => {
    const dir = openSync(tmpdir(), 'r');
    try {
      await expect(eventfdWait(dir)).rejects.toThrow(expect.objectContaining({ code: 'EISDIR' }));
    } finally {
      closeSync(dir);
    }
  });
});

describe('traceLines', () => {
  const event = defineTraceEvent('test_support_event', 'n=%d name=%s');

  it('records the formatted lines emitted while fn runs, and nothing after', () => {
    const lines = traceLines('test_support_*', () => event.emit(7, 'x'));
    event.emit(8, 'y');
    expect(lines).toEqual(['test_support_event n=7 name=x']);
    expect(event.enabled).toBe(false);
  });

  it('refuses a pattern that matches no event', () => {
    expect(() => traceLines('no_such_event_*', () => {})).toThrow(/no trace event matches/);
  });
});

describe('failNthCall', () => {
  class Counter {
    count = 0;
    add(n: number): number {
      this.count += n;
      return this.count;
    }
  }

  it('fails exactly the chosen call and passes the others through with this bound', () => {
    const counter = new Counter();
    const wrapped = failNthCall(counter, 'add', 1, () => new Error('injected'));
    expect(wrapped.add(2)).toBe(2);
    expect(() => wrapped.add(3)).toThrow('injected');
    expect(wrapped.add(4)).toBe(6);
    expect(wrapped.count).toBe(6);
  });
});

describe('tempDir', () => {
  it('makes a folder and removes it with its contents on dispose', () => {
    let path: string;
    {
      using tmp = tempDir('test-support-');
      path = tmp.dir;
      writeFileSync(join(path, 'file'), 'x');
      expect(existsSync(join(path, 'file'))).toBe(true);
    }
    expect(existsSync(path)).toBe(false);
  });
});

describe('fake sysfs', () => {
  it('links a device from the bus, its IOMMU group and its driver as a real tree does', () => {
    const sys = makeFakeSysfs();
    addFakePciDevice(sys, '0000:00:03.0', 3, 'vfio-pci', '0x1b36 0x0010 0x010802', 'vfio-pci');
    addFakePciDevice(sys, '0000:00:1f.0', 10, null, '0x8086 0x2918 0x060100');
    const dev = join(sys, 'devices/pci0000:00/0000:00:03.0');
    expect(realpathSync(join(sys, 'bus/pci/devices/0000:00:03.0'))).toBe(realpathSync(dev));
    expect(realpathSync(join(sys, 'kernel/iommu_groups/3/devices/0000:00:03.0'))).toBe(realpathSync(dev));
    expect(realpathSync(join(dev, 'iommu_group'))).toBe(realpathSync(join(sys, 'kernel/iommu_groups/3')));
    expect(realpathSync(join(dev, 'driver'))).toBe(realpathSync(join(sys, 'bus/pci/drivers/vfio-pci')));
    expect(readFileSync(join(dev, 'vendor'), 'utf8')).toBe('0x1b36\n');
    expect(readFileSync(join(dev, 'driver_override'), 'utf8')).toBe('vfio-pci\n');
    expect(existsSync(join(sys, 'devices/pci0000:00/0000:00:1f.0/driver'))).toBe(false);
  });
});
