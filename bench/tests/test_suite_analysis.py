"""Unit tests of bench/lib/suite_analysis.py (what bench/suite reports from
its samples) and of `bench/suite --reanalyse` on a small synthetic suite.json;
run by ctest (bench_suite_analysis). Needs no root: nothing is measured."""
import json
import pathlib
import subprocess
import sys
import tempfile
import unittest

BENCH = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BENCH))

from lib import suite_analysis as sa  # noqa: E402


def client(values, tput=100.0):
    """One client sample per second, t = 1, 2, ... (the suite's own clock)."""
    return [{"t": float(i + 1), "p50_us": v / 2, "p95_us": v, "p99_us": v * 2, "tput": tput}
            for i, v in enumerate(values)]


def daemon_run(values, applies=(), hits=0, misses=0, tput=100.0, seconds=None, final_slice_us=3000):
    """A specactd run whose config goes from the default slice (3000 us) to
    final_slice_us half-way."""
    half = len(values) // 2
    return {"client": client(values, tput), "seconds": seconds or len(values),
            "series": [{"t": float(i), "p95_us": v, "service_p95_us": v,
                        "config": {"task.slice_us": 3000 if i < half else final_slice_us}}
                       for i, v in enumerate(values)],
            # Each apply moves the slice (400, 3000, 400, ...): every one is a knob change.
            "applies": [{"t": t, "type": "applied", "who": "speculator",
                         "config": {"task.slice_us": 400 if i % 2 == 0 else 3000}}
                        for i, t in enumerate(applies)],
            "hits": hits, "misses": misses,
            "usage": {"speculator": {"prompt_tokens": 100, "completion_tokens": 10, "cost_usd": 0.001},
                      "actor": {"prompt_tokens": 50, "completion_tokens": 5, "cost_usd": 0.002}}}


class BestKnownTest(unittest.TestCase):
    def test_latency_picks_the_lowest_p95_and_skips_points_without_one(self):
        pts = [{"config": {}, "p95_us": 900.0, "tput": 10}, {"config": {"a": 1}, "p95_us": None, "tput": 99},
               {"config": {"b": 2}, "p95_us": 300.0, "tput": 5}]
        self.assertEqual(sa.best_known(pts, throughput_only=False)["config"], {"b": 2})

    def test_throughput_only_picks_the_highest_throughput(self):
        pts = [{"config": {}, "p95_us": 1.0, "tput": 10}, {"config": {"a": 1}, "p95_us": 9.0, "tput": 99},
               {"config": {"b": 2}, "p95_us": None, "tput": None}]
        self.assertEqual(sa.best_known(pts, throughput_only=True)["config"], {"a": 1})

    def test_no_usable_point(self):
        self.assertIsNone(sa.best_known([], throughput_only=False))
        self.assertIsNone(sa.best_known([{"config": {}, "p95_us": None, "tput": None}], throughput_only=True))

    def test_point_value_is_the_median_of_the_windows(self):
        self.assertEqual(sa.point_value(client([5, 1, 9, 3, 7])), 5)


