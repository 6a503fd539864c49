// Builds MetricsSnapshots: gauges from the daemon's StatusSnapshot at the
// moment of a scrape (the same data `specactctl status --json` shows),
// counters from the audit-trail events since the daemon started, and the
// cumulative latency histograms from every closed window. Runs on the
// daemon's event loop; no locking.
#pragma once

#include <array>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

#include "common/control.h"
#include "common/window.h"
#include "observe/metrics_snapshot.h"

namespace specact::observe {

class MetricsCollector {
 public:
  // Histogram bucket bounds: powers of two from 2^kFirstBoundLog2 ns (4.1 us)
  // to 2^kLastBoundLog2 ns (1.07 s). They are edges of the sampler's
  // log-linear buckets (bpf/sampler_abi.h), so no sampler bucket straddles a
  // bound and every count is exact; a factor of two keeps a fleet's series
  // count low while histogram_quantile() still places a p95 within a bucket.
  static constexpr int kFirstBoundLog2 = 12;
  static constexpr int kLastBoundLog2 = 30;
  static constexpr int kBounds = kLastBoundLog2 - kFirstBoundLog2 + 1;

  // `objective_metric`: the configured objective (service_p95, ...), used
  // until a window names its own.
  MetricsCollector(std::string version, double start_time_seconds, std::string objective_metric);

  // One audit-trail event: a history.jsonl object ("type" and its fields).
  // Unknown types and missing fields are ignored.
  void on_event(const nlohmann::json& event);
  // A closed window: its service and run-queue histograms are added.
  void on_window(const Window& w);
  // A failed write of the textfile.
  void on_textfile_error() { ++snap_.textfile_errors; }

  MetricsSnapshot snapshot(const StatusSnapshot& status) const;

 private:
  struct Cumulative {
    std::array<uint64_t, kBounds> below{};  // observations first counted at bound i
    uint64_t count = 0;
    double sum_ns = 0;
    void add(const Histogram& h);
    LatencyHistogram to_histogram() const;
  };

  MetricsSnapshot snap_;  // counters; gauges are filled in by snapshot()
  Cumulative service_, runq_;
};

}  // namespace specact::observe
