/**
 * A real driver on a vfio-ts model: Debian trixie's 6.12 kernel boots under
 * QEMU 11.1 with sim:pci-idio-16 served over vfio-user, loads its
 * gpio-pci-idio-16 driver, which binds to the device and registers 32 GPIO
 * lines; output writes reach the model (the wiring brings them back on the
 * inputs), and an interrupt the model raises is counted by the guest, after
 * which QEMU's INTx unmask reaches the server. guest/pci-idio-16.sh is the
 * guest's side.
 */
import { readFileSync } from 'node:fs';
import { expectNoLeaksInFile } from '@vfio-ts/test-support';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type QemuRunResult, runQemu } from '../src/index.js';
import { explained } from './explained.js';

expectNoLeaksInFile();

const SCRIPT = readFileSync(new URL('./guest/pci-idio-16.sh', import.meta.url), 'utf8');

/** The values of `key: ...` lines the guest script printed. */
function values(output: string, key: string): string[] {
  const prefix = `${key}: `;
  return output
    .split('\n')
    .filter((l) => l.startsWith(prefix))
    .map((l) => l.slice(prefix.length).trim());
}

function interruptCount(line: string | undefined): number {
  const m = line?.match(/^\s*\d+:\s+(\d+)\s/);
  if (!m) throw new Error(`not a /proc/interrupts line: ${line}`);
  return Number(m[1]);
}

describe('Linux gpio-pci-idio-16 on sim:pci-idio-16 over vfio-user (QEMU 11.1, 6.12 guest)', () => {
  let r: QemuRunResult & { cleanup(): void };
  let out: string;
  beforeAll(async () => {
    r = await explained(
      runQemu({
        device: 'sim:pci-idio-16',
        firmware: 'seabios',
        guestScript: SCRIPT,
        timeoutSeconds: 180,
      }),
    );
    out = r.guestOutput;
    console.log(
      `pci-idio-16 guest: ${r.wallSeconds.toFixed(1)} s wall, script at ${r.guestSeconds.start} s of guest uptime, done at ${r.guestSeconds.end} s\n${out}`,
    );
  }, 200_000);
  afterAll(() => r?.cleanup());

  it('the guest ran the script to the end and QEMU said nothing on stderr', () => {
    expect(r.guestExitCode).toBe(0);
    expect(r.qemuStderr).toBe('');
    expect(r.consoleLog).not.toMatch(/BUG:|Oops|Call Trace/);
  });

  it('the driver binds to 494f:0dc8 and registers one gpiochip of 32 named lines', () => {
    expect(values(out, 'driver')).toEqual(['pci-idio-16']);
    expect(values(out, 'ids')).toEqual(['0x494f 0x0dc8']);
    expect(values(out, 'chip')).toEqual(['gpiochip0 [0000:00:04.0] (32 lines)']);
    const names = [
      ...Array.from({ length: 16 }, (_, i) => `OUT${i}`),
      ...Array.from({ length: 16 }, (_, i) => `IIN${i}`),
    ];
    expect(values(out, 'line')).toEqual(names.map((n, i) => `${i} ${n}`));
  });

  it('inputs read what the model drives: all 1 after reset, 0 where the output was turned on', () => {
    expect(values(out, 'inputs-reset')).toEqual(['1111111111111111']);
    // OUT0, OUT5, OUT8, OUT15 on: IIN0, IIN5, IIN8, IIN15 pulled low (gpioget prints line 16 first).
    expect(values(out, 'inputs-set')).toEqual(['0111101101111110']);
    expect(values(out, 'outputs-set')).toEqual(['1000010010000001']);
  });

  it('the output writes went through QEMU to the server as I/O writes of BAR2 (0x21 at +0x0, 0x81 at +0x4)', () => {
    expect(r.trace).toMatch(/^vfio_region_write\s+\(vfio-user:[^:]+:region2\+0x0, 0x21, 1\)$/m);
    expect(r.trace).toMatch(/^vfio_region_write\s+\(vfio-user:[^:]+:region2\+0x4, 0x81, 1\)$/m);
    expect(r.serverOutput).toMatch(/vfio_server_request id 0x[0-9a-f]+ REGION_WRITE /);
  });

  it('an interrupt raised by the model is counted in /proc/interrupts, the driver acknowledges it, and QEMU unmasks INTx at the server', () => {
    const before = interruptCount(values(out, 'interrupts-before')[0]);
    const after = interruptCount(values(out, 'interrupts-after')[0]);
    expect(values(out, 'interrupts-after')[0]).toMatch(/IO-APIC\s+\d+-fasteoi\s+0000:00:04\.0$/);
    expect(after - before).toBeGreaterThanOrEqual(1);
    expect(values(out, 'status-after')).toEqual(['00']); // the driver's handler cleared it (write to 0x1)
    expect(r.trace).toMatch(/^vfio_region_write\s+\(vfio-user:[^:]+:region2\+0x1, 0x[0-9a-f]+, 1\)$/m);
    // QEMU saw the eventfd fire, the guest's EOI, and sent SET_IRQS DATA_NONE|ACTION_UNMASK for INTx.
    const interrupt = r.trace.search(/^vfio_intx_interrupt /m);
    expect(interrupt).toBeGreaterThan(0);
    const unmask = r.trace
      .slice(interrupt)
      .search(/^vfio_user_set_irqs\s+index 0 start 0 count 1 flags 0x11$/m);
    expect(unmask).toBeGreaterThan(0);
    expect(r.serverOutput).toMatch(/DEVICE_SET_IRQS size 0x[0-9a-f]+ flags 0x0 fds 0/);
  });
});
