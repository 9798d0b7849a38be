# Guest side of pci-idio-16.qemu.test.ts: Linux's own gpio-pci-idio-16 driver
# on sim:pci-idio-16 served over vfio-user. Prints "key: value" lines.
dev=/sys/bus/pci/devices/0000:00:04.0
echo "driver: $(basename "$(readlink $dev/driver)")"
echo "ids: $(cat $dev/vendor) $(cat $dev/device)"
gpiodetect | sed 's/^/chip: /'
gpioinfo -c gpiochip0 | sed -n 's/^[[:space:]]*line[[:space:]]*\([0-9]*\):[[:space:]]*"\([^"]*\)".*/line: \1 \2/p'
irq=$(cat $dev/irq)
echo "irq: $irq"
echo "interrupts-before: $(grep "^ *$irq:" /proc/interrupts)"
# Outputs off (as reset leaves them): every input reads 1 through its pull-up.
echo "inputs-reset: $(gpioget --numeric -c gpiochip0 $(seq 16 31) | tr -d ' ')"
# gpioset -z returns once the lines are set and holds them in the background;
# the driver keeps the values after it is gone.
hold() {
  gpioset -z -c gpiochip0 "$@"
  kill $(pidof gpioset)
  while pidof gpioset >/dev/null; do sleep 0.1; done
}
# OUT0, OUT5, OUT8 and OUT15 on: the matching inputs read 0.
hold 0=1 5=1 8=1 15=1
echo "inputs-set: $(gpioget --numeric -c gpiochip0 $(seq 16 31) | tr -d ' ')"
echo "outputs-set: $(gpioget --numeric -a -c gpiochip0 $(seq 0 15) | tr -d ' ')"
# An interrupt from the model. A per-line IRQ (sysfs "edge", or an edge event
# request on the gpio chardev) oopses this kernel in handle_nested_irq, so the
# board's IRQ is enabled the way the driver's mask sync does it (read the
# enable register, 0x2) through /dev/port; the driver's own handler for the
# PCI interrupt then takes it: it reads the status and acknowledges (0x1).
base=$(printf '%d' "0x$(sed -n 3p $dev/resource | cut -c3-18)")
echo "bar2: $base"
dd if=/dev/port bs=1 skip=$((base + 2)) count=1 2>/dev/null >/dev/null
count() { grep "^ *$irq:" /proc/interrupts | awk '{ print $2 }'; }
before=$(count)
hold 3=1
for i in $(seq 100); do [ "$(count)" != "$before" ] && break; sleep 0.1; done
status() { dd if=/dev/port bs=1 skip=$((base + 6)) count=1 2>/dev/null | od -An -tx1 | tr -d ' '; }
# The driver's threaded handler acknowledges after the count went up.
for i in $(seq 50); do [ "$(status)" = 00 ] && break; sleep 0.1; done
echo "status-after: $(status)"
echo "interrupts-after: $(grep "^ *$irq:" /proc/interrupts)"
dmesg | grep -i "idio\|0000:00:04.0\|oops\|bug" | sed 's/^/dmesg: /'
