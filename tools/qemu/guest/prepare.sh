#!/usr/bin/env bash
# Builds what the QEMU tier runs, from Debian's packages only, into an ignored
# cache (tools/qemu/.cache) so later runs start at once:
#   - debootstrap on the host (apt-get, as root), and gcc with libc6-dev if
#     missing (the guest's static programs): the only changes to the host;
#   - a Debian trixie root (debootstrap minbase) holding QEMU 11.1 from
#     trixie-backports (qemu-system-x86 without recommends), a static busybox
#     and libgpiod's tools; QEMU runs chrooted in it (see run-in-root.sh);
#   - trixie's 6.12 kernel, fetched with `apt-get download` and unpacked with
#     `dpkg -x` (never installed), keeping vmlinuz and the modules the guest
#     loads, decompressed (busybox insmod cannot load .ko.xz), in load order;
#   - an initramfs: busybox, the modules, the gpiod tools with their libraries
#     and init.sh. A run appends its own script as a second cpio archive.
# Rebuilds what changed inputs invalidate (package list, module list, init.sh,
# this script). Prints key=value lines on stdout; progress and timings on stderr.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cache=${VFIO_TS_QEMU_CACHE:-$(cd "$here/.." && pwd)/.cache}
mkdir -p "$cache"
cache=$(cd "$cache" && pwd)
root="$cache/trixie-root"
mirror=${VFIO_TS_QEMU_MIRROR:-http://deb.debian.org/debian}
log() { echo "qemu-prepare: $*" >&2; }
die() { echo "qemu-prepare: FAILED: $*" >&2; exit 1; }
t0=$(date +%s.%N)
step() { # name start
  log "$1 took $(awk -v a="$2" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }') s"
}
now() { date +%s.%N; }

# What the root holds. Changing this list installs the difference (the root is kept).
ROOT_PACKAGES="busybox-static gpiod kmod xz-utils zstd"
BACKPORTS_PACKAGES="qemu-system-x86"
# Modules the guest's init loads at boot, by name; their dependencies are
# added from modules.dep and everything is loaded dependencies first.
GUEST_MODULES="gpio-pci-idio-16"
# Modules shipped but not loaded at boot (in /modules/extra, with their own
# load order in /modules/extra/order): a test script loads them when it wants
# the driver (the nvme tests; the DMA-fault test runs without it).
GUEST_EXTRA_MODULES="nvme"
# Static programs built with the host's gcc into the cache and put in the
# initramfs's /bin (guest/<name>.c each).
GUEST_PROGRAMS="nvme-dma-fault"

[ "$(id -u)" = 0 ] || die "the QEMU tier needs root (debootstrap, chroot, mount namespaces)"
export DEBIAN_FRONTEND=noninteractive

if ! command -v debootstrap >/dev/null; then
  s=$(now)
  log "installing debootstrap on the host (apt-get)"
  apt-get install -y -q debootstrap >&2 || { apt-get update -q >&2 && apt-get install -y -q debootstrap >&2; } ||
    die "apt-get could not install debootstrap"
  step "installing debootstrap" "$s"
fi

# Runs a command inside the root in a private mount namespace (nothing stays mounted).
in_root() { bash "$here/run-in-root.sh" "$root" "$@"; }

# 1. The trixie root.
if [ ! -f "$root/.debootstrap-done" ]; then
  s=$(now)
  log "debootstrap trixie (minbase) into $root (about a minute, once)"
  rm -rf "$root" "$root.tmp"
  debootstrap --variant=minbase trixie "$root.tmp" "$mirror" >"$cache/debootstrap.log" 2>&1 ||
    { tail -20 "$cache/debootstrap.log" >&2; die "debootstrap failed (full log: $cache/debootstrap.log)"; }
  echo "deb $mirror trixie-backports main" >"$root.tmp/etc/apt/sources.list.d/backports.list"
  mv "$root.tmp" "$root"
  touch "$root/.debootstrap-done"
  step "debootstrap" "$s"
fi
pkg_key=$(echo "$ROOT_PACKAGES / $BACKPORTS_PACKAGES" | sha256sum | cut -c1-16)
if [ "$(cat "$root/.packages-key" 2>/dev/null)" != "$pkg_key" ]; then
  s=$(now)
  log "installing $BACKPORTS_PACKAGES (trixie-backports) and $ROOT_PACKAGES in the root"
  in_root apt-get update -q >&2 || die "apt-get update in the root failed"
  in_root apt-get install -y -q --no-install-recommends $ROOT_PACKAGES >&2 || die "apt-get install $ROOT_PACKAGES failed"
  in_root apt-get install -y -q --no-install-recommends -t trixie-backports $BACKPORTS_PACKAGES >&2 ||
    die "apt-get install -t trixie-backports $BACKPORTS_PACKAGES failed"
  in_root apt-get clean
  echo "$pkg_key" >"$root/.packages-key"
  step "root packages" "$s"
fi
qemu_version=$(in_root qemu-system-x86_64 --version | head -1)
case "$qemu_version" in
  *"version 11."*) ;;
  *) die "the root's QEMU is not 11.x: $qemu_version" ;;
