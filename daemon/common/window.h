// One measurement window of the target: what the metrics layer produces and
// what the engine and agents reason about.
#pragma once

#include <cstdint>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <string>

#include "common/histogram.h"

namespace specact {

struct LatencySummary {
  double p50_us = 0;
  double p95_us = 0;
  double p99_us = 0;
  uint64_t count = 0;

  static LatencySummary from(const Histogram& h);
};

struct Window {
  uint64_t index = 0;    // 1-based, per measurement session
  int64_t start_ns = 0;  // CLOCK_MONOTONIC
  int64_t end_ns = 0;
  LatencySummary runq;     // runnable -> on CPU
  LatencySummary service;  // wakeup -> next voluntary block
  Histogram runq_hist;     // kept so windows of one config can be pooled
  Histogram service_hist;
  uint64_t nvcsw = 0;
  uint64_t nivcsw = 0;
  uint64_t migrations = 0;
  double oncpu_ms = 0;
  // From the command metric source, when configured.
  std::optional<double> command_p95_us;
  std::optional<double> command_throughput;  // e.g. events/s parsed from the command
  std::string command_error;                 // why the command gave no p95 this window
  int64_t command_since_ns = 0;  // CLOCK_MONOTONIC start of what it measured (0: unknown)
  bool low_confidence = false;   // too few samples for a stable p95

  double duration_ms() const { return static_cast<double>(end_ns - start_ns) / 1e6; }
};

// The latency the engine minimises.
enum class Metric { ServiceP95, RunqP95, CommandP95 };
std::optional<Metric> metric_from_string(const std::string& s);
std::string to_string(Metric m);
// The objective value of a window in microseconds; nullopt if the window has none.
std::optional<double> objective_us(const Window& w, Metric m);
// Throughput proxy: target on-CPU ms per second, or the command's figure.
std::optional<double> throughput_of(const Window& w, Metric m);

// The monitor's JSON line (stable field names, documented in the README).
nlohmann::json window_to_json(const Window& w);
// The same as one line, fields in documented order ("window" first).
std::string window_to_json_line(const Window& w);

}  // namespace specact