class SummarizeRunTest(unittest.TestCase):
    best = {"config": {"task.slice_us": 400}, "p95_us": 1000.0}

    def test_converged_is_the_first_window_after_which_the_smoothed_p95_stays_near_best(self):
        # 10 windows at 10x the best, then 20 at it: with a centred median of 5
        # windows, window 10 (t = 11 s) is the first whose neighbourhood is good.
        s = sa.summarize_run(daemon_run([10000] * 10 + [1000] * 20), self.best, False)
        self.assertEqual(s["converge_s"], 11.0)
        self.assertAlmostEqual(s["gap_end"], 0.0)

    def test_one_noisy_window_after_convergence_does_not_undo_it(self):
        values = [10000] * 10 + [1000] * 20
        values[20] = 50000
        self.assertEqual(sa.summarize_run(daemon_run(values), self.best, False)["converge_s"], 11.0)

    def test_a_relapse_at_the_end_means_never_converged(self):
        s = sa.summarize_run(daemon_run([1000] * 20 + [5000] * 10), self.best, False)
        self.assertIsNone(s["converge_s"])
        self.assertAlmostEqual(s["gap_end"], 4.0)

    def test_margin_is_ten_percent(self):
        self.assertIsNotNone(sa.summarize_run(daemon_run([1099] * 12), self.best, False)["converge_s"])
        self.assertIsNone(sa.summarize_run(daemon_run([1101] * 12), self.best, False)["converge_s"])

    def test_end_figures_are_over_the_last_third(self):
        s = sa.summarize_run(daemon_run([9000] * 20 + [1000, 2000, 3000, 4000, 5000] * 2), self.best, False)
        self.assertEqual(s["p95_end_us"], 3000)  # t >= 20: the last 11 windows (9000, 1000..5000 twice)
        self.assertEqual(s["p99_end_us"], 6000)
        self.assertEqual(s["p95_run_us"], 9000)

    def test_changes_after_convergence_count_flapping(self):
        r = daemon_run([10000] * 10 + [1000] * 20, applies=[2.0, 5.0, 12.5, 20.0])
        s = sa.summarize_run(r, self.best, False)
        self.assertEqual(s["changes"], 4)
        self.assertEqual(s["changes_after"], 2)

    def test_changes_after_half_the_run_when_never_converged(self):
        r = daemon_run([5000] * 30, applies=[2.0, 14.0, 16.0, 29.0])
        self.assertEqual(sa.summarize_run(r, self.best, False)["changes_after"], 2)  # 16 and 29

    def test_a_confirmation_of_the_config_in_force_is_not_a_change(self):
        r = daemon_run([5000] * 30, applies=[2.0, 14.0])
        r["applies"].append({"t": 20.0, "type": "confirmed", "who": "actor", "config": {"task.slice_us": 3000}})
        s = sa.summarize_run(r, self.best, False)
        self.assertEqual(s["changes"], 2)
        self.assertEqual(s["changes_second_half"], 0)

    def test_changes_in_the_second_half(self):
        r = daemon_run([1000] * 30, applies=[2.0, 14.0, 16.0, 29.0])
        self.assertEqual(sa.summarize_run(r, self.best, False)["changes_second_half"], 2)  # 16 and 29

    def test_hit_rate_and_tokens(self):
        s = sa.summarize_run(daemon_run([1000] * 9, hits=3, misses=1), self.best, False)
        self.assertAlmostEqual(s["hit_rate"], 0.75)
        self.assertEqual(s["tokens"], {"speculator": 110, "actor": 55})
        self.assertIsNone(sa.summarize_run(daemon_run([1000] * 9), self.best, False)["hit_rate"])

    def test_throughput_only_gap_is_against_the_best_throughput(self):
        best = {"config": {}, "p95_us": None, "tput": 200.0}
        s = sa.summarize_run(daemon_run([0] * 9, tput=150.0), best, True)
        self.assertAlmostEqual(s["gap_end"], -0.25)
        self.assertNotIn("converge_s", s)

    def test_relative_to_nothing_attached(self):
        s = sa.summarize_run(daemon_run([1000] * 9, tput=90.0), self.best, False, none_tput=100.0)
        self.assertAlmostEqual(s["tput_vs_none"], 0.9)


class TabulateTest(unittest.TestCase):
    def test_medians_spread_and_cut_vs_untuned(self):
        best = {"config": {"task.slice_us": 400}, "p95_us": 1000.0}
        entry = {"best": best, "grid": [], "runs": {
            "none": [{"client": client([4000] * 12, 100.0), "seconds": 12}],
            "untuned": [daemon_run([4000] * 12, tput=95.0), daemon_run([4000] * 12, tput=97.0)],
            "speculative": [daemon_run([4000] * 2 + [1000] * 10, hits=2, misses=1, tput=100.0),
                            daemon_run([4000] * 12, tput=90.0),
                            daemon_run([4000] * 4 + [2000] * 8, tput=110.0)]}}
        rows = sa.tabulate(entry, throughput_only=False)
        spec = rows["speculative"]
        self.assertEqual(spec["repeats"], 3)
        self.assertEqual(spec["p95_end"], "2.00 ms [1.00 ms..4.00 ms]")
        self.assertEqual(spec["cut_vs_untuned"], "50 % [0 %..75 %]")
        self.assertEqual(spec["converge_s"], "never [3..never]")
        self.assertEqual(spec["tput_vs_none"], "+0 % [-10 %..+10 %]")
        self.assertEqual(rows["untuned"]["cut_vs_untuned"], "0 % [0 %..0 %]")
        self.assertEqual(rows["none"]["converge_s"], "")
        self.assertIn("summary", entry["runs"]["speculative"][0])


