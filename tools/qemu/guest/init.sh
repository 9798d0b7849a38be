#!/bin/busybox sh
# The QEMU tier's guest init (PID 1 of the initramfs). It loads the modules
# (modules/order lists them dependencies first), runs /run.sh (appended by the
# run as a second cpio archive) with its output on the second serial port,
# reports the exit code on the console and powers off. Kernel messages and
# this script's own lines go to the console (first serial port).
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mount -t tmpfs tmpfs /tmp

say() { echo "qemu-init: $*" >/dev/ttyS0; }
finish() {
  say "exit $1"
  sync
  poweroff -f
}

say "uptime $(cut -d' ' -f1 /proc/uptime) s: loading modules"
for m in $(cat /modules/order); do
  insmod "/modules/$m.ko" || { say "insmod $m failed"; finish 126; }
done
[ -f /run.sh ] || { say "no /run.sh in the initramfs"; finish 127; }
stty -F /dev/ttyS1 raw -echo 2>/dev/null
say "uptime $(cut -d' ' -f1 /proc/uptime) s: running the script"
# Through a pipe, so that the script sees no terminal.
set -o pipefail
sh /run.sh </dev/null 2>&1 | cat >/dev/ttyS1
code=$?
say "uptime $(cut -d' ' -f1 /proc/uptime) s: script exited"
finish "$code"
