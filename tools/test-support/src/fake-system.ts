/**
 * A fake machine for vfio-sys's sysfs layer: a directory with `sys/`, `proc/` and
 * `run/` laid out as on a real host (devices under sys/devices/pci0000:00,
 * linked from bus/pci/devices, kernel/iommu_groups, class/block and
 * class/net; mounts in proc/self/mountinfo, swaps in proc/swaps). `kernel()`
 * is a model of the driver core's attribute writes, since a tree of plain
 * files does not react to them; `hash()` fingerprints the whole tree so a
 * test can show a refusal changed nothing.
 */
import { createHash } from 'node:crypto';
import {
  appendFileSync,
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join, relative } from 'node:path';

export interface FakeDeviceSpec {
  /** IOMMU group, or null for a device without one. */
  readonly group: number | null;
  readonly driver: string | null;
  /** "vendor device class" in sysfs's hex form. */
  readonly ids?: string;
}

export class FakeSystem {
  readonly root = mkdtempSync(join(tmpdir(), 'fake-system-'));
  readonly sysfsRoot = join(this.root, 'sys');
  /** Which driver drivers_probe picks for a device without driver_override (the kernel's match tables). */
  readonly defaultDrivers = new Map<string, string>();
  /** Devices a driver's probe rejects, beyond the model's own rules. */
  readonly probeRefuses = new Set<string>();
  /** Every attribute write `kernel()` received: [path under sys/, value]. */
  readonly writes: [string, string][] = [];

  constructor() {
    for (const dir of [
      'bus/pci/devices',
      'bus/pci/drivers',
      'kernel/iommu_groups',
      'class/block',
      'class/net',
    ])
      mkdirSync(join(this.sysfsRoot, dir), { recursive: true });
    writeFileSync(join(this.sysfsRoot, 'bus/pci/drivers_probe'), '');
    mkdirSync(join(this.root, 'proc/self'), { recursive: true });
    writeFileSync(
      join(this.root, 'proc/self/mountinfo'),
      '22 28 0:21 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw\n' +
        '23 28 0:22 / /proc rw,nosuid,nodev,noexec,relatime shared:12 - proc proc rw\n',
    );
    writeFileSync(join(this.root, 'proc/swaps'), 'Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n');
    this.addDriver('vfio-pci');
  }

  private sys(...parts: string[]): string {
    return join(this.sysfsRoot, ...parts);
  }

  devicePath(bdf: string): string {
    return this.sys('devices/pci0000:00', bdf);
  }

  addDriver(name: string): void {
    const dir = this.sys('bus/pci/drivers', name);
    mkdirSync(dir, { recursive: true });
    for (const f of ['bind', 'unbind']) if (!existsSync(join(dir, f))) writeFileSync(join(dir, f), '');
  }

  addDevice(bdf: string, spec: FakeDeviceSpec): this {
    const [vendor, device, cls] = (spec.ids ?? '0x8086 0x1234 0x000000').split(' ');
    const d = this.devicePath(bdf);
    mkdirSync(d, { recursive: true });
    writeFileSync(join(d, 'vendor'), `${vendor}\n`);
    writeFileSync(join(d, 'device'), `${device}\n`);
    writeFileSync(join(d, 'class'), `${cls}\n`);
    writeFileSync(join(d, 'driver_override'), '(null)\n');
    symlinkSync(`../../../devices/pci0000:00/${bdf}`, this.sys('bus/pci/devices', bdf));
    if (spec.group !== null) {
      const g = this.sys('kernel/iommu_groups', String(spec.group), 'devices');
      mkdirSync(g, { recursive: true });
      symlinkSync(`../../../../devices/pci0000:00/${bdf}`, join(g, bdf));
      symlinkSync(`../../../kernel/iommu_groups/${spec.group}`, join(d, 'iommu_group'));
    }
    if (spec.driver) {
      this.addDriver(spec.driver);
      this.link(bdf, spec.driver);
      this.defaultDrivers.set(bdf, spec.driver);
    }
    return this;
  }