class BestPinnedTest(unittest.TestCase):
    """The best-pinned control: the best-known config measured again, and
    convergence judged against that measurement too."""

    def entry(self):
        # The grid's best read 1000 us; held again it reads 1200 us (the
        # winner's curse), so a run at 1250 us is within 10 % of the latter only.
        return {"best": {"config": {"task.slice_us": 400}, "p95_us": 1000.0, "tput": 100.0},
                "runs": {"best-pinned": [{"client": client([1200] * 20), "seconds": 20},
                                         {"client": client([1150] * 20), "seconds": 20},
                                         {"client": client([1300] * 20), "seconds": 20}],
                         "speculative": [daemon_run([4000] * 5 + [1250] * 15),
                                         daemon_run([4000] * 12 + [1250] * 8),
                                         daemon_run([4000] * 20)]}}

    def test_the_remeasured_p95_is_the_median_of_the_pinned_runs(self):
        e = self.entry()
        sa.tabulate(e, throughput_only=False)
        self.assertEqual(e["best_remeasured_p95_us"], 1200.0)

    def test_within_ten_windows_counts_repeats_against_each_best(self):
        rows = sa.tabulate(self.entry(), throughput_only=False)
        spec = rows["speculative"]
        self.assertEqual(spec["within"], "0/3")  # 1250 is never within 10 % of 1000
        self.assertEqual(spec["within_remeasured"], "1/3")  # within 10 % of 1200 from t = 6 (one repeat)
        self.assertEqual(spec["converge_remeasured_s"], "13 [6..never]")
        self.assertEqual(rows["best-pinned"]["within"], "0/3")
        self.assertEqual(rows["best-pinned"]["within_remeasured"], "3/3")

    def test_within_ten_windows_allows_the_client_samples_half_window_offset(self):
        e = self.entry()
        e["runs"]["speculative"] = [daemon_run([4000] * 10 + [1200] * 10)]  # converged at t = 11 s
        self.assertEqual(sa.tabulate(e, throughput_only=False)["speculative"]["within_remeasured"], "0/1")
        for r in e["runs"]["speculative"]:
            r["client"] = [dict(c, t=c["t"] - 0.501) for c in r["client"]]  # at t = 10.499 s
        self.assertEqual(sa.tabulate(e, throughput_only=False)["speculative"]["within_remeasured"], "1/1")

    def test_without_pinned_runs_there_is_no_remeasured_column(self):
        e = self.entry()
        del e["runs"]["best-pinned"]
        rows = sa.tabulate(e, throughput_only=False)
        self.assertNotIn("best_remeasured_p95_us", e)
        self.assertEqual(rows["speculative"]["within_remeasured"], "")
        self.assertEqual(rows["speculative"]["converge_remeasured_s"], "")


class SysctlBlameTest(unittest.TestCase):
    def data(self, applied):
        run = {"sysctls_before": {"kernel/sched_autogroup_enabled": "1"},
               "sysctls_after": {"kernel/sched_autogroup_enabled": "0"},
               "applies": [{"config": applied}]}
        return {"sysbench": {"runs": {"speculative": [run]}}}

    def test_ours_when_one_of_our_runs_applied_the_value(self):
        self.assertTrue(sa.wrote_value(self.data({"sysctl.kernel.sched_autogroup_enabled": 0}),
                                       "kernel/sched_autogroup_enabled", "0"))

    def test_not_ours_when_no_run_applied_it(self):
        self.assertFalse(sa.wrote_value(self.data({"task.nice": -5}), "kernel/sched_autogroup_enabled", "0"))


class LoadNoteTest(unittest.TestCase):
    def test_reports_median_and_max_over_measurements(self):
        data = {"w": {"grid": [{"load1_start": 1.0, "load1_end": 2.0}],
                      "runs": {"none": [{"load1_start": 3.0, "load1_end": 9.0}]}}}
        note = sa.load_note(0.5, data)
        self.assertIn("at the start: 0.5", note)
        self.assertIn("median 2.5, max 9.0", note)


