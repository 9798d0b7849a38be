#!/usr/bin/env bash
# run-in-root.sh <root> [--bind <dir>]... <command> [args...]
# Runs a command chrooted into <root> inside a private mount namespace:
# /proc, /sys and /dev are rbind-mounted from the host and each --bind folder
# is bind-mounted at the same path (sockets and files QEMU must reach), so
# nothing stays mounted when the command ends, however it ends.
set -euo pipefail
root=$1; shift
binds=()
while [ "${1:-}" = --bind ]; do binds+=("$2"); shift 2; done
[ $# -gt 0 ] || { echo "run-in-root: no command" >&2; exit 2; }
[ -d "$root" ] || { echo "run-in-root: no root at $root" >&2; exit 2; }
export ROOT=$root
exec unshare --mount --propagation private -- bash -c '
  set -e
  for d in proc sys dev; do mount --rbind "/$d" "$ROOT/$d"; done
  # resolv.conf for apt in the root (its copy from debootstrap may be stale).
  [ -f /etc/resolv.conf ] && cp /etc/resolv.conf "$ROOT/etc/resolv.conf" 2>/dev/null || true
  while [ "$1" != -- ]; do
    mkdir -p "$ROOT$1"
    mount --bind "$1" "$ROOT$1"
    shift
  done
  shift
  exec chroot "$ROOT" "$@"
' run-in-root "${binds[@]}" -- env -i DEBIAN_FRONTEND=noninteractive PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 "$@"
