#!/usr/bin/env bash
# Builds what the VM tier boots, from Debian's packages only, into an ignored
# cache (tools/vm/.cache) so the second run starts at once:
#   - qemu-system-x86, busybox-static and kmod on the host (apt-get, as root);
#   - Debian's own kernel, fetched with `apt-get download` and unpacked with
#     `dpkg -x` (never installed as the host kernel), then depmod'ed;
#   - an initramfs: static busybox, the vfio and 9p/virtio modules, and init.sh.
# Usage: prepare.sh [6.1|6.12] (default 6.1, or VFIO_TS_VM_KERNEL_LINE). 6.1 is
# Debian 12's kernel (container/group interface only); 6.12 is bookworm-backports'
# kernel with iommufd and the VFIO modules rebuilt for device cdevs
# (kernel-iommufd.sh), which offers both interfaces.
# Prints `kernel=<path>` and `initrd=<path>` on stdout; everything else goes to stderr.
set -euo pipefail
line=${1:-${VFIO_TS_VM_KERNEL_LINE:-6.1}}
case "$line" in 6.1 | 6.12) ;; *) echo "vm-prepare: FAILED: unknown kernel line '$line' (6.1 or 6.12)" >&2; exit 1 ;; esac
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cache=${VFIO_TS_VM_CACHE:-$(cd "$here/.." && pwd)/.cache}
mkdir -p "$cache"
log() { echo "vm-prepare: $*" >&2; }
die() { echo "vm-prepare: FAILED: $*" >&2; exit 1; }

# Modules the guest loads, in dependency order (busybox insmod does not resolve
# dependencies). vfio first; the virtio stack last, so virtio_pci does not claim
# a virtio test device before it is bound to vfio-pci.
# On 6.12 vfio_virqfd is inside vfio.ko, fscache inside netfs, and iommufd comes
# first; modules a kernel has built in (modules.builtin) are skipped.
if [ "$line" = 6.12 ]; then
  VFIO_MODULES="irqbypass iommufd vfio vfio_iommu_type1 vfio-pci-core vfio-pci"
  LATE_MODULES="netfs 9pnet 9p virtio_ring virtio virtio_pci_modern_dev virtio_pci_legacy_dev virtio_pci 9pnet_virtio overlay"
else
  VFIO_MODULES="irqbypass vfio vfio_iommu_type1 vfio_virqfd vfio-pci-core vfio-pci"
  LATE_MODULES="netfs fscache 9pnet 9p virtio_ring virtio virtio_pci_modern_dev virtio_pci_legacy_dev virtio_pci 9pnet_virtio overlay"
fi

apt_install() {
  [ "$(id -u)" = 0 ] || die "missing host packages ($*) and not root: install them with apt-get install --no-install-recommends $*"
  log "installing $* (apt-get)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -q --no-install-recommends "$@" >&2 ||
    { apt-get update -q >&2 && apt-get install -y -q --no-install-recommends "$@" >&2; } ||
    die "apt-get could not install $*"
}

