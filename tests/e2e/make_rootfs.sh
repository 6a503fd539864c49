#!/usr/bin/env bash
# Builds (once) and caches a minimal Debian 12 root file system with systemd,
# dbus and the runtime libraries specactd/specactctl need, for the nspawn
# end-to-end test. The mirror comes from apt's configured sources at run time.
#
# Usage: make_rootfs.sh CACHE_DIR
# Prints the path of the ready rootfs (CACHE_DIR/rootfs-<key>) on stdout.
set -euo pipefail
cache_dir=${1:?usage: make_rootfs.sh CACHE_DIR}
suite=bookworm

# Runtime packages: systemd as init, the system bus, the libraries our binaries
# link against, and util-linux for runuser. Changing this list changes the
# cache key, so a stale rootfs is never reused.
packages=(systemd systemd-sysv dbus libbpf1 libelf1 zlib1g libsdbus-c++1 libre2-9
  libcurl4 libsystemd0 libstdc++6 util-linux procps)
# SPECACT_E2E_EXTRA_PACKAGES (space-separated) adds packages, e.g. what the
# package test needs: polkitd, man-db, bash-completion.
read -ra extra <<<"${SPECACT_E2E_EXTRA_PACKAGES:-}"
packages+=("${extra[@]}")

mirror_from_apt() {
  # deb822 sources first (URIs:), then one-line sources (deb URL suite ...);
  # the first Debian archive (not -security) wins.
  local f url
  for f in /etc/apt/sources.list.d/*.sources; do
    [[ -r $f ]] || continue
    url=$(awk '/^URIs:/ {for (i = 2; i <= NF; i++) print $i}' "$f" |
      grep -E '/debian/?$' | head -n1 || true)
    [[ -n $url ]] && { echo "$url"; return; }
  done
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [[ -r $f ]] || continue
    url=$(awk '$1 == "deb" { for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\//) { print $i; break } }' "$f" |
      grep -E '/debian/?$' | head -n1 || true)
    [[ -n $url ]] && { echo "$url"; return; }
  done
  return 1
}

key=$(printf '%s\n' "$suite" "${packages[@]}" | sha256sum | cut -c1-12)
rootfs="$cache_dir/rootfs-$key"
if [[ -f $rootfs/.specact-ready ]]; then
  echo "$rootfs"
  exit 0
fi

mirror=$(mirror_from_apt) || { echo "make_rootfs: no Debian mirror in /etc/apt/sources.list*" >&2; exit 1; }
mkdir -p "$cache_dir"
rm -rf "$rootfs.tmp"
start=$(date +%s)
include=$(IFS=,; echo "${packages[*]}")
echo "make_rootfs: debootstrap $suite from $mirror into $rootfs (first run takes minutes)" >&2
debootstrap --variant=minbase --include="$include" "$suite" "$rootfs.tmp" "$mirror" >&2
# A fixed machine id keeps journald and dbus quiet; a root password is not
# needed because nothing logs in interactively.
echo specact-e2e >"$rootfs.tmp/etc/hostname"
: >"$rootfs.tmp/etc/machine-id"
# The test creates this user for the "unprivileged caller" check too, but a
# distinct named user makes the container's logs easier to read.
chroot "$rootfs.tmp" useradd --system --no-create-home --shell /usr/sbin/nologin specact-e2e-user >&2 || true
rm -rf "$rootfs.tmp/var/cache/apt/archives/"*.deb
mv "$rootfs.tmp" "$rootfs"
touch "$rootfs/.specact-ready"
echo "make_rootfs: built in $(( $(date +%s) - start )) s" >&2
echo "$rootfs"
