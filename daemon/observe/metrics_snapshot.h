// What the Prometheus exposition shows, as plain data: the daemon's state at
// one instant (gauges) plus counters accumulated since the daemon started.
// MetricsCollector builds it; render_exposition() turns it into text. Units are
// Prometheus base units (seconds), ratios are 0..1.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace specact::observe {

// A cumulative latency histogram: `buckets` are (upper bound in seconds,
// observations <= that bound), ascending; the +Inf bucket is `count`.
struct LatencyHistogram {
  std::vector<std::pair<double, uint64_t>> buckets;
  uint64_t count = 0;
  double sum_seconds = 0;  // estimated from bucket midpoints (the sampler keeps no sums)
};

struct KnobValues {
  std::optional<int64_t> current, confirmed, baseline;
  bool pinned = false;
};

// Per agent role ("speculator", "actor"), since the daemon started.
struct AgentCounters {
  uint64_t calls = 0;
  uint64_t errors = 0;
  uint64_t rejected = 0;  // candidates dropped by validation
  uint64_t prompt_tokens = 0;
  uint64_t completion_tokens = 0;
  double cost_usd = 0;
  uint64_t cached_tokens = 0;  // of prompt_tokens, served from the provider's prompt cache
};

struct MetricsSnapshot {
  std::string version;
  double start_time_seconds = 0;  // Unix time the daemon started
  std::string state;              // running, paused, converged, monitoring, waiting, stopped
  std::string mode;               // speculative, actor-only, speculator-only, recommend, monitor

  // The latest window (none before the first one or between sessions).
  std::string objective_metric;  // service_p95, runq_p95, command
  std::optional<uint64_t> window_index;
  std::optional<double> objective_p50_seconds, objective_p95_seconds, objective_p99_seconds;
  std::optional<double> baseline_p95_seconds;
  double hit_ratio = 0;
  uint64_t warnings = 0;

  std::map<std::string, KnobValues> knobs;  // by knob name

  // Counters since the daemon started.
  uint64_t windows_total = 0;
  // (kind, role) -> decisions; kind: applied, confirmed, overridden, reverted, yielded.
  std::map<std::pair<std::string, std::string>, uint64_t> decisions;
  uint64_t speculation_hits = 0, speculation_misses = 0;
  std::map<std::string, AgentCounters> agents;  // by role
  uint64_t apply_errors = 0;
  uint64_t textfile_errors = 0;
  LatencyHistogram service_latency, runq_latency;
};

}  // namespace specact::observe
