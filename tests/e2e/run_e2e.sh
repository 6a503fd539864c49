#!/usr/bin/env bash
# End-to-end test in a real systemd: boots a cached minimal Debian 12 with
# systemd-nspawn, installs the built project into a throwaway copy of it, and
# checks from the host that
#   - specactd.service passes `systemd-analyze verify` and reaches active,
#   - specactctl (the host binary) answers `status` over the container's
#     system bus, for root and for an unprivileged user,
#   - the unprivileged user is refused a mutating call,
#   - a pinned knob is applied; after a SIGKILL ExecStopPost puts it back,
#     the service restarts with the target and the pin it had (settings.json),
#     and `systemctl stop specactd` puts it back (and leaves every global
#     sysctl the catalogue knows as it found it),
#   - the hardened unit serves Prometheus metrics (metrics.listen) that show
#     the pinned knob, and decisions reach the journal as structured entries
#     (`journalctl -u specactd SPECACT_EVENT=reverted`), each line once.
#
# Usage: run_e2e.sh BUILD_DIR   (as root; env SPECACT_E2E_CACHE, default
# /var/cache/specact-e2e, keeps the debootstrapped rootfs between runs)
set -euo pipefail
build=$(realpath "${1:?usage: run_e2e.sh BUILD_DIR}")
here=$(dirname "$(realpath "$0")")
cache=${SPECACT_E2E_CACHE:-/var/cache/specact-e2e}
work="$build/e2e-run"
t0=$(date +%s)
step() { echo "[e2e +$(( $(date +%s) - t0 ))s] $*"; }
fail() { echo "E2E FAIL: $*" >&2; exit 1; }

[[ $(id -u) == 0 ]] || fail "needs root"
command -v systemd-nspawn >/dev/null || fail "systemd-nspawn missing (apt install systemd-container)"

step "rootfs"
base=$("$here/make_rootfs.sh" "$cache")
step "rootfs ready: $base"

