/**
 * `vfio-ts read` gives the same value through a mapping and with --slow for
 * narrower reads of a model's 32-bit registers (the reported case: nvme CAP
 * byte 1 read 0x07 mapped and 0xff slow). plugin-host's property test holds
 * every register of every model; this is the same fact end to end.
 */
import { describe, expect, it } from 'vitest';
import { cli } from './run-cli.js';

const CASES: [string, string, string, string, number][] = [
  ['sim:nvme', '0', '1', '1', 0x07], // CAP byte 1
  ['sim:nvme', '0', '2', '2', 0x0f01], // CAP bytes 2-3
  ['sim:nvme', '0', '0xa', '1', 0x01], // VS: NVMe 1.4
  ['sim:e1000e', '0', '9', '1', 0x07], // STATUS byte 1
  ['sim:e1000e', '0', '2', '2', 0x0014], // CTRL upper half
  ['sim:virtio-net', '4', '6', '2', 0x0001], // device_feature bits 16-31: VIRTIO_NET_F_STATUS
];

function read(device: string, bar: string, offset: string, size: string, slow: boolean) {
  const r = cli(['--json', 'read', device, bar, offset, '--size', size, ...(slow ? ['--slow'] : [])]);
  expect(r.stderr).toBe('');
  return JSON.parse(r.stdout) as { value: number; path: string };
}

describe('read: the fast and the slow path agree on narrower register reads', () => {
  it.each(CASES)('%s BAR %s +%s size %s', (device, bar, offset, size, value) => {
    expect(read(device, bar, offset, size, false)).toMatchObject({ value, path: 'fast' });
    expect(read(device, bar, offset, size, true)).toMatchObject({ value, path: 'slow' });
  });
});
