#include "common/histogram.h"

#include <algorithm>
#include <bit>
#include <cmath>

extern "C" {
#include "sampler_abi.h"
}

namespace specact {

int Histogram::bucket_count() { return SPECACT_HIST_BUCKETS; }

int Histogram::bucket_of(uint64_t v) {
  if (v < SPECACT_HIST_SUB) return static_cast<int>(v);
  int msb = 63 - std::countl_zero(v);
  if (msb > SPECACT_HIST_MAX_MSB) return SPECACT_HIST_BUCKETS - 1;
  int sub = static_cast<int>((v >> (msb - SPECACT_HIST_SUB_BITS)) & (SPECACT_HIST_SUB - 1));
  return (msb - SPECACT_HIST_SUB_BITS + 1) * SPECACT_HIST_SUB + sub;
}

uint64_t Histogram::bucket_lower(int b) {
  if (b < SPECACT_HIST_SUB) return static_cast<uint64_t>(b);
  int msb = b / SPECACT_HIST_SUB + SPECACT_HIST_SUB_BITS - 1;
  uint64_t sub = static_cast<uint64_t>(b % SPECACT_HIST_SUB);
  return (SPECACT_HIST_SUB + sub) << (msb - SPECACT_HIST_SUB_BITS);
}

uint64_t Histogram::bucket_width(int b) {
  if (b < SPECACT_HIST_SUB) return 1;
  int msb = b / SPECACT_HIST_SUB + SPECACT_HIST_SUB_BITS - 1;
  return uint64_t{1} << (msb - SPECACT_HIST_SUB_BITS);
}

void Histogram::record(uint64_t value_ns, uint64_t n) { add_bucket(bucket_of(value_ns), n); }

void Histogram::add_bucket(int bucket, uint64_t n) {
  if (n == 0 || bucket < 0 || bucket >= SPECACT_HIST_BUCKETS) return;
  auto key = static_cast<uint16_t>(bucket);
  auto it = std::lower_bound(bins_.begin(), bins_.end(), key,
                             [](const auto& bin, uint16_t k) { return bin.first < k; });
  if (it != bins_.end() && it->first == key)
    it->second += n;
  else
    bins_.insert(it, {key, n});
  total_ += n;
}

void Histogram::merge(const Histogram& other) {
  for (const auto& [bucket, n] : other.bins_) add_bucket(bucket, n);
}

Histogram Histogram::from_dense(std::span<const uint64_t> counts) {
  Histogram h;
  for (size_t b = 0; b < counts.size() && b < static_cast<size_t>(SPECACT_HIST_BUCKETS); ++b)
    if (counts[b]) {
      h.bins_.emplace_back(static_cast<uint16_t>(b), counts[b]);
      h.total_ += counts[b];
    }
  return h;
}

double Histogram::percentile_ns(double q) const {
  if (total_ == 0) return 0.0;
  q = std::clamp(q, 0.0, 1.0);
  // Nearest rank: the smallest value with at least ceil(q*N) samples at or below it.
  auto rank = static_cast<uint64_t>(std::ceil(q * static_cast<double>(total_)));
  rank = std::max<uint64_t>(rank, 1);
  uint64_t seen = 0;
  for (const auto& [bucket, n] : bins_) {
    seen += n;
    if (seen >= rank) {
      if (bucket < SPECACT_HIST_SUB) return static_cast<double>(bucket);
      return static_cast<double>(bucket_lower(bucket)) +
             static_cast<double>(bucket_width(bucket)) / 2.0;
    }
  }
  return static_cast<double>(bucket_lower(bins_.back().first));
}

double Histogram::mean_ns() const {
  if (total_ == 0) return 0.0;
  double sum = 0;
  for (const auto& [bucket, n] : bins_)
    sum += (static_cast<double>(bucket_lower(bucket)) +
            (bucket < SPECACT_HIST_SUB ? 0.0 : static_cast<double>(bucket_width(bucket)) / 2.0)) *
           static_cast<double>(n);
  return sum / static_cast<double>(total_);
}

}  // namespace specact
