#!/usr/bin/env bash
# The main job, end to end on a fresh Debian 12 machine (as root): install the
# dependencies, build, start the bundled demo workload (a periodic 300 us task
# against 4 CPU hogs) and measure it live with `specactd monitor`.
# Usage: bash scripts/demo.sh [--seconds N]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=15
[[ ${1:-} == --seconds ]] && seconds=$2
bash scripts/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)" --target specactd specact-workload
./build/tests/workloads/specact-workload --hogs 4 --period-us 2000 --work-us 300 &
workload=$!
trap 'kill $workload 2>/dev/null; wait $workload 2>/dev/null || true' EXIT
sleep 0.5
echo "measuring the demo workload (pid $workload) for $seconds windows of 1 s:"
./build/daemon/specactd monitor --pid "$workload" --windows "$seconds"
