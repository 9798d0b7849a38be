/**
 * Moving devices between their host driver and vfio-pci through sysfs:
 * driver_override, the driver's unbind, then drivers_probe (the kernel's own
 * sequence, as driverctl and libvirt use it). Binding refuses what
 * `bindSafetyCheck` finds unless forced, checks afterwards that vfio-pci
 * really took the device, and otherwise puts the previous driver back.
 * Unbinding gives the device back to the driver recorded when it was bound.
 */
import { closeSync, constants, existsSync, openSync, writeSync } from 'node:fs';
import { VfioError } from '../errors.js';
import { normalizeBdf, type PciDeviceInfo, pciDeviceInfo } from './devices.js';
import { linkName, pciDevicePath, type SysfsOptions, sysfsPath } from './paths.js';
import { type BindHazard, type BindSafetyOptions, bindSafetyCheck, bindTargets } from './safety.js';
import {
  forgetOriginalDriver,
  type OriginalDriver,
  originalDriver,
  rememberOriginalDrivers,
} from './state.js';
import { vfioUsers } from './users.js';

export interface BindChange {
  readonly bdf: string;
  readonly from: string | null;
  readonly to: string | null;
}

/** Writes one sysfs attribute. */
export type AttributeWriter = (path: string, value: string) => void;

export interface BindOptions extends BindSafetyOptions {
  /** Bind even though `bindSafetyCheck` found reasons not to. Nothing else is skipped. */
  readonly force?: boolean;
  /**
   * How attributes are written (default: open the existing file write-only
   * and write the value once, as `echo` does). Tests pass a model of the
   * kernel's driver core here, since a fake tree does not react to writes.
   */
  readonly writeAttribute?: AttributeWriter;
}

export interface UnbindOptions extends SysfsOptions {
  /** Unbind even while a process holds the device open through /dev/vfio (the kernel then waits for it). */
  readonly force?: boolean;
  readonly writeAttribute?: AttributeWriter;
}

/** `bindToVfioPci` found reasons not to bind; `hazards` lists each with what to do. */
export class BindRefusedError extends VfioError {
  /** The device the bind was asked for. */
  readonly bdf: string;
  readonly hazards: readonly BindHazard[];

  constructor(bdf: string, hazards: readonly BindHazard[]) {
    super(
      'ERR_VFIO_BIND_UNSAFE',
      `refusing to bind ${bdf} to vfio-pci: ${hazards.map((h) => h.message).join('; ')}`,
      {
        hint: `${hazards.map((h) => h.hint).join('; ')}; or pass force to bind anyway`,
      },
    );
    this.bdf = bdf;
    this.hazards = hazards;
  }
}

/** The real write, as `echo v > attr`: O_WRONLY|O_TRUNC but no O_CREAT (an attribute that is not there is an error), one write(2). */
export function writeSysfsAttribute(path: string, value: string): void {
  let fd: number;
  try {
    fd = openSync(path, constants.O_WRONLY | constants.O_TRUNC);
  } catch (err) {
    throw sysfsWriteError(path, value, err);
  }
  try {
    writeSync(fd, value);
  } catch (err) {
    throw sysfsWriteError(path, value, err);
  } finally {
    closeSync(fd);
  }
}

function sysfsWriteError(path: string, value: string, err: unknown): VfioError {
  const code = (err as NodeJS.ErrnoException).code ?? 'EIO';
  const denied = code === 'EACCES' || code === 'EPERM';
  return new VfioError(
    denied ? 'ERR_VFIO_PERMISSION' : 'ERR_VFIO_SYSFS',
    `cannot write "${value.trim()}" to ${path} (${code})`,
    denied ? { hint: 'binding drivers needs root', cause: err } : { cause: err },
  );
}

class DriverCore {
  constructor(
    private readonly options: SysfsOptions,
    private readonly write: AttributeWriter,
  ) {}

  driverOf(bdf: string): string | null {
    return linkName(pciDevicePath(this.options, bdf, 'driver'));
  }