  /** A disk below the device at `sub` (e.g. `ata1/host0/target0:0:0/0:0:0:0`), with partitions. */
  addDisk(bdf: string, sub: string, disk: string, dev: string, partitions: [string, string][] = []): this {
    const dir = join(this.devicePath(bdf), sub, 'block', disk);
    this.addBlock(dir, disk, dev);
    for (const [name, pdev] of partitions) this.addBlock(join(dir, name), name, pdev);
    return this;
  }

  /**
   * An NVMe namespace with native multipath: the disk lives under the virtual
   * nvme-subsystem, and only its path (`nvme0c0n1`, under the controller) is
   * below the PCI device, linked from the disk's `multipath/`.
   */
  addMultipathNamespace(
    bdf: string,
    ctrl: string,
    disk: string,
    dev: string,
    partitions: [string, string][] = [],
  ): this {
    const subsys = this.sys('devices/virtual/nvme-subsystem/nvme-subsys0');
    const dir = join(subsys, disk);
    this.addBlock(dir, disk, dev);
    for (const [name, pdev] of partitions) this.addBlock(join(dir, name), name, pdev);
    const path = join(this.devicePath(bdf), 'nvme', ctrl, disk.replace(/n(\d+)$/, `c0n$1`));
    mkdirSync(path, { recursive: true });
    mkdirSync(join(dir, 'multipath'), { recursive: true });
    symlinkSync(relative(join(dir, 'multipath'), path), join(dir, 'multipath', basename(path)));
    return this;
  }

  /** A device-mapper device (`dm-0`, named `name` under /dev/mapper) on top of `lower`. */
  addMapper(dm: string, name: string, dev: string, lower: string): this {
    const dir = this.sys('devices/virtual/block', dm);
    this.addBlock(dir, dm, dev);
    mkdirSync(join(dir, 'dm'), { recursive: true });
    writeFileSync(join(dir, 'dm/name'), `${name}\n`);
    const lowerDir = join(this.sys('class/block'), lower);
    const lowerReal = join(this.sys('class/block'), readlinkSync(lowerDir));
    mkdirSync(join(lowerReal, 'holders'), { recursive: true });
    symlinkSync(relative(join(lowerReal, 'holders'), dir), join(lowerReal, 'holders', dm));
    return this;
  }

  private addBlock(dir: string, name: string, dev: string): void {
    mkdirSync(join(dir, 'holders'), { recursive: true });
    writeFileSync(join(dir, 'dev'), `${dev}\n`);
    symlinkSync(relative(this.sys('class/block'), dir), this.sys('class/block', name));
  }

