"""Parsers for the clients' own output: the truth of bench/suite.

Each parser takes the text a client printed (or wrote to its log) and returns
plain dicts and lists; latencies are in microseconds, rates per second.
Percentiles over raw samples use the nearest rank (as specact-workload does);
over histograms, the bucket where the rank falls (cyclictest: 1 us buckets;
memcaslap: log2 buckets, interpolated linearly inside the bucket, so only
good to the bucket's width).  Unit tests: bench/tests/test_parsers.py, on
outputs captured from the real clients in bench/testdata.
"""
import json
import math
import re


class ParseError(ValueError):
    """The text is not the output the parser expects (named in the message)."""


def percentile(values, q):
    """Nearest-rank percentile (q in 0..1) of a list of numbers; None if empty."""
    vals = sorted(v for v in values if v is not None)
    if not vals:
        return None
    rank = max(1, math.ceil(q * len(vals)))
    return vals[rank - 1]


def latency_summary(values):
    """p50/p95/p99/max/count of raw latency samples (us)."""
    return {"p50_us": percentile(values, 0.50), "p95_us": percentile(values, 0.95),
            "p99_us": percentile(values, 0.99), "max_us": max(values) if values else None,
            "count": len(values)}


# ---------------------------------------------------------------- sysbench

_SYSBENCH_LINE = re.compile(
    r"^\[\s*(\d+)s \] thds: (\d+) eps: ([\d.]+) lat \(ms,95%\): ([\d.]+)")


def sysbench_intervals(text):
    """sysbench --report-interval=1 --percentile=95: one dict per report line,
    {t, threads, eps, p95_us}."""
    out = []
    for line in text.splitlines():
        m = _SYSBENCH_LINE.match(line.strip())
        if m:
            out.append({"t": float(m.group(1)), "threads": int(m.group(2)),
                        "eps": float(m.group(3)), "p95_us": float(m.group(4)) * 1000})
    return out


def sysbench_summary(text):
    """The final block of a finished sysbench run: events/s and latency (us)."""
    def num(pattern):
        m = re.search(pattern, text, re.M)
        return float(m.group(1)) if m else None
    eps = num(r"events per second:\s+([\d.]+)")
    if eps is None:
        raise ParseError("sysbench: no 'events per second' line (run not finished?)")
    ms = {k: num(rf"^\s+{k}:\s+([\d.]+)$") for k in ("min", "avg", "max")}
    p95 = num(r"95th percentile:\s+([\d.]+)")
    return {"eps": eps, "min_us": ms["min"] * 1000, "avg_us": ms["avg"] * 1000,
            "max_us": ms["max"] * 1000, "p95_us": p95 * 1000 if p95 is not None else None}


# ---------------------------------------------------------------- specact-workload

def workload_reports(text):
    """specact-workload --report-ms: its JSON lines ("interval" ones and the
    final "summary"), flattened to {kind, t, p50_us, p95_us, p99_us, count,
    wakeup_p95_us} of the completion latency (release -> work done)."""
    out = []
    for line in text.splitlines():
        line = line.strip()
        if not line.startswith("{"):
            continue
        try:
            j = json.loads(line)
        except ValueError:
            continue  # a line cut off by the kill
        kind = "summary" if j.get("summary") else "interval" if j.get("interval") else None
        if kind is None or "completion" not in j:
            continue
        c, w = j["completion"], j.get("wakeup", {})
        out.append({"kind": kind, "t": j.get("t"), "p50_us": c["p50_us"], "p95_us": c["p95_us"],
                    "p99_us": c["p99_us"], "count": c["count"], "wakeup_p95_us": w.get("p95_us")})
    return out


# ---------------------------------------------------------------- cyclictest

