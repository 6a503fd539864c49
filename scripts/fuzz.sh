#!/usr/bin/env bash
# Builds the libFuzzer targets (tests/fuzz) with Debian's clang, ASan and UBSan
# in their own build tree, and runs each for a bounded time. Fails on any crash,
# sanitizer report, hang (an input running longer than the timeout), leak or
# memory blow-up, and prints the reproducer's path and how to replay it.
#
# Environment:
#   SPECACT_FUZZ_SECONDS   seconds per target (default 60; 0 = skip fuzzing)
#   SPECACT_FUZZ_TARGETS   targets to run (default: config journal agent_reply dbus_args)
#   SPECACT_FUZZ_BUILD_DIR build tree (default build-fuzz)
#   SPECACT_FUZZ_TIMEOUT   seconds one input may take before it counts as a hang (default 10)
#   SPECACT_FUZZ_MERGE=1   afterwards, merge the new inputs that add coverage into
#                          tests/fuzz/corpus/<target> (to review and commit)
#   SPECACT_FUZZ_STRICT=1  also fail on the open issue-11 bugs the harnesses tolerate
# Usage: bash scripts/fuzz.sh
set -euo pipefail
cd "$(dirname "$0")/.."
src=$PWD
seconds=${SPECACT_FUZZ_SECONDS:-60}
targets=${SPECACT_FUZZ_TARGETS:-config journal agent_reply dbus_args}
build_dir=${SPECACT_FUZZ_BUILD_DIR:-build-fuzz}
timeout=${SPECACT_FUZZ_TIMEOUT:-10}
if [[ ! "$seconds" =~ ^[0-9]+$ || ! "$timeout" =~ ^[1-9][0-9]*$ ]]; then
  echo "fuzz: SPECACT_FUZZ_SECONDS and SPECACT_FUZZ_TIMEOUT must be whole seconds" >&2
  exit 2
fi
if ((seconds == 0)); then
  echo "fuzz: SPECACT_FUZZ_SECONDS=0, not fuzzing"
  exit 0
fi
started=$(date +%s)

# clang 16 (Debian 12's clang-16 with libclang-rt-16-dev for libFuzzer and the
# sanitizers): the default clang 14 lacks C++20's structured bindings captured
# by lambdas, which the daemon uses.
CC=clang-16 CXX=clang++-16 cmake -S . -B "$build_dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DSPECACT_FUZZ=ON >/dev/null
exes=()
for t in $targets; do exes+=("fuzz_$t"); done
cmake --build "$build_dir" -j"$(nproc)" --target "${exes[@]}"
built=$(date +%s)
echo "fuzz: built ${exes[*]} in $((built - started)) s"

# Sanitizers stop at the first error with a stack; libFuzzer saves the input.
export ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1:detect_stack_use_after_return=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}
# Stacks with function names and lines (llvm-symbolizer comes with llvm).
if [[ -z ${ASAN_SYMBOLIZER_PATH:-} ]] && command -v llvm-symbolizer >/dev/null; then
  ASAN_SYMBOLIZER_PATH=$(command -v llvm-symbolizer)
  export ASAN_SYMBOLIZER_PATH
fi
failed=()
summary=()
for t in $targets; do
  seeds=$src/tests/fuzz/corpus/$t
  # New inputs go to a scratch corpus in the build tree, never into the
  # committed one (that changes only by SPECACT_FUZZ_MERGE and review).
  work=$build_dir/fuzz-corpus/$t
  artifacts=$build_dir/fuzz-artifacts/$t
  log=$build_dir/fuzz-$t.log
  mkdir -p "$work" "$artifacts"
  rm -f "$artifacts"/*
  dict=()
  [[ -f $src/tests/fuzz/$t.dict ]] && dict=(-dict="$src/tests/fuzz/$t.dict")
  echo "fuzz: $t for $seconds s (log $log)"
  set +e
  "$build_dir/tests/fuzz/fuzz_$t" -max_total_time="$seconds" -timeout="$timeout" \
    -rss_limit_mb=2048 -max_len=16384 -print_final_stats=1 -artifact_prefix="$artifacts/" \
    "${dict[@]}" "$work" "$seeds" >"$log" 2>&1
  rc=$?
  set -e
  # The last status line has the coverage reached (edges, features, corpus).
  stats=$(grep -E '^#[0-9]+\s' "$log" | grep -oE 'cov: [0-9]+ ft: [0-9]+ corp: [0-9]+' | tail -1 || true)
  execs=$(grep -oE 'stat::average_exec_per_sec: +[0-9]+' "$log" | tail -1 | grep -oE '[0-9]+$' || true)
  runs=$(grep -oE 'stat::number_of_executed_units: +[0-9]+' "$log" | tail -1 | grep -oE '[0-9]+$' || true)
  tolerated=$(grep -E '^fuzz: tolerated known issue' "$log" | sort -u || true)
  line="$t: ${runs:-?} runs, ${execs:-?} exec/s, ${stats:-no final stats}"
  summary+=("$line")
  if ((rc != 0)); then
    failed+=("$t")
    echo "FAIL: fuzz target $t (exit $rc); last lines of $log:" >&2
    grep -vE '^#[0-9]+ ' "$log" | tail -40 >&2
    for a in "$artifacts"/*; do
      [[ -e $a ]] || continue
      echo "fuzz: reproducer: $(realpath "$a")" >&2
      echo "fuzz:   replay with: $build_dir/tests/fuzz/fuzz_$t $(realpath "$a")" >&2
      echo "fuzz:   or (g++ build): build/tests/fuzz/fuzz_${t}_replay $(realpath "$a")" >&2
    done
  else
    echo "fuzz: $line"
  fi
  [[ -n $tolerated ]] && echo "$tolerated" | sed "s/^/fuzz: $t: /"
  if [[ ${SPECACT_FUZZ_MERGE:-0} == 1 && $rc == 0 ]]; then
    "$build_dir/tests/fuzz/fuzz_$t" -merge=1 "$seeds" "$work" >>"$log" 2>&1
    echo "fuzz: merged new coverage into $seeds (review, then commit)"
  fi
done
echo "fuzz: stage took $(($(date +%s) - started)) s (build $((built - started)) s)"
for s in "${summary[@]}"; do echo "fuzz:   $s"; done
if ((${#failed[@]})); then
  echo "FAIL: fuzzing found a problem in: ${failed[*]}" >&2
  exit 1
fi
