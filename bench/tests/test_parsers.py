"""Unit tests of bench/lib/parsers.py on outputs captured from the real clients
(bench/testdata, recorded on the development machine). Expected figures were
checked by hand or with awk against the files; run by ctest (bench_parsers)."""
import pathlib
import sys
import unittest

BENCH = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BENCH))

from lib import parsers  # noqa: E402


def data(name):
    return (BENCH / "testdata" / name).read_text()


class PercentileTest(unittest.TestCase):
    def test_nearest_rank(self):
        vals = list(range(1, 101))
        self.assertEqual(parsers.percentile(vals, 0.95), 95)
        self.assertEqual(parsers.percentile(vals, 0.5), 50)
        self.assertEqual(parsers.percentile([7], 0.99), 7)
        self.assertIsNone(parsers.percentile([], 0.95))

    def test_log2_percentile_interpolates_inside_the_bucket(self):
        dist = {3: 50, 4: 50}  # 50 in [8,16), 50 in [16,32)
        self.assertAlmostEqual(parsers.log2_percentile(dist, 0.5), 16.0)
        self.assertAlmostEqual(parsers.log2_percentile(dist, 0.75), 24.0)
        self.assertEqual(parsers.log2_percentile(dist, 0.99, hi=20), 20)


class SysbenchTest(unittest.TestCase):
    def test_intervals(self):
        rows = parsers.sysbench_intervals(data("sysbench_cpu.txt"))
        self.assertEqual([r["t"] for r in rows], [1.0, 2.0, 3.0])
        self.assertEqual([r["p95_us"] for r in rows], [64470.0, 68050.0, 68050.0])
        self.assertEqual(rows[2]["threads"], 15)
        self.assertAlmostEqual(rows[0]["eps"], 2654.60)

    def test_summary(self):
        s = parsers.sysbench_summary(data("sysbench_cpu.txt"))
        self.assertAlmostEqual(s["eps"], 2637.71)
        self.assertAlmostEqual(s["p95_us"], 66840.0)
        self.assertAlmostEqual(s["max_us"], 100390.0)

    def test_unfinished_run_is_an_error(self):
        with self.assertRaises(parsers.ParseError):
            parsers.sysbench_summary("[ 1s ] thds: 16 eps: 2654.60 lat (ms,95%): 64.47\n")


class WorkloadTest(unittest.TestCase):
    def test_reports(self):
        rows = parsers.workload_reports(data("specact-workload.txt"))
        intervals = [r for r in rows if r["kind"] == "interval"]
        summary = [r for r in rows if r["kind"] == "summary"]
        self.assertEqual(len(intervals), 4)
        self.assertEqual(len(summary), 1)
        self.assertEqual((intervals[0]["t"], intervals[0]["p95_us"], intervals[0]["count"]), (1.004, 5498.3, 320))
        self.assertEqual(intervals[2]["p95_us"], 1448.0)
        self.assertEqual(summary[0]["count"], 1981)
        for r in rows:
            self.assertLessEqual(r["p50_us"], r["p95_us"])
            self.assertLessEqual(r["p95_us"], r["p99_us"])
        # The summary covers every interval's releases.
        self.assertGreaterEqual(summary[0]["count"], sum(r["count"] for r in intervals))

    def test_cut_line_is_skipped(self):
        rows = parsers.workload_reports('{"interval":true,"t":1.0,"completion":{"p50_us":1,\n')
        self.assertEqual(rows, [])


class CyclictestTest(unittest.TestCase):
    def test_histogram(self):
        h = parsers.cyclictest_histogram(data("cyclictest_hist.txt"))
        self.assertEqual(h["count"], 3939 + 1)  # Total + 1 overflow
        self.assertEqual((h["min_us"], h["avg_us"], h["max_us"]), (27, 107, 5858))
        self.assertEqual(h["buckets"], 5000)
        self.assertEqual(h["p95_us"], 108)
        self.assertFalse(h["p99_overflow"])

    def test_histogram_overflow(self):
        # -h 100 beside hogs: 1124 of 2938 cycles overflowed the 100 us histogram.
        h = parsers.cyclictest_histogram(data("cyclictest_verbose_overflow.txt"))
        self.assertEqual(h["count"], 1814 + 1124)
        self.assertEqual(h["overflows"], 1124)
        self.assertFalse(h["p50_overflow"])
        self.assertTrue(h["p95_overflow"])
        self.assertEqual(h["p95_us"], 100)
        self.assertEqual(h["max_us"], 6695)

    def test_verbose_bins(self):
        bins = parsers.cyclictest_verbose(data("cyclictest_verbose_overflow.txt"), interval_us=1000)
        self.assertEqual(sum(b["count"] for b in bins), 2936)  # the per-cycle lines printed
        self.assertEqual(bins[0]["count"], 1000)
        self.assertEqual(bins[0]["t"], 1.0)
        self.assertEqual(bins[0]["max_us"], 4979)

    def test_no_histogram_is_an_error(self):
        with self.assertRaises(parsers.ParseError):
            parsers.cyclictest_histogram("T: 0 ( 1234) P: 0 I:1000 C: 10 Min: 3 Act: 5 Avg: 4 Max: 9\n")


