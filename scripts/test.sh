#!/usr/bin/env bash
# Installs dependencies, builds specact and runs the whole test suite,
# including the privileged (root + BPF) tests, which must run, not skip.
# Usage (as root on Debian 12): bash scripts/test.sh
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
build_dir=${SPECACT_BUILD_DIR:-build}
cmake -S . -B "$build_dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo
cmake --build "$build_dir" -j"$(nproc)"
export SPECACT_REQUIRE_PRIVILEGED=${SPECACT_REQUIRE_PRIVILEGED:-1}
log=$(mktemp)
trap 'rm -f "$log"' EXIT
set +e
ctest --test-dir "$build_dir" --output-on-failure --timeout 900 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}
set -e
if grep -qE '\*\*\*Skipped|The following tests did not run' "$log"; then
  echo "FAIL: some tests were skipped; every test must run here (SPECACT_REQUIRE_PRIVILEGED=1)" >&2
  exit 1
fi
((rc == 0)) || exit "$rc"
# The Debian package, built and installed with apt in a booted container
# (SPECACT_PACKAGE_E2E=0 skips it).
if [[ ${SPECACT_PACKAGE_E2E:-1} != 0 ]]; then
  bash scripts/package-e2e.sh "$build_dir"
fi
# Fuzzing (clang + libFuzzer, its own build tree): 60 s per target by default,
# SPECACT_FUZZ_SECONDS to change it (0 skips it).
bash scripts/fuzz.sh
