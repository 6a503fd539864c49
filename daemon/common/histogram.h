// Log-linear latency histogram (same geometry as the BPF sampler, see
// bpf/sampler_abi.h), stored sparsely so windows can be kept and pooled cheaply.
#pragma once

#include <cstdint>
#include <span>
#include <utility>
#include <vector>

namespace specact {

class Histogram {
 public:
  static int bucket_of(uint64_t value_ns);
  static uint64_t bucket_lower(int bucket);
  static uint64_t bucket_width(int bucket);
  static int bucket_count();

  void record(uint64_t value_ns, uint64_t n = 1);
  void add_bucket(int bucket, uint64_t n);
  void merge(const Histogram& other);
  // Builds from a dense per-bucket count array (as read from the BPF map).
  static Histogram from_dense(std::span<const uint64_t> counts);

  uint64_t count() const { return total_; }
  bool empty() const { return total_ == 0; }
  // q in [0,1]; nearest-rank percentile, reported at the bucket midpoint (ns).
  double percentile_ns(double q) const;
  double mean_ns() const;
  // Sorted (bucket, count) pairs with count > 0.
  const std::vector<std::pair<uint16_t, uint64_t>>& bins() const { return bins_; }

 private:
  std::vector<std::pair<uint16_t, uint64_t>> bins_;
  uint64_t total_ = 0;
};

}  // namespace specact
