#!/usr/bin/env bash
# End-to-end test of the Debian package in a real systemd: boots a cached
# minimal Debian 12 (plus polkitd, man-db, bash-completion) with
# systemd-nspawn, installs the built .deb with `apt install ./specact_*.deb`
# inside it, and checks
#   - specactd.service is enabled and running and passes systemd-analyze
#     verify (Documentation= man pages included), the group specact exists, the
#     state directory is 0700 root, the man pages render, the completion loads
#     and completes knob names from the running daemon,
#   - polkit decides for callers the bus policy lets through: a member of
#     specact may change settings, a member of a group admitted by the bus
#     policy only is refused until a polkit rule delegates to it, and a
#     caller in neither is refused by the bus policy,
#   - `systemctl restart specactd` keeps the target set with specactctl and
#     its pins, and the config learned for it (learned.json) is in force again
#     within 2 windows (warm start),
#   - after tuning (pinned nice and policy on a workload, the agents moving
#     the slice), `apt remove` leaves every kernel setting restored (global
#     sysctls as found) and keeps the state and
#     the conffile, and `apt purge` removes both.
#
# Usage: run_package_e2e.sh DEB WORKLOAD   (as root; WORKLOAD is the built
# specact-workload; env SPECACT_E2E_CACHE, default /var/cache/specact-e2e)
set -euo pipefail
deb=$(realpath "${1:?usage: run_package_e2e.sh DEB WORKLOAD}")
workload=$(realpath "${2:?usage: run_package_e2e.sh DEB WORKLOAD}")
here=$(dirname "$(realpath "$0")")
cache=${SPECACT_E2E_CACHE:-/var/cache/specact-e2e}
t0=$(date +%s)
step() { echo "[pkg-e2e +$(( $(date +%s) - t0 ))s] $*"; }
fail() { echo "PKG-E2E FAIL: $*" >&2; exit 1; }

[[ $(id -u) == 0 ]] || fail "needs root"
[[ -f $deb ]] || fail "no package at $deb (build it: dpkg-buildpackage -us -uc -b)"
command -v systemd-nspawn >/dev/null || fail "systemd-nspawn missing (apt install systemd-container)"

step "rootfs"
base=$(SPECACT_E2E_EXTRA_PACKAGES="polkitd libpam-systemd man-db bash-completion" "$here/make_rootfs.sh" "$cache")
step "rootfs ready: $base"