esac

# 2. The kernel: the version trixie's linux-image-amd64 points at, unless pinned.
resolve() { in_root apt-cache depends linux-image-amd64 2>/dev/null | sed -n 's/.*Depends: linux-image-\([0-9].*-amd64\)$/\1/p' | head -1; }
version=${VFIO_TS_QEMU_KERNEL:-$(resolve)}
if [ -z "$version" ]; then
  in_root apt-get update -q >&2 || true
  version=$(resolve)
fi
if [ -z "$version" ]; then # offline with a cache from an earlier run
  version=$(ls -1 "$cache" | sed -n 's/^kernel-\(.*\)$/\1/p' | sort -V | tail -1)
fi
[ -n "$version" ] || die "cannot resolve trixie's linux-image-amd64"
case "$version" in 6.12*) ;; *) log "note: trixie's kernel is $version (the tier was written for 6.12)" ;; esac
mod_key=$(echo "$GUEST_MODULES / $GUEST_EXTRA_MODULES" | sha256sum | cut -c1-8)
kdir="$cache/kernel-$version-$mod_key"
if [ ! -f "$kdir/.done" ]; then
  s=$(now)
  log "fetching linux-image-$version (apt-get download + dpkg -x, never installed)"
  rm -rf "$kdir" && mkdir -p "$kdir/modules/extra"
  work="$root/tmp/kernel-$version"
  rm -rf "$work" && mkdir -p "$work" && chmod 777 "$work" # apt-get download drops to _apt
  in_root sh -c "cd /tmp/kernel-$version && apt-get download -q linux-image-$version" >&2 ||
    die "apt-get download linux-image-$version failed"
  dpkg -x "$work"/linux-image-*.deb "$work/x" || die "dpkg -x failed"
  mdir="$work/x/lib/modules/$version"
  [ -d "$mdir" ] || mdir="$work/x/usr/lib/modules/$version"
  [ -f "$work/x/boot/vmlinuz-$version" ] || die "no vmlinuz-$version in the package"
  # dpkg -x runs no postinst, so there is no modules.dep yet (merged /usr: modules are under usr/lib).
  [ -e "$work/x/lib" ] || ln -s usr/lib "$work/x/lib"
  in_root depmod -b "/tmp/kernel-$version/x" "$version" || die "depmod failed"
  cp "$work/x/boot/vmlinuz-$version" "$kdir/vmlinuz"
  # Dependencies first (modules.dep lists each module's dependencies, nearest first).
  declare -A seen=()
  visit() { # path relative to $mdir
    local rel=$1 dep
    [ -n "${seen[$rel]:-}" ] && return 0
    seen[$rel]=1
    for dep in $(awk -F': *' -v r="$rel" '$1 == r { print $2; exit }' "$mdir/modules.dep"); do visit "$dep"; done
    order+=("$rel")
  }
  # Puts the modules named in $1 and their dependencies not already collected into $2, in load order.
  collect() { # names folder
    local m rel name
    order=()
    for m in $1; do
      # The module's file name, with - or _ (both spellings name one module).
      rel=$(awk -F: -v a="$m" -v b="${m//-/_}" '{ n = $1; sub(/.*\//, "", n); sub(/\.ko.*/, "", n) } n == a || n == b { print $1; exit }' "$mdir/modules.dep")
      [ -n "$rel" ] || die "module $m is not in linux-image-$version"
      visit "$rel"
    done
    : >"$2/order"
    for rel in "${order[@]}"; do
      name=$(basename "$rel"); name=${name%%.ko*}
      case "$rel" in
        *.ko.xz) xz -dc "$mdir/$rel" >"$2/$name.ko" ;;
        *.ko.zst) in_root zstd -qdc "/tmp/kernel-$version/x/${mdir#"$work/x/"}/$rel" >"$2/$name.ko" ;;
        *) cp "$mdir/$rel" "$2/$name.ko" ;;
      esac
      echo "$name" >>"$2/order"
    done
  }
  collect "$GUEST_MODULES" "$kdir/modules"
  collect "$GUEST_EXTRA_MODULES" "$kdir/modules/extra"
  rm -rf "$work"
  touch "$kdir/.done"
  log "kernel $version, modules at boot: $(tr '\n' ' ' <"$kdir/modules/order")," \
    "extra: $(tr '\n' ' ' <"$kdir/modules/extra/order")"
  step "kernel" "$s"