def cyclictest_histogram(text):
    """cyclictest -h N (-q): the 1 us histogram of thread 0 plus its footer.
    p50/p95/p99 are the bucket where the rank falls; when it falls into the
    overflow (latency >= N us) the value is N and `*_overflow` is True.
    `count` includes the overflows (cyclictest's own Total does not)."""
    counts = {}
    footer = {}
    in_hist = False
    for line in text.splitlines():
        s = line.strip()
        if s == "# Histogram":
            in_hist = True
            continue
        m = re.match(r"^(\d+) (\d+)(?:\s|$)", s)
        if in_hist and m:
            counts[int(m.group(1))] = counts.get(int(m.group(1)), 0) + int(m.group(2))
            continue
        m = re.match(r"^# (Total|Min Latencies|Avg Latencies|Max Latencies|Histogram Overflows):\s+(\d+)", s)
        if m:
            footer.setdefault(m.group(1), int(m.group(2)))  # thread 0's column
    if "Total" not in footer:
        raise ParseError("cyclictest: no '# Total:' line (was it run with -h and stopped by SIGINT/-D?)")
    overflows = footer.get("Histogram Overflows", 0)
    # cyclictest's Total counts the histogram only; overflowed cycles come on top.
    total = sum(counts.values()) + overflows
    limit = (max(counts) + 1) if counts else 0
    out = {"count": total, "min_us": footer.get("Min Latencies"), "avg_us": footer.get("Avg Latencies"),
           "max_us": footer.get("Max Latencies"), "overflows": overflows, "buckets": len(counts)}
    ordered = sorted(counts.items())
    for name, q in (("p50", 0.50), ("p95", 0.95), ("p99", 0.99)):
        rank = max(1, math.ceil(q * total))
        seen, value = 0, None
        for us, n in ordered:
            seen += n
            if seen >= rank:
                value = us
                break
        out[f"{name}_us"] = value if value is not None else limit
        out[f"{name}_overflow"] = value is None
    return out


_CYCLIC_VERBOSE = re.compile(r"^\s*(\d+):\s+(\d+):\s+(\d+)\s*$")