work=$(mktemp -d /var/tmp/specact-pkg-e2e.XXXXXX)
nspawn_pid=""
leader=""
saved_sysctls=()
cleanup() {
  set +e
  if [[ -n $nspawn_pid ]] && kill -0 "$nspawn_pid" 2>/dev/null; then
    kill -TERM "$nspawn_pid"
    for _ in $(seq 1 40); do kill -0 "$nspawn_pid" 2>/dev/null || break; sleep 0.5; done
    if kill -0 "$nspawn_pid" 2>/dev/null; then
      [[ -n $leader ]] && kill -KILL "$leader" 2>/dev/null
      sleep 0.5
      kill -KILL "$nspawn_pid" 2>/dev/null
    fi
    wait "$nspawn_pid" 2>/dev/null
  fi
  [[ -n $leader ]] && kill -0 "$leader" 2>/dev/null && kill -KILL "$leader"
  # Global sysctls are shared with the host: put back any the package left.
  for kv in "${saved_sysctls[@]}"; do
    f=${kv%%=*}; v=${kv#*=}
    [[ $(cat "$f" 2>/dev/null) == "$v" ]] || echo "$v" >"$f" 2>/dev/null
  done
  rm -rf "$work"
}
trap cleanup EXIT

step "copy rootfs, add the package and the demo workload"
cp -a "$base" "$work/root"
root="$work/root"
# Not /tmp: the booted container mounts a tmpfs over it.
mkdir -p "$root/root/pkg"
cp "$deb" "$root/root/pkg/"
debname=$(basename "$deb")
install -m 0755 "$workload" "$root/usr/local/bin/specact-workload"

for f in /proc/sys/kernel/sched_autogroup_enabled /proc/sys/kernel/sched_cfs_bandwidth_slice_us \
         /proc/sys/kernel/sched_rr_timeslice_ms /proc/sys/kernel/timer_migration \
         /proc/sys/kernel/numa_balancing; do
  [[ -r $f ]] && saved_sysctls+=("$f=$(cat "$f")")
done

step "boot the container"
SYSTEMD_NSPAWN_API_VFS_WRITABLE=1 systemd-nspawn --quiet --register=no --keep-unit -b \
  -D "$root" -M "specact-pkg-$$" --capability=all \
  --system-call-filter="bpf perf_event_open" \
  --console=pipe </dev/null >"$work/console.log" 2>&1 &
nspawn_pid=$!
for _ in $(seq 1 100); do
  leader=$( (ps --ppid "$nspawn_pid" -o pid=,comm= 2>/dev/null || true) | awk '$2 == "systemd" {print $1; exit}')
  [[ -n $leader ]] && break
  kill -0 "$nspawn_pid" 2>/dev/null || { cat "$work/console.log"; fail "systemd-nspawn exited"; }
  sleep 0.2
done
[[ -n $leader ]] || { cat "$work/console.log"; fail "container init did not appear"; }
# A clean environment: nothing of the host's (bus address, locale) leaks in.
in_ct() {
  nsenter --target "$leader" --mount --uts --ipc --net --pid --cgroup -- \
    env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 \
    TERM=dumb DEBIAN_FRONTEND=noninteractive "$@"
}
state=""
for _ in $(seq 1 120); do
  state=$(in_ct systemctl is-system-running 2>/dev/null || true)
  [[ $state == running || $state == degraded ]] && break
  sleep 0.5
done
[[ $state == running || $state == degraded ]] || { tail -50 "$work/console.log"; fail "container did not boot (state '$state')"; }
step "container up ($state)"

step "apt install ./$debname"
in_ct sh -c "cd /root/pkg && apt install -y ./$debname" >"$work/apt-install.log" 2>&1 ||
  { cat "$work/apt-install.log"; fail "apt install failed"; }
grep -E "^(Setting up|Unpacking) specact" "$work/apt-install.log" || true

enabled=$(in_ct systemctl is-enabled specactd || true)
[[ $enabled == enabled ]] || fail "specactd.service is '$enabled' after install, not enabled"
active=""
for _ in $(seq 1 40); do
  active=$(in_ct systemctl is-active specactd || true)
  [[ $active == active ]] && break
  sleep 0.25
done
[[ $active == active ]] || { in_ct journalctl -u specactd --no-pager -n 30; fail "specactd is '$active' after install"; }
step "unit enabled and running"
# With man-db here, verify checks the unit's Documentation= pages too.
verify=$(in_ct systemd-analyze verify /lib/systemd/system/specactd.service 2>&1 || true)
[[ -z $verify ]] || fail "systemd-analyze verify is not clean: $verify"

in_ct getent group specact >/dev/null || fail "group specact does not exist after install"
perm=$(in_ct stat -c '%a %U %G' /var/lib/specactd) || fail "/var/lib/specactd missing"
[[ $perm == "700 root root" ]] || fail "/var/lib/specactd is '$perm', want '700 root root'"
in_ct test -f /usr/lib/sysusers.d/specact.conf || fail "sysusers.d entry missing"
step "group specact exists ($(in_ct getent group specact)); /var/lib/specactd $perm"

for page in "1 specactctl" "8 specactd" "5 specactd.json"; do
  # shellcheck disable=SC2086
  text=$(in_ct sh -c "MANWIDTH=80 man -P cat $page 2>&1") || fail "man $page failed: $text"
  name=${page#* }
  echo "$text" | grep -q "^NAME" || fail "man $page has no NAME section"
  echo "$text" | grep -q "$name - " || fail "man $page does not render its name line"
done
step "man pages render: $(in_ct sh -c 'MANWIDTH=80 man -P cat specactctl 2>/dev/null' | sed -n 4p | sed 's/^ *//')"

cat >"$root/root/complete.sh" <<'SH'
# Loads completions the way an interactive bash does (on demand), then
# completes the words given as arguments.
source /usr/share/bash-completion/bash_completion
# compopt only works inside a completion bash started itself; here it is a no-op.
compopt() { builtin compopt "$@" 2>/dev/null || true; }
_completion_loader "$1"
complete -p "$1" >/dev/null || { echo "no completion for $1"; exit 1; }
COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); COMP_LINE="$*"; COMP_POINT=${#COMP_LINE}
fn=$(complete -p "$1" | sed -n 's/.*-F \([^ ]*\).*/\1/p')
"$fn" "$1" "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"
printf '%s\n' "${COMPREPLY[@]}"
SH
out=$(in_ct bash /root/complete.sh specactctl mo) || fail "specactctl completion does not load: $out"
[[ $out == mode ]] || fail "completing 'specactctl mo' gave '$out'"
out=$(in_ct bash /root/complete.sh specactctl pin task.sl) || fail "knob completion failed: $out"
[[ $out == "task.slice_us=" ]] || fail "completing 'specactctl pin task.sl' gave '$out' (knob names from the daemon)"
out=$(in_ct bash /root/complete.sh specactd restore --f) || fail "specactd completion does not load: $out"
[[ $out == --force ]] || fail "completing 'specactd restore --f' gave '$out'"
step "completion loads (on demand); 'specactctl pin task.sl' completes to task.slice_us= from the daemon"

step "tune a workload"
in_ct systemd-run --quiet --unit=specact-demo /usr/local/bin/specact-workload \
  --threads 1 --hogs 2 --period-us 2000 --work-us 300 >/dev/null || fail "cannot start the demo workload"
sleep 1
demo_pid=$(in_ct systemctl show -p MainPID --value specact-demo.service)
[[ $demo_pid =~ ^[0-9]+$ && $demo_pid != 0 ]] || fail "demo workload has no main pid"
nice_of() { in_ct ps -o ni= -p "$1" | tr -d ' '; }
nice_before=$(nice_of "$demo_pid")
cls_of() { in_ct ps -o cls= -p "$1" | tr -d ' '; }
cls_before=$(cls_of "$demo_pid")
# Per-task settings of the container's own workload: nothing else on a shared
# machine touches them (global sysctls are checked as left alone below).
in_ct specactctl target --unit specact-demo.service || fail "specactctl target failed"
in_ct specactctl pin task.nice=7 || fail "pin task.nice=7 failed"
in_ct specactctl pin task.policy=batch || fail "pin task.policy=batch failed"
for _ in $(seq 1 20); do [[ $(nice_of "$demo_pid") == 7 && $(cls_of "$demo_pid") == B ]] && break; sleep 0.25; done
[[ $(nice_of "$demo_pid") == 7 ]] || fail "pinned nice not applied ($(nice_of "$demo_pid"))"
[[ $(cls_of "$demo_pid") == B ]] || fail "pinned policy not applied ($(cls_of "$demo_pid"))"
step "applied: nice $nice_before -> 7, policy $cls_before -> B (SCHED_BATCH)"

step "polkit"
in_ct useradd -m -G specact alice
in_ct groupadd ops
in_ct useradd -m -G ops bob
in_ct useradd -m carol
# A site bus policy that admits the group ops too: from then on polkit decides.
cat >"$root/etc/dbus-1/system.d/specact-ops.conf" <<'XML'
<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-BUS Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <policy group="ops">
    <allow send_destination="org.specact.Daemon1" send_interface="org.specact.Daemon1"/>
  </policy>
</busconfig>
XML
in_ct systemctl reload dbus
sleep 0.5
as() { local u=$1; shift; in_ct runuser -u "$u" -- "$@"; }
rc=0; out=$(as alice specactctl mode speculative 2>&1) || rc=$?
[[ $rc == 0 ]] || fail "alice (group specact) was refused: rc=$rc: $out"
in_ct busctl status org.freedesktop.PolicyKit1 >/dev/null 2>&1 || fail "polkitd is not on the container's bus"
# Until dbus-daemon has reloaded the drop-in, bob is refused by the bus
# policy; from then on by polkit, which the daemon logs (journald may lag).
polkit_refusals() { in_ct journalctl -u specactd --no-pager -o cat | grep -c "refused: polkit: not authorized" || true; }
by_polkit=0
for _ in $(seq 1 20); do
  before=$(polkit_refusals)
  rc=0; out=$(as bob specactctl mode speculative 2>&1) || rc=$?
  [[ $rc == 1 && $out == *"permission denied"* ]] || fail "bob (group ops, no polkit rule) was not refused: rc=$rc: $out"
  for _ in 1 2 3 4; do (( $(polkit_refusals) > before )) && break; sleep 0.25; done
  (( $(polkit_refusals) > before )) && { by_polkit=1; break; }
done
((by_polkit)) || fail "bob was refused, but never by polkit (the bus policy drop-in not loaded?)"
rc=0; out=$(as carol specactctl mode speculative 2>&1) || rc=$?
[[ $rc == 1 && $out == *"permission denied"* ]] || fail "carol (no group) was not refused: rc=$rc: $out"
cat >"$root/etc/polkit-1/rules.d/50-specact-ops.rules" <<'JS'
polkit.addRule(function(action, subject) {
    if (action.id == "org.specact.manage" && subject.isInGroup("ops"))
        return polkit.Result.YES;
});
JS
rc=1
for _ in $(seq 1 20); do
  rc=0; out=$(as bob specactctl mode speculative 2>&1) || rc=$?
  [[ $rc == 0 ]] && break
  sleep 0.25
done
[[ $rc == 0 ]] || fail "bob was still refused after a polkit rule delegated to ops: $out"
as carol specactctl status >/dev/null || fail "carol cannot read the status"
step "polkit: specact member allowed; ops refused by polkit, then allowed by a delegating rule; others refused by the bus policy; reading open"

step "restart: the target is kept and tuning starts from the remembered config"
# What the engine confirmed for the unit is in learned.json (warm start).
# Wait until it holds a config that moved a knob (the agents move the slice;
# the pins are the user's and are not learned).
learned_config() {
  in_ct cat /var/lib/specactd/learned.json 2>/dev/null | python3 -c 'import json, sys
try:
    doc = json.load(sys.stdin)
except ValueError:
    sys.exit(1)
for e in doc.get("entries", []):
    if e["key"] == {"unit": "specact-demo.service"} and e["config"]:
        print(json.dumps(e["config"], sort_keys=True))
        sys.exit(0)
sys.exit(1)'
}
remembered=""
for _ in $(seq 1 180); do remembered=$(learned_config) && break; sleep 1; done
[[ -n $remembered ]] || {
  in_ct journalctl -u specactd --no-pager -o cat -n 30 | cut -c1-200
  fail "no config that moves a knob was learned for specact-demo.service in 180 s"
}
step "learned for the unit: $remembered"
in_ct systemctl restart specactd || fail "systemctl restart specactd failed"
for _ in $(seq 1 40); do [[ $(in_ct systemctl is-active specactd || true) == active ]] && break; sleep 0.25; done
# Window 1 measures the baseline (the pins restored first); the remembered
# config goes in at its end, so it must be in force within 2 windows.
warm_ok=0
for _ in $(seq 1 40); do
  sleep 0.5
  in_ct cat /var/lib/specactd/history.jsonl >"$work/history-restart.jsonl" || continue
  python3 - "$work/history-restart.jsonl" "$remembered" <<'PY' && { warm_ok=1; break; }
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
start = max(i for i, e in enumerate(lines) if e["type"] == "started")
run = lines[start:]
windows = [i for i, e in enumerate(run) if e["type"] == "window"]
if len(windows) < 3:
    sys.exit(1)  # not yet
assert run[0]["target"] == {"unit": "specact-demo.service"}, run[0]
offers = [e for e in run if e["type"] == "warm_start"]
assert offers and offers[0]["applied"], f"no warm start: {offers}"
remembered = json.loads(sys.argv[2])
assert offers[0]["remembered"]["config"] == remembered, offers[0]
applied = next(i for i, e in enumerate(run) if e["type"] == "applied")
assert run[applied]["who"] == "warm_start", run[applied]
assert applied < windows[2], "the remembered config came after window 2"
for k, v in remembered.items():
    assert run[applied]["config"][k] == v, (k, run[applied]["config"])
print("warm start:", offers[0]["summary"])
PY
done
((warm_ok)) || {
  tail -c 4000 "$work/history-restart.jsonl"
  fail "after systemctl restart, the remembered config was not re-applied within 2 windows"
}
status_json=$(in_ct specactctl status --json) || fail "status after the restart failed"
python3 -c 'import json, sys
s = json.loads(sys.argv[1])
assert s["target"] == {"unit": "specact-demo.service"}, s["target"]
assert s["settings"]["target"]["source"] == "saved", s["settings"]' "$status_json" ||
  fail "the target was not kept across the restart: $status_json"
[[ $(nice_of "$demo_pid") == 7 ]] || fail "the pin was not kept across the restart"
step "restarted: target and pins kept, the remembered $remembered in force within 2 windows"

step "apt remove"
in_ct apt remove -y specact >"$work/apt-remove.log" 2>&1 || { cat "$work/apt-remove.log"; fail "apt remove failed"; }
[[ $(in_ct systemctl is-active specactd || true) != active ]] || fail "specactd still active after remove"
in_ct test ! -e /usr/sbin/specactd || fail "specactd still installed after remove"
nice_after=$(nice_of "$demo_pid")
[[ $nice_after == "$nice_before" ]] || fail "nice not restored by apt remove ($nice_before -> $nice_after)"
cls_after=$(cls_of "$demo_pid")
[[ $cls_after == "$cls_before" ]] || fail "policy not restored by apt remove ($cls_before -> $cls_after)"
for kv in "${saved_sysctls[@]}"; do
  f=${kv%%=*}; v=${kv#*=}
  # Global sysctls are shared with whatever else runs on this machine (other
  # test suites write them too, and restore them): give those a moment.
  for _ in $(seq 1 12); do [[ $(cat "$f") == "$v" ]] && break; sleep 0.25; done
  if [[ $(cat "$f") != "$v" ]]; then
    cat "$work/apt-remove.log"
    in_ct journalctl -u specactd --no-pager -o cat -n 40 | cut -c1-240
    in_ct ls -la /var/lib/specactd
    fail "$f not restored by apt remove ($v -> $(cat "$f"))"
  fi
done
in_ct test -d /var/lib/specactd || fail "apt remove deleted the state directory (only purge may)"
in_ct test -f /etc/specactd/specactd.json || fail "apt remove deleted the conffile"
step "removed: nice back to $nice_before, policy back to $cls_before, ${#saved_sysctls[@]} global sysctls as before; state and conffile kept"

step "apt purge"
in_ct apt purge -y specact >"$work/apt-purge.log" 2>&1 || { cat "$work/apt-purge.log"; fail "apt purge failed"; }
in_ct test ! -e /var/lib/specactd || fail "/var/lib/specactd survived apt purge"
in_ct test ! -e /etc/specactd || fail "/etc/specactd survived apt purge"
in_ct test ! -e /etc/systemd/system/multi-user.target.wants/specactd.service ||
  fail "the enablement symlink survived apt purge"
step "purged: state directory, configuration and enablement gone (group specact kept, as Debian does)"
in_ct systemctl stop specact-demo.service || true
step "PASS"