  hasDriver(driver: string): boolean {
    return existsSync(sysfsPath(this.options, 'bus/pci/drivers', driver));
  }

  setOverride(bdf: string, driver: string | null): void {
    // An empty write (a lone newline) clears driver_override.
    this.write(pciDevicePath(this.options, bdf, 'driver_override'), driver ?? '\n');
  }

  unbind(bdf: string): void {
    if (this.driverOf(bdf) !== null) this.write(pciDevicePath(this.options, bdf, 'driver/unbind'), bdf);
  }

  bindTo(bdf: string, driver: string): void {
    this.write(sysfsPath(this.options, 'bus/pci/drivers', driver, 'bind'), bdf);
  }

  probe(bdf: string): void {
    this.write(sysfsPath(this.options, 'bus/pci/drivers_probe'), bdf);
  }

  /**
   * Puts `bdf` back on `original` (its driver and driver_override), every
   * step tried even if one fails; returns the driver it ends on.
   */
  restore(bdf: string, original: OriginalDriver): string | null {
    const attempt = (fn: () => void) => {
      try {
        fn();
      } catch {
        // The next step may still succeed; the result is judged by the driver link below.
      }
    };
    attempt(() => this.setOverride(bdf, original.override));
    if (this.driverOf(bdf) !== original.driver) {
      attempt(() => this.unbind(bdf));
      if (original.driver !== null) attempt(() => this.bindTo(bdf, original.driver!));
    }
    return this.driverOf(bdf);
  }
}

function bindOne(core: DriverCore, d: PciDeviceInfo): BindChange {
  const original = { driver: d.driver, override: d.driverOverride };
  let failure: unknown = null;
  try {
    core.setOverride(d.bdf, 'vfio-pci');
    core.unbind(d.bdf);
    core.probe(d.bdf);
  } catch (err) {
    failure = err;
  }
  const now = core.driverOf(d.bdf);
  if (failure === null && now === 'vfio-pci') return { bdf: d.bdf, from: d.driver, to: 'vfio-pci' };
  const back = core.restore(d.bdf, original);
  // The one refusal sysfs can explain: vfio-pci's probe needs an IOMMU group.
  const why =
    failure instanceof Error
      ? failure.message
      : d.iommuGroup === null
        ? `it has no IOMMU group, which vfio-pci's probe needs`
        : `it has ${now ?? 'no driver'} after the probe`;
  const restored = back === original.driver;
  throw new VfioError(
    'ERR_VFIO_BIND_FAILED',
    `vfio-pci did not take ${d.bdf} (${why}); ${
      restored
        ? `put it back on ${original.driver ?? 'no driver'}`
        : `putting it back on ${original.driver} failed too, it now has ${back ?? 'no driver'}`
    }`,
    {
      hint: restored
        ? 'the kernel log says why vfio-pci refused it (dmesg | tail); is the vfio-pci module the one loaded?'
        : `give it back by hand: echo ${d.bdf} > /sys/bus/pci/drivers/${original.driver}/bind`,
      cause: failure ?? undefined,
    },
  );
}

/**
 * Binds `bdf` (with `group`, every member of its IOMMU group not already
 * usable) to vfio-pci. Refuses with a `BindRefusedError` when
 * `bindSafetyCheck` finds a reason, unless `force`. Records the original
 * drivers for `unbindFromVfioPci`. After each device, checks that vfio-pci
 * holds it; if not, puts it (and any group member already moved) back and
 * throws `ERR_VFIO_BIND_FAILED`. Returns one change per device, `bdf` first.
 */