def cyclictest_verbose(text, interval_us, bin_s=1.0):
    """cyclictest -v: one 'thread: cycle: latency' line per cycle, binned by
    the cycle's nominal time (cycle x interval) into windows of bin_s:
    [{t, p50_us, p95_us, p99_us, max_us, count}] (t = the window's end)."""
    bins = {}
    for line in text.splitlines():
        m = _CYCLIC_VERBOSE.match(line)
        if m:
            t = int(m.group(2)) * interval_us / 1e6
            bins.setdefault(int(t // bin_s), []).append(int(m.group(3)))
    return [dict(latency_summary(v), t=(k + 1) * bin_s) for k, v in sorted(bins.items())]


# ---------------------------------------------------------------- pgbench

def pgbench_log(text):
    """pgbench --log: one transaction per line, 'client xact time script
    epoch_s epoch_us [lag]'. Returns [(end_epoch_s, latency_us, lag_us)];
    with --rate the latency is time + schedule lag (the wait a user of an
    open-loop service sees, as pgbench's own 'latency average' counts it)."""
    out = []
    for line in text.splitlines():
        f = line.split()
        if len(f) not in (6, 7):
            continue
        try:
            time_us, sec, usec = int(f[2]), int(f[4]), int(f[5])
            lag = int(f[6]) if len(f) == 7 else 0
        except ValueError:
            continue
        out.append((sec + usec / 1e6, time_us + lag, lag))
    return out


def pgbench_bins(transactions, bin_s=1.0, t0=None):
    """Transactions binned by completion time: [{t, p50_us, p95_us, p99_us,
    max_us, count, tps}], t relative to t0 (default: the first transaction)."""
    if not transactions:
        return []
    t0 = min(t for t, _, _ in transactions) if t0 is None else t0
    bins = {}
    for t, lat, _ in transactions:
        bins.setdefault(int((t - t0) // bin_s), []).append(lat)
    return [dict(latency_summary(v), t=(k + 1) * bin_s, tps=len(v) / bin_s)
            for k, v in sorted(bins.items()) if k >= 0]


def pgbench_summary(text):
    """pgbench's closing report: tps, latency average/stddev (us), schedule lag."""
    def num(pattern):
        m = re.search(pattern, text, re.M)
        return float(m.group(1)) if m else None
    tps = num(r"^tps = ([\d.]+)")
    if tps is None:
        raise ParseError("pgbench: no 'tps =' line (failed or still running?)")
    lat, sd, lag = (num(r"^latency average = ([\d.]+) ms"), num(r"^latency stddev = ([\d.]+) ms"),
                    num(r"^rate limit schedule lag: avg ([\d.]+)"))
    return {"tps": tps, "processed": num(r"actually processed: (\d+)"),
            "failed": num(r"number of failed transactions: (\d+)"),
            "latency_avg_us": lat * 1000 if lat is not None else None,
            "latency_stddev_us": sd * 1000 if sd is not None else None,
            "lag_avg_us": lag * 1000 if lag is not None else None}


# ---------------------------------------------------------------- memcaslap

def log2_percentile(dist, q, lo=None, hi=None):
    """Percentile of a log2 histogram {exponent: count} (bucket e holds
    [2^e, 2^(e+1)) us), linear inside the bucket, clamped to [lo, hi]."""
    total = sum(dist.values())
    if not total:
        return None
    rank = q * total
    seen = 0
    for e in sorted(dist):
        n = dist[e]
        if n and seen + n >= rank:
            a, b = 2.0 ** e, 2.0 ** (e + 1)
            v = a + (b - a) * (rank - seen) / n
            if lo is not None:
                v = max(v, lo)
            if hi is not None:
                v = min(v, hi)
            return v
        seen += n
    return hi


def memcaslap(text):
    """memcaslap -S 1s: per-second 'Period' rows of the Total section
    [{t, ops, tps, min_us, max_us, avg_us}], and the final Total block with
    its log2 distribution, p50/p95/p99 estimated from it, and the run's TPS."""
    periods, section = [], None
    t = 0
    for line in text.splitlines():
        s = line.replace("\x1b[1;1H\x1b[2J", "").strip()
        if s in ("Get Statistics", "Set Statistics", "Total Statistics"):
            section = s.split()[0]
            continue
        f = s.split()
        if section == "Total" and len(f) == 11 and f[0] == "Period":
            t += float(f[1])
            periods.append({"t": t, "ops": int(f[2]), "tps": float(f[3]), "min_us": float(f[6]),
                            "max_us": float(f[7]), "avg_us": float(f[8])})
    m = re.search(r"^Total Statistics \((\d+) events\)(.*?)(?:\n\s*\n|\Z)", text, re.S | re.M)
    if not m:
        raise ParseError("memcaslap: no final 'Total Statistics (N events)' block (killed before the end?)")
    block = m.group(2)

    def field(name):
        mm = re.search(rf"^\s+{name}:\s+([\d.]+)", block, re.M)
        return float(mm.group(1)) if mm else None
    dist = {}
    for row in re.finditer(r"^\s+(\d+):((?:\s+\d+)+)\s*$", block, re.M):
        for i, n in enumerate(row.group(2).split()):
            dist[int(row.group(1)) + i] = int(n)
    lo, hi = field("Min"), field("Max")
    total = {"count": int(m.group(1)), "min_us": lo, "max_us": hi, "avg_us": field("Avg"), "log2": dist}
    for name, q in (("p50", 0.50), ("p95", 0.95), ("p99", 0.99)):
        total[f"{name}_us"] = log2_percentile(dist, q, lo, hi)
    rt = re.search(r"^Run time: ([\d.]+)s Ops: (\d+) TPS: (\d+)", text, re.M)
    total["tps"] = float(rt.group(3)) if rt else None
    total["run_s"] = float(rt.group(1)) if rt else None
    return {"periods": periods, "total": total}


# ---------------------------------------------------------------- hackbench

def hackbench(text):
    """One or more hackbench runs: [{groups, fds, loops, mode, time_s,
    messages, messages_per_s}]. Each sender sends `loops` messages to each of
    the group's `fds` receivers; there are `fds` senders per group."""
    runs, cur = [], {}
    for line in text.splitlines():
        m = re.match(r"Running in (\w+) mode with (\d+) groups using (\d+) file descriptors", line)
        if m:
            cur = {"mode": m.group(1), "groups": int(m.group(2)), "fds": int(m.group(3)) // 2}
            continue
        m = re.match(r"Each sender will pass (\d+) messages", line)
        if m:
            cur["loops"] = int(m.group(1))
            continue
        m = re.match(r"Time: ([\d.]+)", line)
        if m:
            run = dict(cur, time_s=float(m.group(1)))
            if "loops" in run:
                run["messages"] = run["groups"] * run["fds"] * run["fds"] * run["loops"]
                run["messages_per_s"] = run["messages"] / run["time_s"] if run["time_s"] > 0 else None
            runs.append(run)
    return runs


# ---------------------------------------------------------------- stress-ng

def stress_ng_metrics(text):
    """stress-ng --metrics-brief: {stressor: {bogo_ops, real_s, usr_s, sys_s,
    bogo_ops_per_s, bogo_ops_per_cpu_s}} (per second of wall / of CPU time)."""
    out = {}
    for line in text.splitlines():
        m = re.match(r"stress-ng: (?:metrc|info):\s+\[\d+\]\s+(\S+)\s+(\d+)\s+([\d.]+)\s+([\d.]+)\s+"
                     r"([\d.]+)\s+([\d.]+)\s+([\d.]+)\s*$", line)
        if m:
            v = [float(x) for x in m.groups()[1:]]
            out[m.group(1)] = {"bogo_ops": int(v[0]), "real_s": v[1], "usr_s": v[2], "sys_s": v[3],
                               "bogo_ops_per_s": v[4], "bogo_ops_per_cpu_s": v[5]}
    if not out:
        raise ParseError("stress-ng: no metrics line (was it run with --metrics-brief and stopped by SIGINT?)")
    return out
