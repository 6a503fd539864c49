#include "common/histogram.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

using specact::Histogram;

namespace {

double exact_nearest_rank(std::vector<uint64_t> v, double q) {
  std::sort(v.begin(), v.end());
  auto rank = static_cast<size_t>(std::ceil(q * static_cast<double>(v.size())));
  rank = std::max<size_t>(rank, 1);
  return static_cast<double>(v[rank - 1]);
}

}  // namespace

TEST(Histogram, BucketsAreContiguousAndOrdered) {
  for (int b = 1; b < Histogram::bucket_count(); ++b)
    EXPECT_EQ(Histogram::bucket_lower(b - 1) + Histogram::bucket_width(b - 1),
              Histogram::bucket_lower(b))
        << "bucket " << b;
}

TEST(Histogram, ValueMapsIntoItsBucket) {
  std::mt19937_64 rng(1);
  for (int i = 0; i < 100000; ++i) {
    uint64_t v = rng() >> (rng() % 40 + 24);  // spread over many octaves
    int b = Histogram::bucket_of(v);
    ASSERT_GE(v, Histogram::bucket_lower(b));
    ASSERT_LT(v, Histogram::bucket_lower(b) + Histogram::bucket_width(b));
  }
}

TEST(Histogram, SmallValuesAreExact) {
  Histogram h;
  for (uint64_t v = 0; v < 16; ++v) h.record(v);
  EXPECT_EQ(h.percentile_ns(1.0), 15.0);
  EXPECT_EQ(h.percentile_ns(0.5), 7.0);
}

TEST(Histogram, HugeValuesClampToLastBucket) {
  Histogram h;
  h.record(~uint64_t{0});
  EXPECT_EQ(h.bins().front().first, Histogram::bucket_count() - 1);
}

// Percentiles of random latency-like data agree with the exact sorted-sample
// percentile within 5 % (the geometry promises ~3.1 %).
TEST(Histogram, PercentilesWithinFivePercentOfExact) {
  std::mt19937_64 rng(42);
  std::lognormal_distribution<double> lognormal(std::log(300'000.0), 1.2);  // ~300 us median
  std::exponential_distribution<double> expo(1.0 / 2'000'000.0);
  std::uniform_int_distribution<uint64_t> uniform(1'000, 50'000'000);
  for (int dist = 0; dist < 3; ++dist) {
    for (int trial = 0; trial < 20; ++trial) {
      std::vector<uint64_t> samples;
      Histogram h;
      size_t n = 50 + rng() % 20000;
      for (size_t i = 0; i < n; ++i) {
        double x = dist == 0 ? lognormal(rng) : dist == 1 ? expo(rng) : double(uniform(rng));
        auto v = static_cast<uint64_t>(std::max(1.0, x));
        samples.push_back(v);
        h.record(v);
      }
      for (double q : {0.5, 0.9, 0.95, 0.99}) {
        double exact = exact_nearest_rank(samples, q);
        double got = h.percentile_ns(q);
        EXPECT_NEAR(got, exact, exact * 0.05) << "dist " << dist << " q " << q << " n " << n;
      }
    }
  }
}

TEST(Histogram, MergeEqualsRecordingEverything) {
  std::mt19937_64 rng(7);
  Histogram a, b, all;
  for (int i = 0; i < 5000; ++i) {
    uint64_t v = rng() % 10'000'000;
    (i % 2 ? a : b).record(v);
    all.record(v);
  }
  a.merge(b);
  EXPECT_EQ(a.count(), all.count());
  EXPECT_EQ(a.bins(), all.bins());
  for (double q : {0.5, 0.95, 0.99}) EXPECT_EQ(a.percentile_ns(q), all.percentile_ns(q));
}

TEST(Histogram, FromDenseMatchesRecords) {
  std::vector<uint64_t> dense(Histogram::bucket_count(), 0);
  Histogram h;
  for (uint64_t v : {5ull, 100ull, 100ull, 123456ull, 99999999ull}) {
    dense[Histogram::bucket_of(v)]++;
    h.record(v);
  }
  Histogram d = Histogram::from_dense(dense);
  EXPECT_EQ(d.bins(), h.bins());
  EXPECT_EQ(d.count(), 5u);
}

TEST(Histogram, EmptyIsZero) {
  Histogram h;
  EXPECT_EQ(h.percentile_ns(0.95), 0.0);
  EXPECT_EQ(h.mean_ns(), 0.0);
}
