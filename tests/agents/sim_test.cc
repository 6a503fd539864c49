#include <gtest/gtest.h>

#include <cmath>

#include "sim_kernel.h"

using namespace specact;
using namespace specact::sim;

namespace {
constexpr int64_t kSecond = 1'000'000'000;
}

TEST(SimKernel, PeriodicCurveMatchesMeasurements) {
  SimKernel k(SimWorkload::periodic_vs_hogs(), 1);
  // A valley just above the 300 us burst, plateaus on both sides.
  EXPECT_NEAR(k.true_p95_us({{kSlice, 100}}), 2500, 1);
  EXPECT_NEAR(k.true_p95_us({{kSlice, 310}}), 3500, 1);
  EXPECT_NEAR(k.true_p95_us({{kSlice, 450}}), 330, 1);
  EXPECT_NEAR(k.true_p95_us({{kSlice, 3000}}), 3900, 1);
  EXPECT_GT(k.true_p95_us({}), 3500);  // defaults
  EXPECT_LT(k.true_p95_us({{kSlice, 100}, {kNice, -20}}), k.true_p95_us({{kSlice, 100}}));
}

TEST(SimKernel, SysbenchWantsTheOppositeDirection) {
  SimKernel k(SimWorkload::sysbench_like(), 1);
  EXPECT_NEAR(k.true_p95_us({}), 28700, 1);
  EXPECT_NEAR(k.true_p95_us({{kSlice, 100000}}), 890, 1);
  EXPECT_GT(k.true_p95_us({{kSlice, 100}}), k.true_p95_us({}));
}

TEST(SimKernel, MeasuredP95TracksTruthWithNoise) {
  for (auto wl : {SimWorkload::periodic_vs_hogs(), SimWorkload::sysbench_like()}) {
    SimKernel k(wl, 7);
    for (int64_t slice : {100, 1000, 2800, 30000, 100000}) {
      Config c{{kSlice, slice}};
      double truth = k.true_p95_us(c);
      double sum = 0;
      int windows = 20;
      for (int i = 0; i < windows; ++i) {
        Window w = k.measure(c, i * kSecond, kSecond);
        ASSERT_GT(w.service.count, 100u);
        EXPECT_EQ(w.service_hist.count(), w.service.count);
        EXPECT_FALSE(w.low_confidence);
        sum += w.service.p95_us;
      }
      EXPECT_NEAR(sum / windows, truth, truth * 0.08) << wl.name << " slice " << slice;
    }
  }
}

TEST(SimKernel, DeterministicGivenSeed) {
  SimKernel a(SimWorkload::mixed(), 3), b(SimWorkload::mixed(), 3), c(SimWorkload::mixed(), 4);
  Window wa = a.measure({}, 0, kSecond), wb = b.measure({}, 0, kSecond),
         wc = c.measure({}, 0, kSecond);
  EXPECT_EQ(wa.service_hist.bins(), wb.service_hist.bins());
  EXPECT_NE(wa.service_hist.bins(), wc.service_hist.bins());
  EXPECT_EQ(wa.index, 1u);
}

TEST(SimKernel, ShortWindowIsLowConfidence) {
  SimKernel k(SimWorkload::mixed(), 1);
  Window w = k.measure({}, 0, kSecond / 100);  // ~10 samples
  EXPECT_TRUE(w.low_confidence);
}

TEST(SimKernel, DriftChangesTheCurve) {
  SimKernel k(SimWorkload::periodic_vs_hogs(), 1);
  double before = k.true_p95_us({{kSlice, 100000}});
  k.set_workload(SimWorkload::sysbench_like());
  EXPECT_LT(k.true_p95_us({{kSlice, 100000}}), before / 3);
}

TEST(SimKernel, ThroughputModelAndCommandMetric) {
  SimKernel k(SimWorkload::sysbench_like(), 1);
  EXPECT_LT(k.true_oncpu_ms_per_s({{kSlice, 100}}), k.true_oncpu_ms_per_s({{kSlice, 100000}}));
  EXPECT_LT(k.true_oncpu_ms_per_s({{kNice, 19}}), 0.8 * k.true_oncpu_ms_per_s({}));
  Window w = k.measure({}, 0, kSecond);
  ASSERT_TRUE(w.command_p95_us.has_value());
  ASSERT_TRUE(w.command_throughput.has_value());
  EXPECT_NEAR(w.oncpu_ms, k.true_oncpu_ms_per_s({}), k.true_oncpu_ms_per_s({}) * 0.05);
  ASSERT_TRUE(throughput_of(w, Metric::ServiceP95).has_value());
}

TEST(SimKernel, GridSearchFindsTheSliceJustAboveTheBurst) {
  SimKernel k(SimWorkload::periodic_vs_hogs(), 1);
  auto [best, p95] = grid_search(k, catalogue());
  EXPECT_GE(best.at(kSlice), 340);
  EXPECT_LE(best.at(kSlice), 800);
  EXPECT_EQ(best.at(kNice), -20);
  EXPECT_LT(p95, 330);
}

TEST(SimKernel, CatalogueCoversTheModelKnobs) {
  auto cat = catalogue();
  ASSERT_EQ(cat.size(), 4u);
  EXPECT_EQ(cat[0].name, kSlice);
  EXPECT_EQ(cat[0].domain.scale, KnobScale::Log);
  for (const auto& k : cat) EXPECT_TRUE(k.available);
}
