#!/usr/bin/env bash
# Installs everything specact needs to build, test and benchmark, from Debian 12
# packages only. Idempotent; run as root on a fresh machine.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
packages=(
  build-essential cmake pkg-config git
  clang llvm libbpf-dev bpftool linux-libc-dev libelf-dev zlib1g-dev
  libboost-dev libsdbus-c++-dev libsdbus-c++-bin libsystemd-dev
  nlohmann-json3-dev libcurl4-openssl-dev libgtest-dev libgmock-dev googletest
  dbus dbus-daemon stress-ng sysbench gnuplot-nox python3
  systemd-container debootstrap procps util-linux
  libre2-dev
  clang-16 libclang-rt-16-dev
  rt-tests postgresql-15 postgresql-client-15 memcached libmemcached-tools
  debhelper dpkg-dev fakeroot lintian scdoc bash-completion polkitd
  prometheus prometheus-node-exporter python3-yaml
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  # Services packaged here (postgresql, memcached, prometheus, node_exporter) must not start
  # on the build machine: the suite and tests start their own, by pid. A
  # policy-rc.d answering 101 is Debian's documented way to say so.
  guard=""
  if [[ ! -e /usr/sbin/policy-rc.d ]]; then
    guard=/usr/sbin/policy-rc.d
    printf '#!/bin/sh\nexit 101\n' >"$guard"
    chmod 0755 "$guard"
    trap 'rm -f "$guard"' EXIT
  fi
  apt-get update
  apt-get install -y --no-install-recommends "${missing[@]}"
fi