export function bindToVfioPci(bdf: string, options: BindOptions = {}): BindChange[] {
  const address = normalizeBdf(bdf);
  const targets = bindTargets(address, options).sort(
    (a, b) => Number(b.bdf === address) - Number(a.bdf === address),
  );
  const todo = targets.filter((d) => d.driver !== 'vfio-pci');
  if (todo.length === 0) return targets.map((d) => ({ bdf: d.bdf, from: d.driver, to: d.driver }));
  const hazards = bindSafetyCheck(address, options);
  if (hazards.length > 0 && !options.force) throw new BindRefusedError(address, hazards);
  const core = new DriverCore(options, options.writeAttribute ?? writeSysfsAttribute);
  if (!core.hasDriver('vfio-pci'))
    throw new VfioError(
      'ERR_VFIO_DRIVER_NOT_LOADED',
      `the vfio-pci driver is not loaded (no ${sysfsPath(options, 'bus/pci/drivers/vfio-pci')})`,
      {
        hint: 'load it first: modprobe vfio-pci',
      },
    );
  rememberOriginalDrivers(options, todo);
  const changes: BindChange[] = [];
  for (const d of targets) {
    if (d.driver === 'vfio-pci') {
      changes.push({ bdf: d.bdf, from: d.driver, to: d.driver });
      continue;
    }
    try {
      changes.push(bindOne(core, d));
    } catch (err) {
      // A group is bound whole or not at all: give back the members already moved, last first.
      for (const done of [...changes].reverse())
        if (done.from !== 'vfio-pci') core.restore(done.bdf, originalOf(todo, done.bdf));
      for (const t of todo) forgetOriginalDriver(options, t.bdf);
      throw err;
    }
  }
  return changes;
}

function originalOf(devices: readonly PciDeviceInfo[], bdf: string): OriginalDriver {
  const d = devices.find((x) => x.bdf === bdf)!;
  return { driver: d.driver, override: d.driverOverride };
}

/**
 * Gives `bdf` back from vfio-pci to the driver it had when `bindToVfioPci`
 * took it (driver_override restored, the driver's bind), or, when vfio-ts did
 * not bind it, lets the kernel choose (drivers_probe). Refuses while a
 * process holds the device open through /dev/vfio, unless `force`. A device
 * not on vfio-pci is left as it is.
 */
export function unbindFromVfioPci(bdf: string, options: UnbindOptions = {}): BindChange {
  const info = pciDeviceInfo(bdf, options);
  if (info.driver !== 'vfio-pci' && info.driverOverride !== 'vfio-pci')
    return { bdf: info.bdf, from: info.driver, to: info.driver };
  const users = info.driver === 'vfio-pci' ? vfioUsers(info, options) : [];
  if (users.length > 0 && !options.force)
    throw new VfioError(
      'ERR_VFIO_DEVICE_OPEN',
      `${info.bdf} is open through VFIO by ${users.map((u) => `pid ${u.pid} (${u.command}, ${u.node})`).join(', ')}`,
      {
        hint: 'stop that process first; with force the unbind waits in the kernel until it lets the device go',
      },
    );
  const core = new DriverCore(options, options.writeAttribute ?? writeSysfsAttribute);
  const recorded = originalDriver(options, info.bdf);
  core.setOverride(info.bdf, recorded?.override ?? null);
  if (info.driver !== 'vfio-pci' && info.driver !== null) {
    // A half-done bind (driver_override says vfio-pci, the host driver still has it): only the override goes.
    forgetOriginalDriver(options, info.bdf);
    return { bdf: info.bdf, from: info.driver, to: info.driver };
  }
  core.unbind(info.bdf);
  if (recorded === undefined) core.probe(info.bdf);
  else if (recorded.driver !== null) core.bindTo(info.bdf, recorded.driver);
  const now = core.driverOf(info.bdf);
  forgetOriginalDriver(options, info.bdf);
  if (recorded !== undefined && now !== recorded.driver)
    throw new VfioError(
      'ERR_VFIO_UNBIND_INCOMPLETE',
      `${info.bdf} left vfio-pci but did not go back to ${recorded.driver ?? 'no driver'}: it has ${now ?? 'no driver'}`,
      { hint: `bind it by hand: echo ${info.bdf} > /sys/bus/pci/drivers/${recorded.driver}/bind` },
    );
  return { bdf: info.bdf, from: info.driver, to: now };
}