class PgbenchTest(unittest.TestCase):
    def test_log_with_rate(self):
        tx = parsers.pgbench_log(data("pgbench_log_rate.txt"))
        self.assertEqual(len(tx), 1466)  # = "actually processed" in the summary
        lat = [l for _, l, _ in tx]
        # latency = time + schedule lag; its mean matches pgbench's own average
        # (2.186 ms) plus the lag (0.430 ms) to within a microsecond.
        self.assertAlmostEqual(sum(lat) / len(lat), 2186.05 + 429.97, delta=1.0)
        self.assertEqual(parsers.percentile(lat, 0.95), 10812)  # awk over the file

    def test_bins(self):
        bins = parsers.pgbench_bins(parsers.pgbench_log(data("pgbench_log_rate.txt")))
        self.assertEqual(sum(b["count"] for b in bins), 1466)
        self.assertEqual(len(bins), 3)
        self.assertTrue(all(400 < b["tps"] < 600 for b in bins))  # -R 500

    def test_closed_loop_log(self):
        tx = parsers.pgbench_log("0 1 3921 0 1796221790 754690\n0 2 400 0 1796221791 0\ngarbage\n")
        self.assertEqual(tx, [(1796221790.75469, 3921, 0), (1796221791.0, 400, 0)])

    def test_summary(self):
        s = parsers.pgbench_summary(data("pgbench_summary.txt"))
        self.assertAlmostEqual(s["tps"], 489.541477)
        self.assertEqual(s["processed"], 1466)
        self.assertAlmostEqual(s["latency_avg_us"], 2186.0)
        self.assertAlmostEqual(s["lag_avg_us"], 430.0)
        with self.assertRaises(parsers.ParseError):
            parsers.pgbench_summary("pgbench: error: connection to server failed\n")


class MemcaslapTest(unittest.TestCase):
    def test_periods(self):
        m = parsers.memcaslap(data("memcaslap.txt"))
        self.assertEqual([p["t"] for p in m["periods"]], [1.0, 2.0, 3.0, 4.0])
        self.assertEqual(m["periods"][0]["ops"], 108086)
        self.assertEqual(m["periods"][2]["max_us"], 23671.0)

    def test_total(self):
        t = parsers.memcaslap(data("memcaslap.txt"))["total"]
        self.assertEqual(t["count"], 370667)
        self.assertEqual(sum(t["log2"].values()), 370667)
        self.assertEqual(t["tps"], 92656)
        self.assertEqual((t["min_us"], t["max_us"]), (8.0, 23671.0))
        # rank 0.95 x 370667 falls in the 2^10 bucket ([1024, 2048) us).
        self.assertTrue(1024 <= t["p95_us"] < 2048)
        self.assertTrue(t["p50_us"] <= t["p95_us"] <= t["p99_us"] <= t["max_us"])

    def test_killed_run_is_an_error(self):
        with self.assertRaises(parsers.ParseError):
            parsers.memcaslap(data("memcaslap.txt").split("Get Statistics (")[0])


class HackbenchTest(unittest.TestCase):
    def test_runs(self):
        runs = parsers.hackbench(data("hackbench_threads.txt"))
        self.assertEqual([r["time_s"] for r in runs], [0.082, 0.097])
        self.assertEqual(runs[0]["mode"], "threaded")
        self.assertEqual(runs[0]["messages"], 2 * 20 * 20 * 100)
        p = parsers.hackbench(data("hackbench_process.txt"))[0]
        self.assertEqual((p["groups"], p["loops"], p["time_s"]), (4, 200, 0.413))


class StressNgTest(unittest.TestCase):
    def test_sigint_and_timeout(self):
        m = parsers.stress_ng_metrics(data("stress-ng_sigint.txt"))["cpu"]
        self.assertEqual(m["bogo_ops"], 1315)
        self.assertAlmostEqual(m["bogo_ops_per_s"], 683.20)
        m = parsers.stress_ng_metrics(data("stress-ng_timeout.txt"))["cpu"]
        self.assertAlmostEqual(m["bogo_ops_per_s"], 1001.64)
        self.assertAlmostEqual(m["real_s"], 4.01)

    def test_no_metrics_is_an_error(self):
        with self.assertRaises(parsers.ParseError):
            parsers.stress_ng_metrics("stress-ng: info:  [1] dispatching hogs: 2 cpu\n")


if __name__ == "__main__":
    unittest.main()
