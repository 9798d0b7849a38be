/**
 * `vfio-ts config`: config space as lspci -vv -xxx shows it, as the driver of
 * the realized device sees it, with what vfio-ts virtualizes marked; checked
 * against what `inspect` reports for the same device.
 */
import { describe, expect, it } from 'vitest';
import { cli } from './run-cli.js';

const le32 = (hexBytes: string, offset: number) => Buffer.from(hexBytes, 'hex').readUInt32LE(offset);

describe('config', () => {
  it('sim:nvme: header, capabilities (MSI-X decoded and marked), virtualized bytes, lspci -xxx dump', async () => {
    const r = cli(['config', 'sim:nvme']);
    expect([r.code, r.stderr]).toEqual([0, '']);
    expect(r.stdout).toContain(
      [
        '\tCapabilities: [40] MSI-X: Enable- Count=65 Masked-  (virtualized by vfio-ts)',
        '\t\tVector table: BAR=0 offset=00002000',
        '\t\tPBA: BAR=0 offset=00003000',
        '\tCapabilities: [80] Express (v2) Root Complex Integrated Endpoint',
        '\tCapabilities: [60] Power Management',
      ].join('\n'),
    );
    expect(r.stdout).toContain('\t[10-27] Base Address Registers\n\t[30-33] Expansion ROM Base Address\n');
    const dump = r.stdout.split('\n').filter((l) => /^[0-9a-f]{2,3}: /.test(l));
    expect(dump).toHaveLength(16); // 256 bytes, as lspci -xxx
    expect(dump[0]).toMatch(/^00: 36 1b 10 00 /);
    expect(
      cli(['config', '-x', 'sim:nvme'])
        .stdout.split('\n')
        .filter((l) => /^[0-9a-f]{2,3}: /.test(l)),
    ).toHaveLength(256);
    await expect(r.stdout).toMatchFileSnapshot('__snapshots__/config-nvme.txt');
  });

  it('sim:e1000e --json: extended capabilities, MSI flags virtualized, BARs as inspect placed them', () => {
    const doc = JSON.parse(cli(['config', 'sim:e1000e', '--json']).stdout);
    const inspect = JSON.parse(cli(['inspect', 'sim:e1000e', '--json']).stdout);
    expect(doc.size).toBe(4096);
    expect(doc.bytes).toHaveLength(2 * 4096);
    expect(doc.emulatedBits).toHaveLength(2 * 4096);
    expect(doc.extendedCapabilities).toEqual([
      { offset: 0x100, id: 1, version: 2, name: 'Advanced Error Reporting', virtualized: false },
      { offset: 0x140, id: 3, version: 1, name: 'Device Serial Number', virtualized: false },
    ]);
    expect(
      doc.capabilities.map((c: { offset: number; name: string; virtualized: boolean }) => [
        c.offset,
        c.name,
        c.virtualized,
      ]),
    ).toEqual([
      [0xc8, 'Power Management', false],
      [0xd0, 'MSI', true],
      [0xe0, 'Express', false],
      [0xa0, 'MSI-X', true],
    ]);
    expect(doc.virtualized).toContainEqual({
      offset: 0xd2,
      length: 2,
      mask: 'ffff',
      field: 'MSI capability @0xd0',
    });
    // The emulated BARs hold the addresses inspect reports (memory BARs: low type bits clear).
    for (const bar of inspect.bars) {
      const value = le32(doc.bytes, 0x10 + 4 * bar.index);
      expect((bar.type === 'io' ? value & ~3 : value & ~0xf) >>> 0).toBe(bar.address);
    }
    const msix = doc.capabilities.find((c: { name: string }) => c.name === 'MSI-X');
    expect(msix.summary).toBe(`MSI-X: Enable- Count=${inspect.msix.entries} Masked-`);
  });

  it("on a colour terminal the virtualized bytes of the dump are underlined; plain text stays lspci's", () => {
    const u = (cell: string) => `\x1b[4m${cell}\x1b[24m`;
    const lines = cli(['config', 'sim:nvme'], { FORCE_COLOR: '1' }).stdout.split('\n');
    // 0x30-0x33 (the ROM BAR) are emulated, 0x34 (the capability pointer) is the device's.
    expect(lines).toContain(
      `30: ${[u('00'), u('00'), u('00'), u('00')].join(' ')} 40 00 00 00 00 00 00 00 0b 01 00 00`,
    );
    expect(cli(['config', 'sim:nvme']).stdout).toContain(
      '\n30: 00 00 00 00 40 00 00 00 00 00 00 00 0b 01 00 00\n',
    );
  });

  it('an unknown device: the usual one-line error', () => {
    const r = cli(['config', 'sim:nope']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^vfio-ts: there is no built-in model "nope"/);
  });
});