class ReanalyseTest(unittest.TestCase):
    """bench/suite --reanalyse rebuilds the tables from a saved suite.json."""

    @staticmethod
    def reanalyse(directory, workload, best, runs):
        """Saves a one-workload suite.json in directory and re-analyses it there."""
        meta = {"date": "test", "machine": "test", "command": "bench/suite", "duration_s": 12, "settle_s": 1.5,
                "repeats": 1, "grid_seconds": 5, "agents": "test", "notes": "test notes"}
        path = pathlib.Path(directory) / "suite.json"
        path.write_text(json.dumps({"meta": meta, "data": {workload: {"best": best, "grid": [best], "runs": runs}}}))
        return path, subprocess.run([sys.executable, str(BENCH / "suite"), "--reanalyse", str(path),
                                     "--out", directory], capture_output=True, text=True, timeout=120)

    def test_tables_from_saved_samples(self):
        best = {"config": {"task.slice_us": 400}, "p95_us": 1000.0, "tput": 100.0, "client": client([1000] * 5)}
        runs = {"none": [{"client": client([4000] * 12), "seconds": 12}],
                "untuned": [daemon_run([4000] * 12)],
                "speculative": [daemon_run([4000] * 2 + [1000] * 10, hits=1, final_slice_us=400)]}
        with tempfile.TemporaryDirectory() as d:
            path, r = self.reanalyse(d, "periodic", best, runs)
            self.assertEqual(r.returncode, 0, r.stderr)
            md = (pathlib.Path(d) / "suite.md").read_text()
            row = next(line for line in md.splitlines() if line.startswith("| speculative |"))
            cells = [c.strip() for c in row.split("|")]
            self.assertEqual(cells[3], "1.00 ms")  # p95 end
            self.assertEqual(cells[6], "75 %")  # cut vs untuned
            self.assertEqual(cells[8], "3")  # converged (s)
            self.assertIn("task.slice_us=400", row)
            again = json.loads(path.read_text())
            self.assertIn("results", again)
            self.assertEqual(again["meta"]["date"], "test")

    def test_not_a_suite_json(self):
        for text, says in (("[1, 2]", "not a suite.json"), ('{"meta": {}, "data": {"nope": {}}}', "unknown workloads"),
                           ('{"meta": {}, "data": {"periodic": {"runs": 3}}}', "malformed suite.json")):
            with tempfile.TemporaryDirectory() as d:
                path = pathlib.Path(d) / "x.json"
                path.write_text(text)
                r = subprocess.run([sys.executable, str(BENCH / "suite"), "--reanalyse", str(path), "--out", d],
                                   capture_output=True, text=True, timeout=60)
                self.assertEqual(r.returncode, 1, text)
                self.assertIn(says, r.stderr)
                self.assertNotIn("Traceback", r.stderr)

    def test_a_throughput_only_suite_plots_its_summary(self):
        """hackbench alone: no p95 cut anywhere, the summary plot still draws."""
        def tput_only(run, tput):  # hackbench's client reports messages/s only
            run["client"] = [{"t": float(i + 1), "tput": tput} for i in range(12)]
            return run

        best = {"config": {"task.slice_us": 400}, "p95_us": None, "tput": 120.0,
                "client": [{"t": float(i + 1), "tput": 120.0} for i in range(5)]}
        runs = {"untuned": [tput_only(daemon_run([1000] * 12), 100.0)],
                "speculative": [tput_only(daemon_run([1000] * 12), 110.0)]}
        with tempfile.TemporaryDirectory() as d:
            _, r = self.reanalyse(d, "hackbench", best, runs)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertNotIn("gnuplot failed", r.stderr + r.stdout)
            self.assertTrue((pathlib.Path(d) / "suite-summary.png").is_file())


class SelectionTest(unittest.TestCase):
    """A usage error in the selection stops bench/suite before it measures or
    checks for root: argparse's exit status 2 and a message naming the option."""

    def run_suite(self, *argv):
        with tempfile.TemporaryDirectory() as d:
            return subprocess.run([sys.executable, str(BENCH / "suite"), "--out", d, *argv],
                                  capture_output=True, text=True, timeout=60)

    def test_usage_errors(self):
        with tempfile.TemporaryDirectory() as empty:
            for argv, says in ((["--workloads", "nope"], "unknown workload 'nope'"),
                               (["--modes", "nope"], "unknown mode 'nope'"),
                               (["--modes", "speculative-base"], "go together"),
                               (["--modes", "actor-only-base"], "go together"),
                               (["--base-build-dir", empty], "go together"),
                               (["--modes", "speculative-base,speculative", "--base-build-dir", empty],
                                "no daemon/specactd in")):
                r = self.run_suite("--workloads", "periodic", *argv) if argv[0] != "--workloads" \
                    else self.run_suite(*argv)
                self.assertEqual(r.returncode, 2, (argv, r.stderr))
                self.assertIn(says, r.stderr, argv)
                self.assertNotIn("Traceback", r.stderr)


if __name__ == "__main__":
    unittest.main()
