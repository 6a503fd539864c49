#!/usr/bin/env bash
# The main job, end to end on a fresh Debian 12 machine (as root): install the
# dependencies, build, start the bundled demo workload (a periodic 300 us task
# every 2 ms against 4 CPU hogs), and let specactd tune it live while
# `specactctl watch` draws p95 converging and who moved which knob and why.
#
# The daemon talks D-Bus on a private bus that uses the project's real policy
# file (this machine may have no system bus); everything it changes is
# journalled and restored when it stops, and every process the demo starts is
# stopped by pid at the end.
#
# Usage: bash scripts/demo.sh [--seconds N] [--actor-delay-ms MS] [--no-build]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=45 actor_delay_ms=8000 build=1
while (($#)); do
  case $1 in
    --seconds) seconds=$2; shift 2 ;;
    --actor-delay-ms) actor_delay_ms=$2; shift 2 ;;
    --no-build) build=0; shift ;;
    -h|--help) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "demo.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
[[ $seconds =~ ^[0-9]+$ && $seconds -ge 5 ]] || { echo "demo.sh: --seconds needs an integer >= 5" >&2; exit 2; }
[[ $actor_delay_ms =~ ^[0-9]+$ ]] || { echo "demo.sh: --actor-delay-ms needs a non-negative integer" >&2; exit 2; }
((EUID == 0)) || { echo "demo.sh: run as root (BPF, scheduler attributes)" >&2; exit 1; }
if ((build)); then
  bash scripts/install-deps.sh
  cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
  cmake --build build -j"$(nproc)" --target specactd specactctl specact-workload
fi

work=$(mktemp -d /tmp/specact-demo.XXXXXX)
chmod 755 "$work"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

# A private system-type bus with Debian's default policy plus ours.
sed -e "s|@SOCKET@|$work/bus|" -e "s|@POLICY@|$PWD/systemd/org.specact.Daemon1.conf|" \
  scripts/private-bus.conf.in >"$work/bus.conf"
dbus-daemon --config-file="$work/bus.conf" --nofork --nopidfile &
pids+=($!)
bus="unix:path=$work/bus"
for _ in $(seq 50); do [[ -S $work/bus ]] && break; sleep 0.1; done

./build/tests/workloads/specact-workload --hogs 4 --period-us 2000 --work-us 300 >/dev/null &
workload=$!
pids+=($workload)
sleep 0.5

cat >"$work/config.json" <<EOF
{
  "_comment": "demo: a fast builtin speculator, and an actor that takes ${actor_delay_ms} ms per decision like an LLM",
  "target": {"pid": $workload},
  "objective": {"metric": "service_p95"},
  "window_ms": 1000,
  "mode": "speculative",
  "knobs": {"allow": ["task.slice_us", "task.nice"]},
  "speculator": {"backend": "builtin", "delay_ms": 300, "top_k": 2},
  "actor": {"backend": "builtin", "delay_ms": $actor_delay_ms},
  "state_dir": "$work/state",
  "dbus": {"bus_address": "$bus", "required": true}
}
EOF
echo "specact demo: tuning the workload (pid $workload) for $seconds s; config: $work/config.json"
./build/daemon/specactd run --config "$work/config.json" --duration "$seconds" 2>"$work/daemon.log" &
daemon=$!
pids+=($daemon)
for _ in $(seq 50); do ./build/ctl/specactctl --bus "$bus" status >/dev/null 2>&1 && break; sleep 0.2; done

# Live: p95 per window and the knob moves, until the daemon's run ends.
./build/ctl/specactctl --bus "$bus" watch --count $((seconds - 2)) || true
wait "$daemon" || { echo "specactd failed:" >&2; tail -20 "$work/daemon.log" >&2; exit 1; }

python3 - "$work/state/history.jsonl" <<'EOF'
import json, statistics, sys
events = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
p95 = [e["objective_us"] for e in events if e["type"] == "window" and e.get("objective_us")]
# Untuned: the windows measured before the first write (the speculator
# usually writes after one window, so "the first 3 windows" mixed in tuned ones).
untuned = []
for e in events:
    if e["type"] == "applied":
        break
    if e["type"] == "window" and e.get("objective_us") and not e.get("straddled"):
        untuned.append(e["objective_us"])
untuned = untuned or p95[:1]
status = next((e for e in reversed(events) if e["type"] == "status"), {})
restored = next((e for e in reversed(events) if e["type"] in ("restored", "left_in_place")), {})
first, last = statistics.median(untuned), statistics.median(p95[-10:])
print(f"\nuntuned p95 ({len(untuned)} window(s) before the first write, median): {first / 1000:.2f} ms")
print(f"tuned p95   (last 10 windows, median): {last / 1000:.2f} ms  ({(1 - last / first) * 100:.0f} % lower)")
print(f"confirmed config: {status.get('confirmed')}; hit rate: {status.get('hit_rate')}")
print(f"on exit: {restored.get('type')} ({'ok' if restored.get('ok') else 'see ' + sys.argv[1]})")
EOF