  /** A network interface below the device (at `sub`, e.g. `virtio0` for virtio-net). */
  addInterface(bdf: string, ifname: string, up: boolean, sub = ''): this {
    const dir = join(this.devicePath(bdf), sub, 'net', ifname);
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'flags'), up ? '0x1003\n' : '0x1002\n');
    writeFileSync(join(dir, 'operstate'), up ? 'up\n' : 'down\n');
    symlinkSync(relative(this.sys('class/net'), dir), this.sys('class/net', ifname));
    return this;
  }

  /** A GPU's DRM nodes (`card0`, `renderD128`) under the device, and whether it is the boot display. */
  addDrm(bdf: string, nodes: readonly string[], bootVga = false): this {
    for (const n of nodes) mkdirSync(join(this.devicePath(bdf), 'drm', n), { recursive: true });
    writeFileSync(join(this.devicePath(bdf), 'boot_vga'), bootVga ? '1\n' : '0\n');
    return this;
  }

  /** A mounted btrfs filesystem's member devices, as sysfs lists them (fs/btrfs/<uuid>/devices/). */
  addBtrfs(uuid: string, members: readonly string[]): this {
    const dir = this.sys('fs/btrfs', uuid, 'devices');
    mkdirSync(dir, { recursive: true });
    for (const m of members)
      symlinkSync(
        relative(dir, join(this.sys('class/block'), readlinkSync(this.sys('class/block', m)))),
        join(dir, m),
      );
    return this;
  }

  mount(dev: string, source: string, mountPoint: string, fsType: string): this {
    appendFileSync(
      join(this.root, 'proc/self/mountinfo'),
      `40 28 ${dev} / ${mountPoint.replace(/ /g, '\\040')} rw,relatime shared:1 - ${fsType} ${source} rw\n`,
    );
    return this;
  }

  swapOn(path: string): this {
    appendFileSync(join(this.root, 'proc/swaps'), `${path}\tpartition\t8388604\t0\t-2\n`);
    return this;
  }

  /** A process holding `node` (e.g. /dev/vfio/10) open. */
  addProcess(pid: number, comm: string, node: string): this {
    const fd = join(this.root, 'proc', String(pid), 'fd');
    mkdirSync(fd, { recursive: true });
    writeFileSync(join(this.root, 'proc', String(pid), 'comm'), `${comm}\n`);
    symlinkSync(node, join(fd, '7'));
    return this;
  }

  driverOf(bdf: string): string | null {
    const link = join(this.devicePath(bdf), 'driver');
    return existsSync(link) || isLink(link) ? basename(readlinkSync(link)) : null;
  }

  overrideOf(bdf: string): string {
    return readFileSync(join(this.devicePath(bdf), 'driver_override'), 'utf8').trim();
  }

  private link(bdf: string, driver: string): void {
    symlinkSync(`../../../bus/pci/drivers/${driver}`, join(this.devicePath(bdf), 'driver'));
  }

  private accepts(driver: string, bdf: string): boolean {
    if (this.probeRefuses.has(`${driver} ${bdf}`)) return false;
    // vfio-pci's probe fails without an IOMMU group (vfio_iommu_group_get).
    return driver !== 'vfio-pci' || isLink(join(this.devicePath(bdf), 'iommu_group'));
  }

  /** The driver core's answer to each attribute write, as far as binding needs it. */
  kernel(): (path: string, value: string) => void {
    return (path, value) => {
      const rel = relative(this.sysfsRoot, path);
      this.writes.push([rel, value]);
      const deviceAttr = /^bus\/pci\/devices\/([^/]+)\/(driver_override|driver\/unbind)$/.exec(rel);
      const driverAttr = /^bus\/pci\/drivers\/([^/]+)\/(bind|unbind)$/.exec(rel);
      if (!existsSync(path)) throw Object.assign(new Error(`ENOENT: ${path}`), { code: 'ENOENT' });
      if (deviceAttr?.[2] === 'driver_override') {
        writeFileSync(path, value.trim() === '' ? '(null)\n' : `${value}\n`);
      } else if (deviceAttr || driverAttr?.[2] === 'unbind') {
        rmSync(join(this.devicePath(value), 'driver'));
      } else if (driverAttr?.[2] === 'bind') {
        this.probe(value, driverAttr[1]!, true);
      } else if (rel === 'bus/pci/drivers_probe') {
        const override = this.overrideOf(value);
        const target = override === '(null)' ? this.defaultDrivers.get(value) : override;
        if (target) this.probe(value, target, false);
      } else {
        throw new Error(`fake kernel: no model for writing ${rel}`);
      }
    };
  }

  private probe(bdf: string, driver: string, explicit: boolean): void {
    if (this.driverOf(bdf) !== null) return;
    const override = this.overrideOf(bdf);
    const allowed = override === '(null)' || override === driver;
    if (allowed && existsSync(this.sys('bus/pci/drivers', driver)) && this.accepts(driver, bdf)) {
      this.link(bdf, driver);
      return;
    }
    // An explicit bind that fails is an error to the writer; a probe that finds nothing is not.
    if (explicit) throw Object.assign(new Error(`ENODEV: ${driver} did not bind ${bdf}`), { code: 'ENODEV' });
  }

  /** sha256 over every path, link target and file content under the root. */
  hash(): string {
    const h = createHash('sha256');
    const walk = (dir: string) => {
      for (const name of readdirSync(dir).sort()) {
        const p = join(dir, name);
        const st = lstatSync(p);
        h.update(`${relative(this.root, p)}\0${st.mode}\0`);
        if (st.isSymbolicLink()) h.update(readlinkSync(p));
        else if (st.isDirectory()) walk(p);
        else h.update(readFileSync(p));
      }
    };
    walk(this.root);
    return h.digest('hex');
  }
}

function isLink(path: string): boolean {
  try {
    return lstatSync(path).isSymbolicLink();
  } catch {
    return false;
  }
}
