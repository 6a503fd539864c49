#!/usr/bin/env bash
# Sampler overhead per context switch, measured side by side in one run.
#
# A switch-heavy microbenchmark (stress-ng --switch, pipe ping-pong) runs
# repeatedly under four conditions, in rotating order each round:
#   none       no BPF attached
#   unrelated  specactd monitor attached, its target an unrelated idle process
#   target     specactd monitor whose target is the switching tasks themselves
#              (a cgroup v2 the benchmark runs in; forks followed by BPF)
#   naive      a textbook hash-map runqlat (bpf/naive_runqlat.bpf.c) attached
#   floor      empty programs on the same tracepoints (bpf/floor_probe.bpf.c):
#              the cost every tp_btf sampler pays before doing anything
# and reports, per condition, the median switch rate and the median of the
# per-round ratios against `none` measured in the same round (with the kernel's
# BPF run-time statistics off). A second, separate run of each condition with
# kernel.bpf_stats_enabled=1 (restored after) reports the BPF programs' own
# cost: nanoseconds of BPF per sched_switch event. That accounting itself adds
# two clock reads per program run, so it is only used for the BPF column.
#
# Usage: bench/sampler_overhead.sh [--build-dir DIR] [--seconds S] [--rounds R]
#                                  [--workers N] [--cpu CPU] [--out FILE]
# The switching pair is pinned to one CPU (default: the last) so every
# switch is a real same-CPU context switch and runs are comparable.
# Needs root, stress-ng, and a cgroup v2 mount for the `target` condition.
set -euo pipefail
cd "$(dirname "$0")/.."
build=build seconds=8 rounds=5 workers=1 cpu=$(($(nproc) - 1)) out=""
while (($#)); do
  case $1 in
    --build-dir) build=$2; shift 2 ;;
    --seconds) seconds=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    --workers) workers=$2; shift 2 ;;
    --cpu) cpu=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    -h|--help) sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "sampler_overhead.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
specactd=$build/daemon/specactd
probe=$build/bench/specact-bench-probe
for bin in "$specactd" "$probe"; do
  [[ -x $bin ]] || { echo "missing $bin: build first (cmake --build $build)" >&2; exit 1; }
done
command -v stress-ng >/dev/null || { echo "stress-ng not installed" >&2; exit 1; }
((EUID == 0)) || { echo "needs root (BPF)" >&2; exit 1; }

cg_root=$(awk '$9 == "cgroup2" {print $5; exit}' /proc/self/mountinfo)
[[ -n $cg_root ]] || { echo "no cgroup2 mount: the target condition needs one" >&2; exit 1; }
cg=$cg_root/specact-bench-$$
pids=()
stats_was=$(cat /proc/sys/kernel/bpf_stats_enabled)
cleanup() {
  echo "$stats_was" > /proc/sys/kernel/bpf_stats_enabled
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  [[ -d $cg ]] && { while read -r p; do echo "$p" > "$cg_root/cgroup.procs"; done < "$cg/cgroup.procs"; rmdir "$cg"; } 2>/dev/null || true
}
trap cleanup EXIT
mkdir -p "$cg"

prog_ids() { bpftool prog show -j | python3 -c 'import json,sys; print(" ".join(str(p["id"]) for p in json.load(sys.stdin)))'; }
# Prints "<BPF ns per sched_switch event>" for the given program ids.
bpf_ns_per_switch() {
  bpftool prog show -j | python3 -c '
import json, sys
ids = set(int(x) for x in sys.argv[1:])
run_ns = switches = 0
for p in json.load(sys.stdin):
    if p["id"] in ids:
        run_ns += p.get("run_time_ns", 0)
        if p.get("name", "").endswith("switch"):
            switches += p.get("run_cnt", 0)
print("%.1f" % (run_ns / switches if switches else 0))' "$@"
}