nspawn_pid=""
leader=""
saved_sysctls=()
cleanup() {
  set +e
  if [[ -n $nspawn_pid ]] && kill -0 "$nspawn_pid" 2>/dev/null; then
    kill -TERM "$nspawn_pid"
    for _ in $(seq 1 40); do kill -0 "$nspawn_pid" 2>/dev/null || break; sleep 0.5; done
    if kill -0 "$nspawn_pid" 2>/dev/null; then
      # SIGKILL of the container's init takes its whole pid namespace with it;
      # killing only nspawn would orphan the container's processes.
      [[ -n $leader ]] && kill -KILL "$leader" 2>/dev/null
      sleep 0.5
      kill -KILL "$nspawn_pid" 2>/dev/null
    fi
    wait "$nspawn_pid" 2>/dev/null
  fi
  [[ -n $leader ]] && kill -0 "$leader" 2>/dev/null && kill -KILL "$leader"
  # Belt and braces: global sysctls are shared with the host; put back any
  # the daemon failed to restore (the test has already failed then).
  for kv in "${saved_sysctls[@]}"; do
    f=${kv%%=*}; v=${kv#*=}
    [[ $(cat "$f" 2>/dev/null) == "$v" ]] || echo "$v" >"$f" 2>/dev/null
  done
  rm -rf "$work"
}
trap cleanup EXIT

step "copy rootfs and install the build into it"
rm -rf "$work"
mkdir -p "$work"
cp -a "$base" "$work/root"
root="$work/root"
if ! DESTDIR="$root" cmake --install "$build" --prefix /usr >"$work/install.log" 2>&1; then
  # SPECACT_E2E_PARTIAL_INSTALL=1 (development only, never in CI): install just
  # the parts the service needs when unrelated targets are not built.
  [[ ${SPECACT_E2E_PARTIAL_INSTALL:-0} == 1 ]] || { cat "$work/install.log"; fail "cmake --install failed"; }
  echo "WARNING: full cmake --install failed; installing daemon, ctl, systemd, workloads only" >&2
  for d in daemon ctl systemd tests/workloads; do
    DESTDIR="$root" cmake -DCMAKE_INSTALL_PREFIX=/usr -P "$build/$d/cmake_install.cmake" >>"$work/install.log" 2>&1 ||
      { cat "$work/install.log"; fail "install of $d failed"; }
  done
fi
for f in /usr/sbin/specactd /usr/bin/specactctl /lib/systemd/system/specactd.service \
         /usr/share/dbus-1/system.d/org.specact.Daemon1.conf \
         /usr/share/dbus-1/system-services/org.specact.Daemon1.service /etc/specactd/specactd.json; do
  [[ -e $root$f ]] || fail "cmake --install did not install $f"
done
# Prometheus metrics on a free port: nspawn shares the host's network here, so
# the host reads them as a scraper would.
metrics_port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
python3 - "$root/etc/specactd/specactd.json" "$metrics_port" <<'PY'
import json, sys
path, port = sys.argv[1], sys.argv[2]
cfg = json.load(open(path))
cfg["metrics"] = {"listen": "127.0.0.1:" + port}
json.dump(cfg, open(path, "w"), indent=2)
PY
scrape() {
  python3 -c 'import sys, urllib.request
h = urllib.request.ProxyHandler({})
print(urllib.request.build_opener(h).open(sys.argv[1], timeout=10).read().decode())' \
    "http://127.0.0.1:$metrics_port/metrics"
}
missing=$(chroot "$root" ldd /usr/sbin/specactd /usr/bin/specactctl | grep "not found" || true)
[[ -z $missing ]] || fail "runtime libraries missing in the rootfs: $missing"

# The container's system bus socket appears here, so host tools can reach it.
busdir="$work/bus"
mkdir -p "$busdir"
chmod 0755 "$work" "$busdir"
export DBUS_SYSTEM_BUS_ADDRESS="unix:path=$busdir/system_bus_socket"

# Global sysctls the catalogue may touch: remember them (host == container).
for f in /proc/sys/kernel/sched_autogroup_enabled /proc/sys/kernel/sched_cfs_bandwidth_slice_us \
         /proc/sys/kernel/sched_rr_timeslice_ms /proc/sys/kernel/timer_migration \
         /proc/sys/kernel/numa_balancing; do
  [[ -r $f ]] && saved_sysctls+=("$f=$(cat "$f")")
done

step "boot the container"
# API_VFS_WRITABLE: /proc/sys and /sys writable (the daemon writes tunables);
# all capabilities and the bpf/perf_event_open syscalls for the BPF sampler.
SYSTEMD_NSPAWN_API_VFS_WRITABLE=1 systemd-nspawn --quiet --register=no --keep-unit -b \
  -D "$root" -M "specact-e2e-$$" --capability=all \
  --system-call-filter="bpf perf_event_open" \
  --bind="$busdir:/run/dbus" --console=pipe </dev/null >"$work/console.log" 2>&1 &
nspawn_pid=$!
for _ in $(seq 1 100); do
  leader=$( (ps --ppid "$nspawn_pid" -o pid=,comm= 2>/dev/null || true) | awk '$2 == "systemd" {print $1; exit}')
  [[ -n $leader ]] && break
  kill -0 "$nspawn_pid" 2>/dev/null || { cat "$work/console.log"; fail "systemd-nspawn exited"; }
  sleep 0.2
done
[[ -n $leader ]] || { cat "$work/console.log"; fail "container init did not appear"; }
in_ct() { nsenter --target "$leader" --mount --uts --ipc --net --pid --cgroup -- "$@"; }
state=""
for _ in $(seq 1 120); do
  state=$(in_ct systemctl is-system-running 2>/dev/null || true)
  [[ $state == running || $state == degraded ]] && break
  sleep 0.5
done
[[ $state == running || $state == degraded ]] || { tail -50 "$work/console.log"; fail "container did not boot (state '$state')"; }
step "container up ($state)"
[[ -S $busdir/system_bus_socket ]] || fail "container system bus socket not visible on the host"

step "systemd-analyze verify"
# --man=no: this minimal rootfs has no man(1) to check Documentation= with
# (run_package_e2e.sh verifies with man-db installed).
verify=$(in_ct systemd-analyze verify --man=no /lib/systemd/system/specactd.service 2>&1 || true)
[[ -z $verify ]] || fail "systemd-analyze verify is not clean: $verify"

step "systemctl start specactd"
if ! in_ct systemctl start specactd; then
  in_ct journalctl -u specactd --no-pager -n 50 || true
  fail "systemctl start specactd failed"
fi
[[ $(in_ct systemctl is-active specactd) == active ]] || fail "specactd not active"
step "specactd active"
metrics=$(scrape) || fail "no Prometheus metrics on 127.0.0.1:$metrics_port"
grep -qx 'specact_state{state="stopped"} 1' <<<"$metrics" || fail "metrics do not show the state: $(head -20 <<<"$metrics")"
step "metrics served on 127.0.0.1:$metrics_port"

ctl() { "$build/ctl/specactctl" "$@"; }
ctl_nobody() { setpriv --reuid=nobody --regid=nogroup --clear-groups "$build/ctl/specactctl" "$@"; }

out=$(ctl status) || fail "specactctl status (root) failed: $out"
# Here-strings, not pipes into `grep -q` / `head`: they exit early, and under
# pipefail the writer's SIGPIPE would fail the step.
head -3 <<<"$out"
json=$(ctl status --json) || fail "specactctl status --json failed"
grep -q '"state"' <<<"$json" || fail "status --json has no state"
out=$(ctl_nobody status) || fail "specactctl status as nobody failed"
rc=0; err=$(ctl_nobody start 2>&1) || rc=$?
[[ $rc == 1 && $err == *"permission denied"* ]] || fail "nobody was not refused 'start' (rc=$rc: $err)"
rc=0; err=$(ctl_nobody pin task.nice=5 2>&1) || rc=$?
[[ $rc == 1 && $err == *"permission denied"* ]] || fail "nobody was not refused 'pin' (rc=$rc: $err)"
step "policy: nobody reads, cannot change"

step "target a workload, pin a knob, stop, check restore"
in_ct systemd-run --quiet --unit=specact-demo /usr/libexec/specact/specact-workload \
  --threads 1 --hogs 2 --period-us 2000 --work-us 300 >/dev/null || fail "cannot start the demo workload"
sleep 1
demo_pid=$(in_ct systemctl show -p MainPID --value specact-demo.service)
[[ $demo_pid =~ ^[0-9]+$ && $demo_pid != 0 ]] || fail "demo workload has no main pid"
nice_of() { in_ct ps -o ni= -p "$1" | tr -d ' '; }
nice_before=$(nice_of "$demo_pid")
ctl target --unit specact-demo.service || fail "specactctl target failed"
ctl pin task.nice=7 || fail "specactctl pin task.nice=7 failed"
for _ in $(seq 1 20); do [[ $(nice_of "$demo_pid") == 7 ]] && break; sleep 0.25; done
[[ $(nice_of "$demo_pid") == 7 ]] || fail "pinned nice not applied (nice is $(nice_of "$demo_pid"))"
ctl watch --json --count 2 >"$work/watch.jsonl" || fail "specactctl watch --json --count 2 failed"
[[ $(grep -c '"kind":"window"' "$work/watch.jsonl") == 2 ]] || fail "watch did not stream 2 windows"
# The eBPF sampler must see the target inside the container: the daemon's pids
# are the container's, the kernel's events carry global tgids (translated by
# the sampler). ~500 releases a second, slowed by nice 7 against 2 hogs.
samples=$(grep -o '"service":{"count":[0-9]*' "$work/watch.jsonl" | awk -F: '{s += $NF} END {print s + 0}' || true)
step "watch streamed 2 windows; service samples in them: $samples"
((samples >= 100)) || fail "the sampler measured only $samples service samples of the target in 2 windows"
out=$(ctl status) || fail "specactctl status failed"
head -4 <<<"$out"
status_text=$(in_ct systemctl show -p StatusText --value specactd)
[[ -n $status_text ]] || fail "no sd_notify STATUS= text"
step "sd_notify STATUS: $status_text"

# A crash: SIGKILL the daemon. ExecStopPost must put the knob back and
# Restart=on-failure must bring the service back.
old_pid=$(in_ct systemctl show -p MainPID --value specactd)
in_ct kill -KILL "$old_pid"
new_pid=""
for _ in $(seq 1 40); do
  new_pid=$(in_ct systemctl show -p MainPID --value specactd)
  [[ $(in_ct systemctl is-active specactd || true) == active && $new_pid != 0 && $new_pid != "$old_pid" ]] && break
  sleep 0.25
done
[[ $new_pid != 0 && $new_pid != "$old_pid" ]] || fail "specactd was not restarted after SIGKILL"
# The new instance keeps what was set over D-Bus (settings.json): the target
# and the pin are in force again.
for _ in $(seq 1 20); do [[ $(nice_of "$demo_pid") == 7 ]] && break; sleep 0.25; done
[[ $(nice_of "$demo_pid") == 7 ]] || fail "the saved pin was not in force after the restart ($(nice_of "$demo_pid"))"
status_json=$(ctl status --json) || fail "status after the restart failed"
py() { python3 -c "$1" "${@:2}"; }
py 'import json, sys
s = json.loads(sys.argv[1])
assert s["target"] == {"unit": "specact-demo.service"}, s["target"]
assert s["pinned"] == ["task.nice"], s["pinned"]
assert s["settings"]["target"]["source"] == "saved", s["settings"]
assert s["settings"]["pins"]["source"] == "saved", s["settings"]' "$status_json" ||
  fail "status after the restart does not show the saved target and pin: $status_json"
# ExecStopPost restored the crashed run's journal before the new instance
# started: it found nothing to recover, and read the original nice as its
# baseline (then applied the saved pin).
in_ct cat /var/lib/specactd/history.jsonl >"$work/history-crash.jsonl"
py 'import json, sys
lines = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
start = max(i for i, e in enumerate(lines) if e["type"] == "started")
run = lines[start:]
types = [e["type"] for e in run]
assert "recovered" not in types, "the new run had to recover a journal: ExecStopPost did not restore"
assert "settings_restored" in types, types
session = next(e for e in run if e["type"] == "session_started")
assert str(session["baseline"]["task.nice"]) == sys.argv[2], session["baseline"]' \
  "$work/history-crash.jsonl" "$nice_before" ||
  fail "the run after SIGKILL does not show ExecStopPost's restore and the restored settings"
step "after SIGKILL: restored by ExecStopPost, restarted (pid $old_pid -> $new_pid), target and pin kept (nice 7 again)"
grep -qx 'specact_knob_value{knob="task.nice",config="current"} 7' <<<"$(scrape)" ||
  fail "metrics do not show the pinned task.nice=7"

# Structured journal: a revert by the user is an entry with the knob, the old
# and new value and who did it, found by its field; its line is not also
# printed on stderr. Paused first, so no agent moves task.nice meanwhile.
ctl pause >/dev/null || fail "pause failed"
ctl unpin task.nice >/dev/null || fail "unpin failed"
ctl revert >/dev/null || fail "revert failed"
[[ $(nice_of "$demo_pid") == "$nice_before" ]] || fail "revert did not put nice back"
sleep 1  # journald files what it got
in_ct journalctl -u specactd SPECACT_EVENT=reverted -o json --no-pager >"$work/reverted.json" ||
  fail "journalctl SPECACT_EVENT=reverted failed"
in_ct journalctl -u specactd -o json --no-pager >"$work/journal.json" || fail "journalctl failed"
python3 - "$work/reverted.json" "$work/journal.json" "$nice_before" <<'PY' || fail "structured journal entries are not as documented"
import json, sys
reverted = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
entries = [e for e in reverted if e.get("SPECACT_KNOB") == "task.nice"]
assert len(entries) == 1, f"task.nice reverted entries: {reverted}"
e = entries[0]
want = {"SPECACT_EVENT": "reverted", "SPECACT_WHO": "user", "SPECACT_OLD": "7",
        "SPECACT_NEW": sys.argv[3], "SPECACT_WHY": "revert to baseline",
        "MESSAGE_ID": "37146415c54a49339124f56a16dc5e3a", "_SYSTEMD_UNIT": "specactd.service",
        "SYSLOG_IDENTIFIER": "specactd", "PRIORITY": "5"}
for k, v in want.items():
    assert e.get(k) == v, f"{k}: {e.get(k)!r}, wanted {v!r} in {e}"
# One entry per changed knob, all of one event (SPECACT_SEQ); no plain line.
lines = [j for j in map(json.loads, filter(str.strip, open(sys.argv[2])))
         if str(j.get("MESSAGE", "")).startswith("reverted to baseline")]
plain = [j for j in lines if "SPECACT_EVENT" not in j]
assert not plain, f"the revert's line was also printed on stderr: {plain}"
assert {j["SPECACT_SEQ"] for j in lines} == {e["SPECACT_SEQ"]}, lines
print("journal:", e["MESSAGE"], {k: e[k] for k in want})
PY
by_id=$(in_ct journalctl -u specactd MESSAGE_ID=37146415c54a49339124f56a16dc5e3a -o cat --no-pager | wc -l)
((by_id >= 1)) || fail "journalctl MESSAGE_ID=... found nothing"
step "structured journal: reverted entry with SPECACT_KNOB/OLD/NEW/WHO, found by field and MESSAGE_ID"
ctl resume >/dev/null || fail "resume failed"
ctl pin task.nice=7 >/dev/null || fail "pin after revert failed"
for _ in $(seq 1 20); do [[ $(nice_of "$demo_pid") == 7 ]] && break; sleep 0.25; done
[[ $(nice_of "$demo_pid") == 7 ]] || fail "pinned nice not applied after the revert"

in_ct journalctl -u specactd --no-pager -n 15 -o cat | cut -c1-200 || true
in_ct systemctl stop specactd
[[ $(in_ct systemctl is-active specactd || true) != active ]] || fail "specactd still active after stop"
nice_after=$(nice_of "$demo_pid")
[[ $nice_after == "$nice_before" ]] || fail "nice not restored after stop ($nice_before -> $nice_after)"
for kv in "${saved_sysctls[@]}"; do
  f=${kv%%=*}; v=${kv#*=}
  [[ $(cat "$f") == "$v" ]] || fail "$f not restored after stop ($v -> $(cat "$f"))"
done
rc=0; ctl status >/dev/null 2>&1 || rc=$?
[[ $rc == 3 ]] || fail "specactctl status after stop should exit 3, got $rc"
step "restored: nice $nice_before, ${#saved_sysctls[@]} global sysctls unchanged; status exits 3"

# Bus activation: a plain call (not specactctl, which never auto-starts) to
# the stopped daemon starts specactd.service through the activation file.
busctl --system call org.specact.Daemon1 /org/specact/Daemon1 org.specact.Daemon1 GetStatus \
  >/dev/null || fail "bus activation call failed"
[[ $(in_ct systemctl is-active specactd || true) == active ]] || fail "bus activation did not start specactd"
in_ct systemctl stop specactd
step "bus activation started specactd.service"
step "PASS"