need=()
command -v qemu-system-x86_64 >/dev/null || need+=(qemu-system-x86)
# The initramfs needs a static busybox (ldd fails on a static binary).
{ [ -x /bin/busybox ] && ! ldd /bin/busybox >/dev/null 2>&1; } || need+=(busybox-static)
command -v depmod >/dev/null || [ -x /sbin/depmod ] || need+=(kmod)
[ ${#need[@]} -eq 0 ] || apt_install "${need[@]}"
export PATH="$PATH:/sbin:/usr/sbin"

# The kernel: the version linux-image-amd64 points at, unless pinned.
version=${VFIO_TS_VM_KERNEL:-}
if [ "$line" = 6.12 ]; then
  out=$(bash "$here/kernel-iommufd.sh" "$cache") || die "the 6.12 kernel with iommufd could not be built (above)"
  version=$(echo "$out" | sed -n 's/^version=//p')
  kdir=$(echo "$out" | sed -n 's/^kdir=//p')
elif [ -z "$version" ]; then
  resolve() { apt-cache depends linux-image-amd64 2>/dev/null | sed -n 's/.*Depends: linux-image-\([0-9].*-amd64\)$/\1/p' | head -1; }
  version=$(resolve)
  if [ -z "$version" ]; then
    [ "$(id -u)" = 0 ] && apt-get update -q >&2 || true
    version=$(resolve)
  fi
  # Offline with a cache from an earlier run: use the newest kernel there.
  if [ -z "$version" ]; then
    version=$(ls -1 "$cache" 2>/dev/null | grep -v -- '-iommufd$' | sed -n 's/^kernel-\(.*\)$/\1/p' | sort -V | tail -1)
  fi
  [ -n "$version" ] || die "cannot resolve linux-image-amd64 (apt-cache depends found nothing; run apt-get update)"
fi
[ "$line" = 6.12 ] || kdir="$cache/kernel-$version"
if [ ! -f "$kdir/.done" ]; then
  log "fetching linux-image-$version (apt-get download + dpkg -x)"
  rm -rf "$kdir" && mkdir -p "$kdir/deb"
  (cd "$kdir/deb" && apt-get download "linux-image-$version" >&2) || die "apt-get download linux-image-$version failed"
  dpkg -x "$kdir"/deb/*.deb "$kdir/unpacked" || die "dpkg -x failed"
  # Keep only what the guest boots (the package unpacks to ~400 MB; this is ~15 MB).
  mkdir -p "$kdir/root/boot" "$kdir/root/lib/modules/$version"
  mv "$kdir/unpacked/boot/vmlinuz-$version" "$kdir/root/boot/" || die "no vmlinuz-$version in the package"
  for m in $VFIO_MODULES $LATE_MODULES; do
    path=$(cd "$kdir/unpacked/lib/modules/$version" && find kernel \( -name "$m.ko" -o -name "$m.ko.xz" -o -name "$m.ko.zst" \) | head -1)
    [ -n "$path" ] || die "module $m not found in linux-image-$version"
    mkdir -p "$kdir/root/lib/modules/$version/$(dirname "$path")"
    mv "$kdir/unpacked/lib/modules/$version/$path" "$kdir/root/lib/modules/$version/$path"
  done
  cp "$kdir/unpacked/lib/modules/$version"/modules.{order,builtin,builtin.modinfo} "$kdir/root/lib/modules/$version/" 2>/dev/null || true
  rm -rf "$kdir/deb" "$kdir/unpacked"
  depmod -b "$kdir/root" "$version" || die "depmod failed"
  touch "$kdir/.done"
fi
kernel="$kdir/root/boot/vmlinuz-$version"
moddir="$kdir/root/lib/modules/$version"
[ -f "$kernel" ] || die "no kernel image at $kernel"

# The initramfs, rebuilt when init.sh, the module lists or the kernel change.
key=$(cat "$here/init.sh" "$here/prepare.sh" "$here/kernel-iommufd.sh" | sha256sum | cut -c1-16)
initrd="$cache/initramfs-$version-$key.cpio.gz"
if [ ! -f "$initrd" ]; then
  log "building $initrd"
  stage=$(mktemp -d "$cache/initramfs.XXXXXX")
  trap 'rm -rf "$stage"' EXIT
  mkdir -p "$stage"/{bin,dev,proc,sys,lower,upper,newroot,modules}
  cp /bin/busybox "$stage/bin/busybox"
  cp "$here/init.sh" "$stage/init" && chmod 755 "$stage/init"
  : >"$stage/modules/early"; : >"$stage/modules/late"
  for list in early late; do
    names=$VFIO_MODULES; [ $list = late ] && names=$LATE_MODULES
    for m in $names; do
      path=$( (find "$moddir/updates" "$moddir/kernel" \( -name "$m.ko" -o -name "$m.ko.xz" -o -name "$m.ko.zst" \) 2>/dev/null || true) | head -1)
      if [ -z "$path" ] && grep -q "/$m\.ko$" "$moddir/modules.builtin" 2>/dev/null; then continue; fi
      [ -n "$path" ] || die "module $m not found in $moddir"
      case "$path" in
        *.xz) xz -dc "$path" >"$stage/modules/$m.ko" ;;
        *.zst) zstd -qdc "$path" >"$stage/modules/$m.ko" ;;
        *) cp "$path" "$stage/modules/$m.ko" ;;
      esac
      echo "$m" >>"$stage/modules/$list"
    done
  done
  (cd "$stage" && find . | /bin/busybox cpio -o -H newc 2>/dev/null | gzip -6 >"$initrd.tmp") || die "cpio failed"
  mv "$initrd.tmp" "$initrd"
  # Older initramfs builds are not needed any more.
  find "$cache" -maxdepth 1 -name "initramfs-$version-*.cpio.gz" ! -name "$(basename "$initrd")" -delete
fi
echo "kernel=$kernel"
echo "initrd=$initrd"
echo "qemu=$(command -v qemu-system-x86_64)"