# Prints "<ops per second> <ns per switch>" for one stress-ng run.
run_switch() {
  local line
  line=$(sh -c "echo \$\$ > $cg/cgroup.procs; exec taskset -c $cpu stress-ng --switch $workers --timeout $seconds --metrics-brief" 2>&1)
  local ops ns
  ops=$(awk '/metrc:.* switch +[0-9]/ {print $(NF-1); exit}' <<<"$line")
  ns=$(awk '/nanosecs per context switch/ {for (i=1;i<=NF;i++) if ($i=="nanosecs") print $(i-1); exit}' <<<"$line")
  echo "${ops:-0} ${ns:-0}"
}

start_condition() {  # sets helper_pid and helper_progs
  helper_pid="" helper_progs=""
  local before
  before=" $(prog_ids) "
  case $1 in
    none) ;;
    unrelated)
      sleep 100000 & pids+=($!); local idle=$!
      "$specactd" monitor --pid "$idle" --window-ms 1000 >/dev/null 2>&1 & helper_pid=$! ;;
    target)
      "$specactd" monitor --cgroup "$cg" --window-ms 1000 >/dev/null 2>&1 & helper_pid=$! ;;
    naive|floor)
      "$probe" "$1" >/dev/null 2>&1 & helper_pid=$! ;;
  esac
  if [[ -n $helper_pid ]]; then
    pids+=("$helper_pid")
    sleep 1
    for id in $(prog_ids); do [[ $before == *" $id "* ]] || helper_progs+="$id "; done
  fi
  return 0
}
stop_condition() {
  [[ -n $helper_pid ]] && { kill "$helper_pid"; wait "$helper_pid" 2>/dev/null || true; }
  return 0
}

conditions=(none floor unrelated target naive)
declare -A ops ns ratio bpfns
for ((r = 0; r < rounds; r++)); do
  declare -A round_ops=()
  for ((i = 0; i < ${#conditions[@]}; i++)); do
    c=${conditions[$(((i + r) % ${#conditions[@]}))]}
    echo 0 > /proc/sys/kernel/bpf_stats_enabled
    start_condition "$c"
    read -r o n < <(run_switch)
    stop_condition
    b=0
    if [[ $c != none ]]; then  # the BPF cost, in its own run with accounting on
      echo 1 > /proc/sys/kernel/bpf_stats_enabled
      start_condition "$c"
      run_switch >/dev/null
      b=$(bpf_ns_per_switch $helper_progs)
      stop_condition
      echo 0 > /proc/sys/kernel/bpf_stats_enabled
    fi
    bpfns[$c]+="$b "
    round_ops[$c]=$o
    ops[$c]+="$o "; ns[$c]+="$n "
    echo "round $((r + 1)) $c: $o switches/s, $n ns/switch, BPF $b ns per sched_switch" >&2
  done
  for c in "${conditions[@]}"; do
    ratio[$c]+="$(awk -v a="${round_ops[$c]}" -v b="${round_ops[none]}" 'BEGIN {printf "%.4f", (b - a) / b * 100}') "
  done
done

median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
spread() { tr ' ' '\n' | grep -v '^$' | sort -g | awk 'NR==1{lo=$1} {hi=$1} END {printf "%.1f..%.1f", lo, hi}'; }
{
  base_ns=$(median <<<"${ns[none]}")
  echo "| condition | median switches/s | median ns/switch | rate loss vs none (median of per-round ratios) | per-round range | BPF ns per sched_switch (median, accounting on) | BPF ns / none's ns per switch |"
  echo "|---|---:|---:|---:|---:|---:|---:|"
  for c in "${conditions[@]}"; do
    b=$(median <<<"${bpfns[$c]}")
    printf "| %s | %.0f | %.0f | %+.1f %% | %s %% | %.1f | %.1f %% |\n" "$c" "$(median <<<"${ops[$c]}")" \
      "$(median <<<"${ns[$c]}")" "$(median <<<"${ratio[$c]}")" "$(spread <<<"${ratio[$c]}")" \
      "$b" "$(awk -v b="$b" -v n="$base_ns" 'BEGIN {print (n > 0 ? b / n * 100 : 0)}')"
  done
  echo
  echo "stress-ng --switch $workers pinned to CPU $cpu, ${seconds}s x $rounds rounds, $(nproc) CPUs, kernel $(uname -r), $(date -u +%F)"
} | tee ${out:+"$out"}
