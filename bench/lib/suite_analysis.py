"""The analysis of bench/suite's measurements: best-known points, per-run
summaries (end/run percentiles, convergence to the best-known, flapping, hit
rate, tokens), per-mode medians with spread, and the table formatting. Pure
functions of the saved samples, so --reanalyse and the tests use them too."""
import math
import os
import statistics

from lib.common import centred_median, first_time_staying, median, spread_fmt

CONVERGE_MARGIN = 0.10  # "within 10 % of the best-known p95" (the definition of converged)
SMOOTH = 5  # windows in the centred median that convergence is judged on
CONVERGE_WINDOWS = 10  # "within 10 windows" (the bar); the daemon's window is 1 s in the suite
WINDOW_S = 1.0
# The clients report per second on their own clock, half a second or so off
# the daemon's windows: a client sample that ends up to half a window after
# the 10th window lies mostly inside it.
WITHIN_S = (CONVERGE_WINDOWS + 0.5) * WINDOW_S
# The mode that holds the best-known grid config from the start: the control
# that shows how often the convergence rule passes the best config itself.
BEST_PINNED = "best-pinned"


def point_value(samples, key="p95_us"):
    return median([s.get(key) for s in samples])


def best_known(points, throughput_only):
    if throughput_only:
        ok = [p for p in points if p["tput"] is not None]
        return max(ok, key=lambda p: p["tput"]) if ok else None
    ok = [p for p in points if p["p95_us"] is not None]
    return min(ok, key=lambda p: p["p95_us"]) if ok else None


def converge_time(c, best_p95_us):
    """Seconds until the client's p95 (centred median of SMOOTH windows) stays
    within CONVERGE_MARGIN of best_p95_us to the end of the run; None if never."""
    vals = centred_median([x.get("p95_us") for x in c], SMOOTH)
    limit = best_p95_us * (1 + CONVERGE_MARGIN)
    return first_time_staying(c, lambda i: vals[i] is not None and vals[i] <= limit) if c else None


def knob_changes(r):
    """Times at which a daemon run's config in force changed: an actor's
    confirmation of the config already in force writes nothing and is not a
    change (nor is any event that leaves the config as it was)."""
    prev = r["series"][0]["config"] if r.get("series") else None
    out = []
    for a in r["applies"]:
        if a["config"] != prev and a["t"] is not None:
            out.append(a["t"])
        prev = a["config"]
    return out


def summarize_run(r, best, throughput_only, none_tput=None, none_bg=None, remeasured_best_us=None):
    """remeasured_best_us: the best-known config's p95 measured again (the
    best-pinned runs' median). The grid's best is the minimum of several noisy
    medians and so reads low (the winner's curse); convergence is also judged
    against this independent measurement of the same config."""
    c = r["client"]
    dur = r["seconds"]
    end = [s for s in c if s["t"] >= dur * 2 / 3]
    s = {
        "p50_end_us": median([x.get("p50_us") for x in end]),
        "p95_end_us": median([x.get("p95_us") for x in end]),
        "p99_end_us": median([x.get("p99_us") for x in end]),
        "p95_run_us": median([x.get("p95_us") for x in c]),
        "p95_run_mean_us": statistics.mean([x["p95_us"] for x in c if x.get("p95_us") is not None])
        if any(x.get("p95_us") is not None for x in c) else None,
        "tput": median([x.get("tput") for x in c]),
        "tput_end": median([x.get("tput") for x in end]),
        "background_bogo_ops_s": r.get("background_bogo_ops_s"),
        "client_windows": len(c),
    }
    if none_tput and s["tput"]:
        s["tput_vs_none"] = s["tput"] / none_tput
    if none_bg and s["background_bogo_ops_s"]:
        s["background_vs_none"] = s["background_bogo_ops_s"] / none_bg
    if best is not None and not throughput_only and best.get("p95_us"):
        s["converge_s"] = converge_time(c, best["p95_us"])
        if remeasured_best_us:
            s["converge_remeasured_s"] = converge_time(c, remeasured_best_us)
        s["gap_end"] = s["p95_end_us"] / best["p95_us"] - 1 if s["p95_end_us"] else None
    elif best is not None and throughput_only and best.get("tput"):
        s["gap_end"] = s["tput_end"] / best["tput"] - 1 if s["tput_end"] else None
    if "series" in r:
        t_conv = s.get("converge_s")
        after = t_conv if t_conv is not None else dur / 2
        changed = knob_changes(r)
        s["changes_after"] = sum(1 for t in changed if t > after)
        s["changes_second_half"] = sum(1 for t in changed if t > dur / 2)
        s["changes"] = len(changed)
        decided = r["hits"] + r["misses"]
        s["hit_rate"] = r["hits"] / decided if decided else None
        u = r["usage"]
        s["tokens"] = {k: u[k]["prompt_tokens"] + u[k]["completion_tokens"] for k in u}
        s["cost_usd"] = {k: u[k]["cost_usd"] for k in u}
        ebpf = [w["service_p95_us"] for w in r["series"] if w["t"] is not None and w["t"] >= dur * 2 / 3]
        s["ebpf_service_p95_end_us"] = median(ebpf)
        s["final_config"] = r["series"][-1]["config"] if r["series"] else {}
    return s


def load_note(start, data):
    """The 1-minute load average at the start and over the measurements: the
    machine is shared, and a reader must see how loaded it was."""
    loads = [r.get(k) for e in data.values() for rs in list(e["runs"].values()) + [e["grid"]] for r in rs
             for k in ("load1_start", "load1_end") if isinstance(r, dict) and r.get(k) is not None]
    note = f"Load average (1 min) at the start: {start:.1f}"
    if loads:
        note += f"; over the measurements: median {statistics.median(loads):.1f}, max {max(loads):.1f}"
    return note + f" ({os.cpu_count()} CPUs; the workloads' own threads and hogs count in it)."