fi
# Older kernels and module sets are not needed any more.
find "$cache" -maxdepth 1 -name 'kernel-*' ! -name "$(basename "$kdir")" -exec rm -rf {} +

# 3. The guest's static programs, rebuilt when their source changes.
declare -A program=()
for p in $GUEST_PROGRAMS; do
  src="$here/$p.c"
  [ -f "$src" ] || die "no $src"
  out="$cache/programs/$p-$(sha256sum "$src" | cut -c1-16)"
  if [ ! -x "$out" ]; then
    s=$(now)
    if ! command -v gcc >/dev/null || [ ! -f /usr/lib/x86_64-linux-gnu/libc.a ]; then
      log "installing gcc and libc6-dev on the host (apt-get) to build $p.c"
      apt-get install -y -q gcc libc6-dev >&2 || { apt-get update -q >&2 && apt-get install -y -q gcc libc6-dev >&2; } ||
        die "apt-get could not install gcc libc6-dev (needed for $p.c)"
    fi
    mkdir -p "$cache/programs"
    gcc -static -O2 -Wall -Wextra -Werror -o "$out.tmp" "$src" >&2 || die "gcc -static $p.c failed"
    mv "$out.tmp" "$out"
    find "$cache/programs" -maxdepth 1 -name "$p-*" ! -name "$(basename "$out")" -delete
    step "building $p ($(du -k "$out" | cut -f1) KiB, static)" "$s"
  fi
  program[$p]=$out
done

# 4. The initramfs, rebuilt when init.sh, this script, the kernel's modules or a program change.
key=$(cat "$here/init.sh" "$here/prepare.sh" "$root/.packages-key" "$kdir/modules/order" "$kdir/modules/extra/order" \
  "${program[@]}" | sha256sum | cut -c1-16)
initrd="$cache/initramfs-$version-$key.cpio.gz"
if [ ! -f "$initrd" ]; then
  s=$(now)
  log "building $(basename "$initrd")"
  stage=$(mktemp -d "$cache/initramfs.XXXXXX")
  trap 'rm -rf "$stage"' EXIT
  mkdir -p "$stage"/{bin,dev,proc,sys,tmp,modules}
  cp "$root/usr/bin/busybox" "$stage/bin/busybox"
  cp -r "$kdir/modules/"* "$stage/modules/"
  for p in "${!program[@]}"; do cp "${program[$p]}" "$stage/bin/$p"; done
  cp "$here/init.sh" "$stage/init" && chmod 755 "$stage/init"
  # libgpiod's tools with the shared libraries they need, at the same paths.
  for tool in gpiodetect gpioinfo gpioget gpioset gpiomon; do
    cp "$root/usr/bin/$tool" "$stage/bin/$tool"
    for lib in $(in_root ldd "/usr/bin/$tool" | sed -n 's/.*=> \(\/[^ ]*\).*/\1/p; s/^\s*\(\/[^ ]*\) (.*/\1/p'); do
      mkdir -p "$stage$(dirname "$lib")"
      cp -L "$root$lib" "$stage$lib"
    done
  done
  (cd "$stage" && find . | "$root/usr/bin/busybox" cpio -o -H newc 2>/dev/null | gzip -6 >"$initrd.tmp") || die "cpio failed"
  mv "$initrd.tmp" "$initrd"
  find "$cache" -maxdepth 1 -name 'initramfs-*.cpio.gz' ! -name "$(basename "$initrd")" -delete
  step "initramfs ($(du -k "$initrd" | cut -f1) KiB)" "$s"
fi
step "prepare (total)" "$t0"
echo "root=$root"
echo "kernel=$kdir/vmlinuz"
echo "initrd=$initrd"
echo "busybox=$root/usr/bin/busybox"
echo "qemu=/usr/bin/qemu-system-x86_64"
echo "qemu_version=$qemu_version"
echo "kernel_version=$version"
