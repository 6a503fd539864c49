#!/usr/bin/env python3
"""bench/footprint.py: specactd's own overhead once it has converged.

Starts a private dbus-daemon (the project's real policy), the demo workload and
specactd tuning it, waits for the engine's "converged" event, then measures:
  * RSS (median of one sample per second) and VmHWM of specactd;
  * specactd's CPU (utime + stime over the interval / wall time, % of one CPU);
  * the D-Bus round trip of the read-only GetStatus, N calls over one
    connection (a minimal stdlib D-Bus client: no fork per call), and
    `specactctl status` end to end (process start included).
In-kernel eBPF time is charged to the traced tasks, not to specactd: see
bench/sampler_overhead.sh for that cost.

Usage: bench/footprint.py [--build-dir build] [--seconds N] [--calls N] [--json]
As a module: footprint.measure(build_dir, seconds=30, calls=1000) -> dict;
             footprint.markdown(result) -> str.
"""
import argparse
import json
import math
import os
import pathlib
import shutil
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
BUS_NAME = "org.specact.Daemon1"
OBJECT = "/org/specact/Daemon1"


def log(msg):
    print(f"[footprint {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------- D-Bus client

class DBusClient:
    """Just enough D-Bus (AUTH EXTERNAL, Hello, argument-less method calls) on one
    unix socket: a round trip timed without a process start per call, and no
    python3-dbus (not importable from a pyenv or venv Python)."""

    def __init__(self, address):
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.connect(address.split("unix:path=", 1)[1].split(",")[0])
        self.sock.sendall(b"\0AUTH EXTERNAL %s\r\n" % str(os.getuid()).encode().hex().encode())
        line = b""
        while not line.endswith(b"\r\n"):  # the bus sends nothing else before BEGIN
            line += self._recv(1)
        if not line.startswith(b"OK "):
            raise RuntimeError(f"D-Bus authentication refused: {line!r}")
        self.sock.sendall(b"BEGIN\r\n")
        self.serial = 0
        self.call("org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus", "Hello")

    def call(self, dest, path, iface, member):
        """A method call without arguments; returns the reply's body (bytes)."""
        self.serial += 1
        msg = bytearray(b"l\x01\x00\x01" + struct.pack("<III", 0, self.serial, 0))
        for code, sig, val in ((1, b"o", path), (2, b"s", iface), (3, b"s", member), (6, b"s", dest)):
            msg += bytes(-len(msg) % 8) + bytes([code, 1]) + sig + b"\0"  # (yv) structs are 8-aligned
            msg += struct.pack("<I", len(val)) + val.encode() + b"\0"  # already 4-aligned here
        struct.pack_into("<I", msg, 12, len(msg) - 16)  # header fields' array length
        self.sock.sendall(msg + bytes(-len(msg) % 8))
        while True:  # skip what is not our reply (the bus' NameAcquired signal)
            mtype, fields, body = self._read()
            if fields.get(5) == self.serial:  # REPLY_SERIAL
                if mtype == 3:
                    raise RuntimeError(f"{member}: {fields.get(4)}")  # ERROR_NAME
                return body

    def _recv(self, n):
        buf = self.sock.recv(n, socket.MSG_WAITALL)
        if len(buf) < n:
            raise RuntimeError("D-Bus connection closed")
        return buf

    def _read(self):
        head = self._recv(16)
        e = "<" if head[:1] == b"l" else ">"
        body_len, _, fields_len = struct.unpack(e + "III", head[4:])
        msg = head + self._recv(fields_len + -(16 + fields_len) % 8 + body_len)
        pos, fields = 16, {}
        while pos < 16 + fields_len:  # header fields: code, signature, value
            pos += -pos % 8
            code, sig = msg[pos], msg[pos + 2:pos + 2 + msg[pos + 1]]
            pos += 3 + len(sig)
            if sig == b"g":
                fields[code], pos = msg[pos + 1:pos + 1 + msg[pos]], pos + msg[pos] + 2
                continue
            pos += -pos % 4  # u, s, o
            (v,) = struct.unpack_from(e + "I", msg, pos)
            fields[code], pos = (v, pos + 4) if sig == b"u" else (msg[pos + 4:pos + 4 + v].decode(), pos + 5 + v)
        return head[1], fields, msg[len(msg) - body_len:]

    def get_status(self, parse=True):
        body = self.call(BUS_NAME, OBJECT, BUS_NAME, "GetStatus")  # signature "s"
        return json.loads(body[4:4 + struct.unpack_from("<I", body)[0]]) if parse else body

    def close(self):
        self.sock.close()


# ---------------------------------------------------------------- helpers

def percentile(xs, q):
    """Nearest rank: with 1000 calls p99 is the 990th fastest."""
    return sorted(xs)[max(0, math.ceil(q / 100 * len(xs)) - 1)]


def latency_summary(ms):
    return {"calls": len(ms), "p50_ms": round(percentile(ms, 50), 3),
            "p99_ms": round(percentile(ms, 99), 3), "max_ms": round(max(ms), 3)}


def proc_status_kib(pid, key):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return None


def proc_cpu_s(pid):
    # utime and stime are fields 14 and 15; split after the ")" because comm may hold spaces.
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def bus_config(work):
    # The template scripts/demo.sh and the D-Bus tests use: Debian's default policy plus ours.
    template = (ROOT / "scripts/private-bus.conf.in").read_text()
    return (template.replace("@SOCKET@", f"{work}/bus")
            .replace("@POLICY@", str(ROOT / "systemd/org.specact.Daemon1.conf")))


def stop(proc, timeout=15):
    """SIGTERM by pid (specactd restores its knobs on it), SIGKILL if it hangs."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return proc.returncode


def history(path):
    try:
        return [json.loads(l) for l in path.read_text().splitlines() if l.strip()]
    except (FileNotFoundError, json.JSONDecodeError):  # not written yet, or a line half written
        return []


# ---------------------------------------------------------------- measuring

def measure(build_dir=ROOT / "build", seconds=30, calls=1000, ctl_calls=100, converge_timeout=60):
    build = pathlib.Path(build_dir)
    work = pathlib.Path(tempfile.mkdtemp(prefix="specact-footprint-"))
    work.chmod(0o755)
    procs = []  # stopped in reverse: daemon, workload, bus
    daemon = None
    try:
        (work / "bus.conf").write_text(bus_config(work))
        with open(work / "bus.log", "w") as err:  # its warnings (no "specact" group) are expected
            procs.append(subprocess.Popen(["dbus-daemon", f"--config-file={work}/bus.conf",
                                           "--nofork", "--nopidfile", "--nosyslog"], stderr=err))
        bus = f"unix:path={work}/bus"
        for _ in range(50):
            if (work / "bus").exists():
                break
            time.sleep(0.1)
        workload = subprocess.Popen([str(build / "tests/workloads/specact-workload"), "--hogs", "4",
                                     "--period-us", "2000", "--work-us", "300"], stdout=subprocess.DEVNULL)
        procs.append(workload)
        time.sleep(0.5)
        cfg = {"target": {"pid": workload.pid}, "objective": {"metric": "service_p95"},
               "window_ms": 1000, "mode": "speculative", "knobs": {"allow": ["task.slice_us"]},
               "speculator": {"backend": "builtin", "delay_ms": 300},
               "actor": {"backend": "builtin", "delay_ms": 2000},
               "state_dir": str(work / "state"), "dbus": {"bus_address": bus, "required": True}}
        (work / "config.json").write_text(json.dumps(cfg, indent=2))
        t0 = time.monotonic()
        with open(work / "daemon.log", "w") as err:
            daemon = subprocess.Popen([str(build / "daemon/specactd"), "run", "--config", str(work / "config.json")],
                                      stderr=err)
        procs.append(daemon)

        # Converged: the engine's event; its time_ns is CLOCK_MONOTONIC, like time.monotonic().
        converged_after = None
        while converged_after is None and time.monotonic() - t0 < converge_timeout:
            if daemon.poll() is not None:
                raise RuntimeError(f"specactd exited {daemon.returncode}: {(work / 'daemon.log').read_text()[-2000:]}")
            ev = next((e for e in history(work / "state/history.jsonl") if e.get("type") == "converged"), None)
            if ev:
                converged_after = ev["time_ns"] / 1e9 - t0 if "time_ns" in ev else time.monotonic() - t0
            time.sleep(0.2)
        log(f"converged after {converged_after:.1f} s" if converged_after is not None
            else f"no converged event within {converge_timeout} s; measuring anyway")

        # Idle footprint first, so the status calls below do not count in the CPU figure.
        rss, cpu0, w0 = [], proc_cpu_s(daemon.pid), time.monotonic()
        while time.monotonic() - w0 < seconds:
            rss.append(proc_status_kib(daemon.pid, "VmRSS"))
            time.sleep(1.0)
        cpu1, w1 = proc_cpu_s(daemon.pid), time.monotonic()  # 10 ms ticks: +-0.03 % over 30 s
        hwm = proc_status_kib(daemon.pid, "VmHWM")

        client = DBusClient(bus)
        state = client.get_status()["state"]  # warm-up, and proof the reply parses
        # Interleaved with the same call to the bus itself: the control says how much of the
        # tail is the bus and the client waiting for a CPU rather than specactd.
        ms, bus_ms = [], []
        for _ in range(calls):
            t = time.perf_counter_ns()
            client.get_status(parse=False)  # the round trip only, not Python's JSON parsing
            ms.append((time.perf_counter_ns() - t) / 1e6)
            t = time.perf_counter_ns()
            client.call("org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus", "GetId")
            bus_ms.append((time.perf_counter_ns() - t) / 1e6)
        client.close()
        ctl = []
        for _ in range(ctl_calls):
            t = time.perf_counter_ns()
            subprocess.run([str(build / "ctl/specactctl"), "--bus", bus, "status"],
                           stdout=subprocess.DEVNULL, check=True)
            ctl.append((time.perf_counter_ns() - t) / 1e6)

        stop(daemon)
        events = history(work / "state/history.jsonl")
        restored = next((e for e in reversed(events) if e.get("type") in ("restored", "left_in_place")), {})
        # Converged is not frozen: the agents keep probing at a backed-off cadence.
        moves = sum(1 for e in events if e.get("type") == "applied" and w0 <= e.get("time_ns", 0) / 1e9 <= w1)
        s, b, c = latency_summary(ms), latency_summary(bus_ms), latency_summary(ctl)
        return {"rss_kib": statistics.median(rss), "hwm_kib": hwm,
                "cpu_percent": round((cpu1 - cpu0) / (w1 - w0) * 100, 2),
                "converged": converged_after is not None,
                # When it never converged: the timeout after which it was measured anyway.
                "converged_after_s": round(converged_after if converged_after is not None else converge_timeout, 1),
                "measured_s": round(w1 - w0, 1), "state": state, "knob_moves_while_measured": moves,
                "status_calls": s["calls"], "status_p50_ms": s["p50_ms"],
                "status_p99_ms": s["p99_ms"], "status_max_ms": s["max_ms"],
                "status_client": "GetStatus (JSON reply) via a private dbus-daemon, one connection, "
                                 "minimal stdlib Python client, no fork per call",
                "bus_getid": dict(b, client="org.freedesktop.DBus.GetId, same client, interleaved: the control"),
                "specactctl_status": dict(c, client="specactctl status end to end (process start, connect, "
                                                    "NameHasOwner, GetStatus, table output)"),
                "restored_ok": restored.get("ok"), "daemon_exit": daemon.returncode}
    finally:
        for p in reversed(procs):
            stop(p)
        if daemon is not None and daemon.returncode == -signal.SIGKILL:
            # It hung on SIGTERM: put its journalled knob values back ourselves.
            subprocess.run([str(build / "daemon/specactd"), "restore", "--state-dir", str(work / "state")])
        shutil.rmtree(work, ignore_errors=True)


def markdown(r):
    b, c = r["bus_getid"], r["specactctl_status"]
    conv = (f"converged after {r['converged_after_s']:.0f} s" if r["converged"]
            else f"no convergence within {r['converged_after_s']:.0f} s")
    return "\n".join([
        "## Daemon footprint", "",
        f"specactd tuning `specact-workload --hogs 4 --period-us 2000 --work-us 300` (speculative, builtin agents), "
        f"{conv}, then measured for {r['measured_s']:.0f} s (state `{r['state']}` at the end; "
        f"{r['knob_moves_while_measured']} knob moves meanwhile: converged agents still probe, less often).", "",
        "| metric | value |", "|---|---:|",
        f"| RSS, median of 1 s samples | {r['rss_kib'] / 1024:.1f} MiB |",
        f"| peak RSS (VmHWM) | {r['hwm_kib'] / 1024:.1f} MiB |",
        f"| CPU (utime + stime, % of one CPU) | {r['cpu_percent']:.2f} % |",
        f"| `GetStatus` round trip p50 / p99 / max ({r['status_calls']} calls) | "
        f"{r['status_p50_ms']:.3f} / {r['status_p99_ms']:.3f} / {r['status_max_ms']:.3f} ms |",
        f"| control: the bus' own `GetId`, interleaved, p50 / p99 / max | "
        f"{b['p50_ms']:.3f} / {b['p99_ms']:.3f} / {b['max_ms']:.3f} ms |",
        f"| `specactctl status` end to end p50 / p99 / max ({c['calls']} calls) | "
        f"{c['p50_ms']:.2f} / {c['p99_ms']:.2f} / {c['max_ms']:.2f} ms |", "",
        f"Round trips: {r['status_client']}. The workload's hogs keep every CPU busy, so round trips include "
        "waiting for a CPU. CPU excludes in-kernel eBPF time, charged to the traced tasks "
        "(bench/sampler_overhead.sh measures it).", ""])


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build-dir", default=str(ROOT / "build"))
    ap.add_argument("--seconds", type=float, default=30, help="converged interval measured (default 30)")
    ap.add_argument("--calls", type=int, default=1000, help="GetStatus calls timed (default 1000)")
    ap.add_argument("--ctl-calls", type=int, default=100, help="specactctl status runs timed (default 100)")
    ap.add_argument("--converge-timeout", type=float, default=60, help="seconds to wait for convergence (default 60)")
    ap.add_argument("--json", action="store_true", help="print the result as JSON instead of Markdown")
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("bench/footprint.py: needs root (BPF and per-task scheduler attributes)")
    if args.seconds < 1 or args.calls < 1 or args.ctl_calls < 1:
        sys.exit("bench/footprint.py: --seconds, --calls and --ctl-calls must be >= 1")
    r = measure(args.build_dir, args.seconds, args.calls, args.ctl_calls, args.converge_timeout)
    print(json.dumps(r, indent=1) if args.json else markdown(r))


if __name__ == "__main__":
    main()