def wrote_value(data, path, value):
    """Did one of our daemon runs leave sysctl `path` (kernel/x) changed? True
    when a run ended with it different from how it started and that run's
    daemon had applied a value to it other than the starting one."""
    knob = "sysctl." + path.replace("/", ".")
    for e in data.values():
        for rs in e["runs"].values():
            for r in rs:
                before, after = r.get("sysctls_before", {}), r.get("sysctls_after", {})
                if before.get(path) == after.get(path):
                    continue
                if any(knob in a["config"] and str(a["config"][knob]) != str(before.get(path))
                       for a in r.get("applies", [])):
                    return True
    return False


def fmt_us(v):
    if v is None:
        return "n/a"
    return f"{v / 1000:.2f} ms" if v >= 1000 else f"{v:.0f} us"


def fmt_tput(v):
    if v is None:
        return "n/a"
    return f"{v / 1e6:.2f}M" if v >= 1e6 else f"{v / 1e3:.1f}k" if v >= 1e4 else f"{v:.0f}"


def pct(v):
    return f"{v * 100:+.0f} %"


def tabulate(entry, throughput_only):
    """Per mode: medians (and spread) over the repeats. Stores each run's
    summary in it as r["summary"] (the plots read them)."""
    best = entry["best"]
    runs = entry["runs"]
    for r in runs.get("none", []):
        r["summary"] = summarize_run(r, best, throughput_only)
    none_tput = median([r["summary"]["tput"] for r in runs.get("none", [])]) if runs.get("none") else None
    none_bg = median([r["summary"]["background_bogo_ops_s"] for r in runs.get("none", [])]) if runs.get("none") else None
    for r in runs.get("untuned", []):
        r["summary"] = summarize_run(r, best, throughput_only, none_tput, none_bg)
    untuned_p95 = median([r["summary"]["p95_end_us"] for r in runs.get("untuned", [])]) if runs.get("untuned") else None
    remeasured = remeasured_best(runs, throughput_only)
    if remeasured:
        entry["best_remeasured_p95_us"] = remeasured
    rows = {}
    for mode, rs in runs.items():
        for r in rs:
            r["summary"] = summarize_run(r, best, throughput_only, none_tput, none_bg, remeasured)
        ss = [r["summary"] for r in rs]

        def col(key, f):
            return spread_fmt([x.get(key) for x in ss], f)

        def seconds(key):
            """Median [min..max] seconds to converge, "never" counted as such."""
            if throughput_only or mode == "none" or not ss or all(key not in x for x in ss):
                return ""
            return spread_fmt([x[key] if x.get(key) is not None else math.inf for x in ss],
                              lambda v: "never" if v == math.inf else f"{v:.0f}")

        def within(key):
            """Repeats converged within CONVERGE_WINDOWS windows, of all."""
            if throughput_only or mode == "none" or not ss or all(key not in x for x in ss):
                return ""
            ok = sum(1 for x in ss if x.get(key) is not None and x[key] <= WITHIN_S)
            return f"{ok}/{len(ss)}"
        row = {
            "p50_end": col("p50_end_us", fmt_us), "p95_end": col("p95_end_us", fmt_us),
            "p99_end": col("p99_end_us", fmt_us), "p95_run": col("p95_run_us", fmt_us),
            "tput": col("tput", fmt_tput),
            "tput_vs_none": col("tput_vs_none", lambda v: pct(v - 1)),
            "background": col("background_vs_none", lambda v: pct(v - 1)),
            "gap_end": col("gap_end", pct),
            "converge_s": seconds("converge_s"),
            "converge_remeasured_s": seconds("converge_remeasured_s"),
            "within": within("converge_s"),
            "within_remeasured": within("converge_remeasured_s"),
            "changes_after": col("changes_after", lambda v: f"{v:.0f}"),
            "changes_second_half": col("changes_second_half", lambda v: f"{v:.0f}"),
            "hit_rate": col("hit_rate", lambda v: f"{v:.2f}"),
            "tokens": (f"{median([x['tokens']['speculator'] for x in ss]):.0f} / "
                       f"{median([x['tokens']['actor'] for x in ss]):.0f}") if ss and "tokens" in ss[0] else "",
            "cost": (f"{median([x['cost_usd']['speculator'] for x in ss]):.4f} / "
                     f"{median([x['cost_usd']['actor'] for x in ss]):.4f}") if ss and "cost_usd" in ss[0] else "",
            "ebpf": col("ebpf_service_p95_end_us", fmt_us),
            "final_config": ss[-1].get("final_config", "") if ss else "",
            "repeats": len(ss),
        }
        if untuned_p95 and not throughput_only:
            row["cut_vs_untuned"] = spread_fmt([1 - x["p95_end_us"] / untuned_p95 if x.get("p95_end_us") else None
                                                for x in ss], lambda v: f"{v * 100:.0f} %")
        rows[mode] = row
    return rows


def remeasured_best(runs, throughput_only):
    """The best-known config's p95 from the best-pinned runs (median over
    them of each run's median window), or None without such runs."""
    if throughput_only or not runs.get(BEST_PINNED):
        return None
    return median([point_value(r["client"]) for r in runs[BEST_PINNED]])


def config_str(cfg):
    return ", ".join(f"{k}={v}" for k, v in cfg.items()) if cfg else "defaults"


def nondefault(cfg, baseline):
    return {k: v for k, v in cfg.items() if baseline.get(k) != v}
