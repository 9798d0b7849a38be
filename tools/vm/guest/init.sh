#!/bin/busybox sh
# The VM tier's guest init (PID 1 of the initramfs). It loads the vfio
# modules, binds the test devices to vfio-pci through driver_override, then
# loads the virtio/9p stack, mounts the host's root read-only over virtio-9p
# under a tmpfs overlay, chroots, runs /vmio/command.sh with its output on the
# second serial port, writes the exit code to /vmio/exit-code, and powers off.
# Kernel command line: vfio_ts.bind=<bdf>,<bdf>,...
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev

say() { echo "vm-init: $*" >/dev/ttyS0; }
fail() {
  say "FAILED: $*"
  poweroff -f
}

load() {
  for m in $(cat "/modules/$1"); do
    insmod "/modules/$m.ko" || fail "insmod $m"
  done
}

load early
binds=$(sed -n 's/.*vfio_ts\.bind=\([^ ]*\).*/\1/p' /proc/cmdline | tr ',' ' ')
for bdf in $binds; do
  [ -d "/sys/bus/pci/devices/$bdf" ] || fail "no PCI device $bdf"
  echo vfio-pci >"/sys/bus/pci/devices/$bdf/driver_override" || fail "driver_override $bdf"
  # A built-in driver (virtio_pci on 6.12) has claimed it at boot: let it go first.
  if [ -e "/sys/bus/pci/devices/$bdf/driver" ]; then
    echo "$bdf" >"/sys/bus/pci/devices/$bdf/driver/unbind" || fail "unbind $bdf"
  fi
  echo "$bdf" >/sys/bus/pci/drivers_probe
  [ "$(basename "$(readlink "/sys/bus/pci/devices/$bdf/driver")")" = vfio-pci ] || fail "$bdf did not bind to vfio-pci"
done
load late

opts=trans=virtio,version=9p2000.L,msize=262144
mount -t 9p -o "$opts,cache=loose,ro" hostroot /lower || fail "mount hostroot (9p)"
mount -t tmpfs -o mode=755 tmpfs /upper || fail "mount tmpfs"
mkdir -p /upper/data /upper/work
mount -t overlay -o lowerdir=/lower,upperdir=/upper/data,workdir=/upper/work overlay /newroot || fail "mount overlay"
# /tmp stays the host's (under the overlay): a checkout there must be visible.
for d in proc sys dev run vmio; do mkdir -p "/newroot/$d"; done
mount -t proc proc /newroot/proc
mount -t sysfs sysfs /newroot/sys
mount -t devtmpfs devtmpfs /newroot/dev
mkdir -p /newroot/dev/pts /newroot/dev/shm
mount -t devpts devpts /newroot/dev/pts
mount -t tmpfs tmpfs /newroot/dev/shm
mount -t tmpfs tmpfs /newroot/run
mount -t 9p -o "$opts" vmio /newroot/vmio || fail "mount vmio (9p)"

stty -F /dev/ttyS1 raw -echo 2>/dev/null
say "uptime $(cut -d' ' -f1 /proc/uptime) s: running the command"
# Through a pipe, so that the command sees no terminal (test runners would animate).
set -o pipefail
chroot /newroot /bin/sh /vmio/command.sh </dev/null 2>&1 | cat >/dev/ttyS1
code=$?
echo "$code" >/newroot/vmio/exit-code
say "uptime $(cut -d' ' -f1 /proc/uptime) s: command exited with $code"
sync
umount /newroot/vmio 2>/dev/null
poweroff -f
