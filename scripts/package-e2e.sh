#!/usr/bin/env bash
# Builds the Debian package from the checked-out tree (tracked files, as they
# are in the working tree) in a scratch directory, checks it with lintian (no
# errors), and runs the package e2e test: `apt install` of that .deb in a
# systemd-nspawn container booted with systemd (tests/e2e/run_package_e2e.sh).
# Needs root, BTF and systemd-nspawn, like the rest of scripts/test.sh.
# Usage (as root, after scripts/test.sh has configured the build):
#   bash scripts/package-e2e.sh [BUILD_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
build_dir=${1:-${SPECACT_BUILD_DIR:-build}}
[[ -f $build_dir/CMakeCache.txt ]] || {
  echo "package-e2e: $build_dir is not a configured build directory (run scripts/test.sh)" >&2
  exit 2
}
die() { echo "package-e2e: $*" >&2; exit 2; }
# Checked before the package build (minutes) rather than after it.
[[ $(id -u) == 0 ]] || die "needs root (the container test boots systemd-nspawn)"
for tool in git dpkg-buildpackage lintian systemd-nspawn debootstrap; do
  command -v "$tool" >/dev/null || die "$tool is missing (bash scripts/install-deps.sh installs it)"
done
git rev-parse --is-inside-work-tree >/dev/null 2>&1 ||
  die "$PWD is not a git checkout: the package is built from its tracked files"
scratch=$(mktemp -d /tmp/specact-deb.XXXXXX)
trap 'rm -rf "$scratch"' EXIT
mkdir "$scratch/specact"
# dpkg-buildpackage writes next to the source tree: build a copy, so nothing
# lands outside this checkout's own directory.
git ls-files -z | tar --null -T - -cf - | tar -xf - -C "$scratch/specact"
echo "package-e2e: dpkg-buildpackage in $scratch"
(cd "$scratch/specact" && DEB_BUILD_OPTIONS="parallel=$(nproc)" dpkg-buildpackage -us -uc -b) \
  >"$scratch/build.log" 2>&1 || {
  tail -40 "$scratch/build.log" >&2
  echo "package-e2e: dpkg-buildpackage failed" >&2
  exit 1
}
debs=("$scratch"/specact_*_amd64.deb)
[[ -f ${debs[0]} ]] || { echo "package-e2e: no .deb was built" >&2; exit 1; }
lint=$(lintian "$scratch"/specact_*_amd64.changes 2>&1 || true)
if grep -q '^E:' <<<"$lint"; then
  grep '^E:' <<<"$lint" >&2
  echo "package-e2e: lintian reports errors" >&2
  exit 1
fi
echo "package-e2e: ${debs[0]##*/} built, lintian: no errors"
deb=${debs[0]}
# The build directory runs the package test only while this script runs: a
# later plain `ctest` there must not pick up a .deb that is gone.
forget_deb() {
  cmake -S . -B "$build_dir" -DSPECACT_E2E_DEB= >/dev/null &&
    cmake --build "$build_dir" --target e2e_tests -j"$(nproc)" >/dev/null
  rm -rf "$scratch"
}
trap forget_deb EXIT
cmake -S . -B "$build_dir" -DSPECACT_E2E_DEB="$deb" >/dev/null
cmake --build "$build_dir" --target e2e_tests -j"$(nproc)"
# --no-tests=error: a test binary built without the package test fails here.
ctest --test-dir "$build_dir" --output-on-failure --timeout 900 --no-tests=error \
  -R 'E2e.DebianPackageInNspawnContainer'
