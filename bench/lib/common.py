"""Pieces shared by bench/run and bench/suite: child processes stopped by pid,
pinning a config with specact-pin, the agents' config, reading specactd's
history.jsonl, the statistics and formatting of the tables, gnuplot."""
import json
import math
import os
import signal
import statistics
import subprocess

# Paper's prices (USD per million tokens): actor gemini-2.5-flash, speculator flash-lite.
DEFAULT_PRICES = {"actor": (0.30, 2.50), "speculator": (0.10, 0.40)}
# Cached prompt tokens at a quarter of the input price (Google's published
# ratio for these models' context caching).
CACHED_INPUT_SHARE = 0.25

# At a fixed setting the kernel flips single windows of the mixed workload
# between ~0.34 and ~1.4 ms (a few % of requests wait out a hog's slice), so a
# window's p95 alone says little: convergence is judged on a centred median of
# this many windows, as the grid search judges a point by its windows' median.
SMOOTH_WINDOWS = 7

class Proc:
    """A child process in its own session, always stopped by pid."""

    def __init__(self, argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, text=True, **popen):
        self.argv = argv
        self.p = subprocess.Popen(argv, stdout=stdout, stderr=stderr, text=text,
                                  start_new_session=True, **popen)

    @property
    def pid(self):
        return self.p.pid

    def stop(self, sig=signal.SIGTERM, timeout=10):
        if self.p.poll() is not None:
            return self.p.returncode
        try:
            os.killpg(self.p.pid, sig)
            return self.p.wait(timeout)
        except (subprocess.TimeoutExpired, ProcessLookupError):
            try:
                os.killpg(self.p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            return self.p.wait()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


def median(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def fmt_ms(us):
    return "n/a" if us is None else f"{us / 1000:.2f}"


def fmt_s(s, horizon):
    return f"> {horizon:.0f}" if s is None else f"{s:.0f}"


def pin(build, pid, config, state_dir, keep=False):
    argv = [str(build / "bench/specact-pin"), "--pid", str(pid), "--state-dir", str(state_dir)]
    if keep:
        argv.append("--keep")
    argv += [f"{k}={v}" for k, v in config.items()]
    p = Proc(argv, stdout=subprocess.PIPE)
    line = p.p.stdout.readline()
    if line.strip() != "pinned":
        p.stop()
        raise RuntimeError(f"specact-pin failed for {config}")
    return p


def agent_config(role, args, port, top_k):
    """top_k None leaves the engine's default."""
    extra = {} if top_k is None else {"top_k": top_k}
    if args.builtin_agents:
        delay = args.speculator_latency_ms if role == "speculator" else args.actor_latency_ms
        return {"backend": "builtin", "delay_ms": delay, **extra}
    url = (args.speculator_url if role == "speculator" else args.actor_url) or f"http://127.0.0.1:{port}/v1"
    price_in, price_out = DEFAULT_PRICES[role]
    model = args.speculator_model if role == "speculator" else args.actor_model
    return {"backend": "openai", "base_url": url, "model": model, "api_key_env": "SPECACT_BENCH_API_KEY",
            "timeout_ms": 60000, **extra,
            "price_in_per_mtok": args.price_in.get(role, price_in),
            "price_cached_in_per_mtok": CACHED_INPUT_SHARE * args.price_in.get(role, price_in),
            "price_out_per_mtok": args.price_out.get(role, price_out)}


def objective_of(window, metric):
    if metric == "command":
        c = window.get("command") or {}
        return c.get("p95_us")
    key = "runq" if metric == "runq_p95" else "service"
    s = window.get(key) or {}
    return s.get("p95_us") if s.get("count") else None


def parse_history(path, wall):
    """Turns history.jsonl into a time series of (t, p95, config) plus usage."""
    events = [json.loads(l) for l in path.read_text().splitlines() if l.strip()]
    t_start = None
    config = {}
    series = []
    usage = {"speculator": {"prompt_tokens": 0, "cached_tokens": 0, "completion_tokens": 0, "cost_usd": 0.0, "calls": 0},
             "actor": {"prompt_tokens": 0, "cached_tokens": 0, "completion_tokens": 0, "cost_usd": 0.0, "calls": 0}}
    hits = misses = 0
    applies = []
    for e in events:
        t_ns = e.get("time_ns")
        if t_start is None and t_ns is not None:
            t_start = t_ns
        t = (t_ns - t_start) / 1e9 if (t_ns is not None and t_start is not None) else None
        typ = e.get("type")
        if typ in ("applied", "confirmed", "overridden", "reverted") and isinstance(e.get("config"), dict):
            config = dict(e["config"])
            applies.append({"t": t, "type": typ, "who": e.get("who"), "config": config})
        if typ == "confirmed":
            hits += 1 if e.get("hit") else 0
        if typ in ("overridden",) or (typ == "reverted" and e.get("who") == "safety"):
            misses += 1
        if typ == "agent_reply" or typ == "agent_usage":
            role = e.get("role")
            if role in usage:
                u = e.get("usage") or e
                usage[role]["prompt_tokens"] += int(u.get("prompt_tokens", 0))
                usage[role]["cached_tokens"] += int(u.get("cached_tokens", 0))
                usage[role]["completion_tokens"] += int(u.get("completion_tokens", 0))
                usage[role]["cost_usd"] += float(u.get("cost_usd", 0.0))
                usage[role]["calls"] += 1
        if typ == "window":
            w = e.get("window") or e
            metric = e.get("metric", "service_p95")
            p95 = e.get("objective_us", objective_of(w, metric))
            in_force = e.get("config") if isinstance(e.get("config"), dict) else config
            series.append({"t": t, "p95_us": p95, "config": dict(in_force),
                           "straddled": bool(e.get("straddled")),
                           "oncpu_ms": w.get("oncpu_ms"),
                           "service_p95_us": (w.get("service") or {}).get("p95_us"),
                           "throughput": (w.get("command") or {}).get("throughput")})
        if typ == "status" and "usage" in e:  # final snapshot, if the runtime writes one
            for role in usage:
                if role in e["usage"]:
                    usage[role].update({k: e["usage"][role][k] for k in usage[role] if k in e["usage"][role]})
            hits = e.get("hits", hits)
            misses = e.get("misses", misses)
    return {"series": series, "usage": usage, "hits": hits, "misses": misses,
            "applies": applies, "wall_s": wall, "events": len(events)}


def centred_median(values, k=SMOOTH_WINDOWS):
    out = []
    for i in range(len(values)):
        window = [v for v in values[max(0, i - k // 2): i + k // 2 + 1] if v is not None]
        out.append(statistics.median(window) if window else None)
    return out


def first_time_staying(series, good):
    """The time of the first window after which good(i) holds to the end."""
    last_bad = None
    for i in range(len(series)):
        if not good(i):
            last_bad = i
    if last_bad is None:
        return series[0]["t"] if series else None
    if last_bad + 1 >= len(series):
        return None
    return series[last_bad + 1]["t"]


def gnuplot(script):
    subprocess.run(["gnuplot"], input=script, text=True, check=True)


def spread_fmt(values, fmt=lambda v: f"{v:.2f}"):
    vals = [v for v in values if v is not None]
    if not vals:
        return "n/a"
    m = statistics.median(vals)
    if len(vals) == 1:
        return fmt(m)
    return f"{fmt(m)} [{fmt(min(vals))}..{fmt(max(vals))}]"
