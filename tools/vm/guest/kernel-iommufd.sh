#!/usr/bin/env bash
# The VM tier's second kernel: bookworm-backports' Debian 6.12 with iommufd and
# VFIO device cdevs. Debian builds its kernels without CONFIG_IOMMUFD, so this
# rebuilds iommufd.ko and the four VFIO modules out of tree from Debian's own
# source and headers at exactly the image's package version (the image is
# built with gcc-12, the host's compiler). Debian packages only: fetched with
# `apt-get download` from a private apt configuration that lists
# bookworm-backports (the host's apt setup is not touched), unpacked with
# `dpkg -x`, never installed.
#
# Usage: kernel-iommufd.sh <cache>; prints `version=<kernel version>` and
# `kdir=<folder>` (vmlinuz and modules under root/, depmod'ed, .done when
# complete). Everything else goes to stderr. ~1 min once, then cached.
set -euo pipefail
cache=${1:?usage: kernel-iommufd.sh <cache folder>}
log() { echo "vm-prepare(6.12): $*" >&2; }
die() { echo "vm-prepare(6.12): FAILED: $*" >&2; exit 1; }
export PATH="$PATH:/sbin:/usr/sbin"

# The build tools, from Debian: make, the compiler Debian built this kernel with
# (its headers call x86_64-linux-gnu-gcc-12), xz, and libelf for the prebuilt objtool.
need=()
command -v make >/dev/null || need+=(make)
command -v x86_64-linux-gnu-gcc-12 >/dev/null || need+=(gcc-12)
command -v xz >/dev/null || need+=(xz-utils)
/sbin/ldconfig -p 2>/dev/null | grep -q 'libelf\.so\.1 ' || need+=(libelf1)
if [ ${#need[@]} -gt 0 ]; then
  [ "$(id -u)" = 0 ] || die "missing build tools and not root: apt-get install --no-install-recommends ${need[*]}"
  log "installing ${need[*]} (apt-get)"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${need[@]}" >&2 ||
    die "apt-get could not install ${need[*]}"
fi

# A private apt view of bookworm-backports: own sources, lists and cache.
apt_dir="$cache/apt-bookworm-backports"
mkdir -p "$apt_dir/lists/partial" "$apt_dir/cache/archives/partial"
echo "deb http://deb.debian.org/debian bookworm-backports main" >"$apt_dir/sources.list"
apt_opts=(-q -o "Dir::Etc::sourcelist=$apt_dir/sources.list" -o Dir::Etc::sourceparts=-
  -o "Dir::State::Lists=$apt_dir/lists" -o "Dir::Cache=$apt_dir/cache" -o APT::Sandbox::User=root)
resolve() {
  apt-cache "${apt_opts[@]}" depends linux-image-amd64 2>/dev/null |
    sed -n 's/.*Depends: linux-image-\(6\.12\.[0-9].*-amd64\)$/\1/p' | head -1
}

# The archive moves: resolve the current version each time, unless pinned or offline.
version=${VFIO_TS_VM_KERNEL_612:-}
if [ -z "$version" ]; then
  # The lists are refreshed once a day at most.
  if [ -z "$(find "$apt_dir/lists" -maxdepth 1 -name '*Packages*' -mtime -1 2>/dev/null | head -1)" ]; then
    log "apt-get update (bookworm-backports only, private lists)"
    apt-get "${apt_opts[@]}" update >&2 || log "apt-get update failed; trying the lists and cache we have"
  fi
  version=$(resolve)
  [ -n "$version" ] || version=$(ls -1 "$cache" 2>/dev/null | sed -n 's/^kernel-\(6\.12\..*\)-iommufd$/\1/p' | sort -V | tail -1)
  [ -n "$version" ] || die "cannot resolve bookworm-backports' linux-image-amd64 (no network and nothing cached)"
fi
kdir="$cache/kernel-$version-iommufd"
if [ -f "$kdir/.done" ]; then
  echo "version=$version"
  echo "kdir=$kdir"
  exit 0
fi

pkgver=$(apt-cache "${apt_opts[@]}" show "linux-image-$version" 2>/dev/null | sed -n 's/^Version: //p' | head -1)
[ -n "$pkgver" ] || die "no package linux-image-$version in bookworm-backports"
base=${version%-amd64}     # 6.12.95+deb12
branch=$(echo "$version" | cut -d. -f1-2)
log "kernel $version, package version $pkgver"
start=$(date +%s)
rm -rf "$kdir" && mkdir -p "$kdir/deb" "$kdir/unpacked"
(cd "$kdir/deb" && apt-get "${apt_opts[@]}" download "linux-image-$version=$pkgver" \
  "linux-source-$branch=$pkgver" "linux-headers-$version=$pkgver" "linux-headers-$base-common=$pkgver" \
  "linux-kbuild-$base=$pkgver" >&2) || die "apt-get download of the $pkgver packages failed"
for deb in "$kdir"/deb/*.deb; do dpkg -x "$deb" "$kdir/unpacked" || die "dpkg -x $deb"; done
u="$kdir/unpacked"
hdr="$u/usr/src/linux-headers-$version"
# The arch headers include the common ones by absolute path: point it at ours.
echo "include $u/usr/src/linux-headers-$base-common/Makefile" >"$hdr/Makefile"
log "downloaded and unpacked in $(($(date +%s) - start)) s"

# Only the parts of the source tree that are rebuilt.
src="$kdir/src"
mkdir -p "$src"
tar -xf "$u/usr/src/linux-source-$branch.tar.xz" -C "$src" --strip-components=1 \
  "linux-source-$branch/drivers/vfio" "linux-source-$branch/drivers/iommu" \
  "linux-source-$branch/lib/interval_tree.c" || die "extracting drivers/vfio, drivers/iommu from linux-source-$branch"

# iommufd uses the interval tree span iterator, which Debian's vmlinux lacks
# (CONFIG_INTERVAL_TREE_SPAN_ITER is off): compile a private copy into the
# module, without its exports, so nothing clashes with the kernel's symbols.
span="$src/drivers/iommu/iommufd/interval_tree_span.c"
{
  echo '// From lib/interval_tree.c (CONFIG_INTERVAL_TREE_SPAN_ITER part), built into iommufd.ko.'
  echo '#include <linux/interval_tree.h>'
  echo '#include <linux/interval_tree_generic.h>'
  echo '#include <linux/compiler.h>'
  echo '#include <linux/export.h>'
  sed -n '/^#ifdef CONFIG_INTERVAL_TREE_SPAN_ITER/,/^#endif/p' "$src/lib/interval_tree.c" |
    sed -e '1d;$d' -e '/^EXPORT_SYMBOL/d'
} >"$span"
grep -q interval_tree_span_iter_first "$span" || die "no span iterator found in lib/interval_tree.c"
echo 'iommufd-y += interval_tree_span.o' >>"$src/drivers/iommu/iommufd/Makefile"
log "sources extracted at $(($(date +%s) - start)) s"

jobs=$(nproc)
common=(-C "$hdr" -j"$jobs" CONFIG_DEBUG_INFO_BTF_MODULES= CONFIG_IOMMUFD=m)
log "building iommufd.ko"
make "${common[@]}" M="$src/drivers/iommu/iommufd" CONFIG_IOMMUFD_TEST= CONFIG_IOMMUFD_DRIVER= \
  KCFLAGS="-DCONFIG_IOMMUFD_MODULE=1" modules >"$kdir/build-iommufd.log" 2>&1 ||
  { tail -40 "$kdir/build-iommufd.log" >&2; die "building iommufd.ko (log: $kdir/build-iommufd.log)"; }
log "building vfio, vfio_iommu_type1, vfio-pci-core, vfio-pci with CONFIG_VFIO_DEVICE_CDEV"
make "${common[@]}" M="$src/drivers/vfio" CONFIG_VFIO_DEVICE_CDEV=y \
  CONFIG_VFIO_MDEV= CONFIG_VFIO_PLATFORM= CONFIG_VFIO_FSL_MC= CONFIG_VFIO_CDX= CONFIG_VFIO_AMBA= \
  CONFIG_MLX5_VFIO_PCI= CONFIG_HISI_ACC_VFIO_PCI= CONFIG_PDS_VFIO_PCI= CONFIG_VIRTIO_VFIO_PCI= \
  CONFIG_NVGRACE_GPU_VFIO_PCI= CONFIG_QAT_VFIO_PCI= \
  KBUILD_EXTRA_SYMBOLS="$src/drivers/iommu/iommufd/Module.symvers" \
  KCFLAGS="-DCONFIG_IOMMUFD_MODULE=1 -DCONFIG_VFIO_DEVICE_CDEV=1" modules >"$kdir/build-vfio.log" 2>&1 ||
  { tail -40 "$kdir/build-vfio.log" >&2; die "building the VFIO modules (log: $kdir/build-vfio.log)"; }

log "modules built at $(($(date +%s) - start)) s"

# The root the VM tier boots: vmlinuz, the image's modules, and the rebuilt
# ones in their place (all four VFIO modules with iommufd: struct
# vfio_device changes shape with CONFIG_IOMMUFD).
mods="$u/lib/modules/$version"
[ -d "$mods" ] || mods="$u/usr/lib/modules/$version"
root="$kdir/root"
mkdir -p "$root/boot" "$root/lib/modules/$version"
mv "$u/boot/vmlinuz-$version" "$root/boot/" || die "no vmlinuz-$version in the package"
keep="irqbypass 9pnet 9p 9pnet_virtio netfs virtio_ring virtio virtio_pci_modern_dev virtio_pci_legacy_dev virtio_pci overlay"
for m in $keep; do
  path=$(cd "$mods" && find kernel \( -name "$m.ko" -o -name "$m.ko.xz" -o -name "$m.ko.zst" \) | head -1)
  [ -n "$path" ] || continue # built in (see modules.builtin)
  mkdir -p "$root/lib/modules/$version/$(dirname "$path")"
  mv "$mods/$path" "$root/lib/modules/$version/$path"
done
cp "$mods"/modules.{order,builtin,builtin.modinfo} "$root/lib/modules/$version/" 2>/dev/null || true
mkdir -p "$root/lib/modules/$version/updates"
for ko in "$src/drivers/iommu/iommufd/iommufd.ko" "$src/drivers/vfio/vfio.ko" \
  "$src/drivers/vfio/vfio_iommu_type1.ko" "$src/drivers/vfio/pci/vfio-pci-core.ko" \
  "$src/drivers/vfio/pci/vfio-pci.ko"; do
  [ -f "$ko" ] || die "the build made no $(basename "$ko")"
  cp "$ko" "$root/lib/modules/$version/updates/"
done
depmod -b "$root" "$version" || die "depmod failed"
# Keep the build logs; the packages and sources go (~1.2 GB unpacked).
rm -rf "$kdir/deb" "$u" "$src"
touch "$kdir/.done"
log "kernel $version with iommufd ready in $(($(date +%s) - start)) s"
echo "version=$version"
echo "kdir=$kdir"
