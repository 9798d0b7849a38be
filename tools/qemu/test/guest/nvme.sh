# Guest side of nvme.qemu.test.ts: Linux's own nvme driver on sim:nvme served
# over vfio-user. Prints "key: value" lines; the test reads them.
dev=/sys/bus/pci/devices/0000:00:04.0
echo "ids: $(cat $dev/vendor) $(cat $dev/device) class $(cat $dev/class)"
irqs() { grep 'nvme0q' /proc/interrupts | sed 's/^ *//'; }
# A mark in QEMU's trace: a one-byte config read at an offset nothing else
# reads (vfio_pci_read_config ... @0xfe / @0xff), so that the test can count
# the interrupts QEMU signalled between two points of the script.
mark() { dd if=$dev/config bs=1 skip=$(($1)) count=1 2>/dev/null >/dev/null; }
for m in $(cat /modules/extra/order); do insmod "/modules/extra/$m.ko" || exit 1; done
ctrl=/sys/class/nvme/nvme0
# The driver probes asynchronously: wait for the controller to be live and
# its namespace's block device, or for the driver to give up.
for i in $(seq 300); do
  [ "$(cat $ctrl/state 2>/dev/null)" = live ] && [ -b /dev/nvme0n1 ] && break
  dmesg | grep -q "nvme0: .*\(aborting\|Removing\|failed\)" && break
  sleep 0.1
done
echo "driver: $(basename "$(readlink $dev/driver)")"
echo "state: $(cat $ctrl/state)"
echo "model: $(cat $ctrl/model)"
echo "serial: $(cat $ctrl/serial)"
echo "firmware: $(cat $ctrl/firmware_rev)"
echo "queues: $(ls -d /sys/block/nvme0n1/mq/* | wc -l)"
echo "msi-irqs: $(ls $dev/msi_irqs 2>/dev/null | tr '\n' ' ')"
[ -b /dev/nvme0n1 ] || { dmesg | grep -i nvme | sed 's/^/dmesg: /'; exit 3; }
echo "sectors: $(cat /sys/block/nvme0n1/size)"
echo "lba-size: $(cat /sys/block/nvme0n1/queue/logical_block_size)"
echo "max-transfer-kib: $(cat /sys/block/nvme0n1/queue/max_hw_sectors_kb)"
mark 0xfe
irqs | sed 's/^/interrupts-before: /'
# A random pattern of 64 KiB; each transfer writes the slice of it at its own
# disk offset and reads it back with O_DIRECT (no page cache between the
# driver and the disk): 4 KiB at LBA 0 (PRP1 only), 512 bytes at LBA 17 (one
# odd sector), 32 KiB at LBA 64 (more than two pages: a PRP list).
dd if=/dev/urandom of=/tmp/pattern bs=1024 count=64 2>/dev/null
echo "pattern: $(md5sum </tmp/pattern | cut -d' ' -f1)"
# dd's seek/skip count in blocks of bs, so the offsets are given in those units: LBA * 512 / bs.
xferat() { # name lba length-bytes
  dd if=/tmp/pattern of=/tmp/$1.want bs=$3 count=1 skip=$(($2 * 512 / $3)) 2>/dev/null
  dd if=/tmp/$1.want of=/dev/nvme0n1 bs=$3 count=1 seek=$(($2 * 512 / $3)) oflag=direct conv=notrunc 2>/tmp/$1.werr ||
    { echo "write-$1: failed $(cat /tmp/$1.werr)"; return; }
  dd if=/dev/nvme0n1 of=/tmp/$1.got bs=$3 count=1 skip=$(($2 * 512 / $3)) iflag=direct 2>/tmp/$1.rerr ||
    { echo "read-$1: failed $(cat /tmp/$1.rerr)"; return; }
  if cmp /tmp/$1.want /tmp/$1.got >/dev/null; then r=equal; else r=differ; fi
  echo "readback-$1: $(wc -c </tmp/$1.got) bytes at lba $2 $r"
}
xferat small 0 4096
xferat odd 17 512
xferat prplist 64 32768
# 48 KiB of it again through the page cache (written back with fsync), dropped before reading back.
dd if=/tmp/pattern of=/tmp/cached.want bs=4096 count=12 2>/dev/null
dd if=/tmp/cached.want of=/dev/nvme0n1 bs=4096 seek=64 conv=fsync 2>/dev/null
echo 3 >/proc/sys/vm/drop_caches
dd if=/dev/nvme0n1 of=/tmp/cached.got bs=4096 count=12 skip=64 2>/dev/null
if cmp /tmp/cached.want /tmp/cached.got >/dev/null; then r=equal; else r=differ; fi
echo "readback-cached: $(wc -c </tmp/cached.got) bytes at lba 512 $r"
irqs | sed 's/^/interrupts-after: /'
mark 0xff
dmesg | grep -i "nvme\|0000:00:04.0\|oops\|bug:" | sed 's/^/dmesg: /'
