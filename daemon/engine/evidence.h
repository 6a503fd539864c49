// Pooled, noise-aware evidence per config: every clean window measured under a
// config is merged into one histogram, and a p95 confidence interval is derived
// from both the pooled sample (order-statistic bound) and the window-to-window
// spread. Decisions compare intervals, never single windows.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <nlohmann/json_fwd.hpp>
#include <optional>

#include "common/histogram.h"
#include "common/knob_info.h"
#include "common/window.h"

namespace specact::engine {

struct EvidenceOptions {
  double z = 1.96;                // two-sided 95 %
  uint64_t min_samples = 50;      // pooled samples before a histogram p95 counts
  double prior_cv = 0.10;         // assumed window-to-window noise until data says otherwise
  double noise_floor = 0.03;      // histogram bucket resolution: never claim better than this
  size_t max_window_values = 64;  // per-config window values kept for the spread
};

struct Estimate {
  double p95_us = 0;  // point estimate of the objective
  double lo_us = 0;   // confidence interval
  double hi_us = 0;
  uint64_t samples = 0;
  int windows = 0;                   // windows that contributed
  std::optional<double> throughput;  // mean throughput_of() over the windows
  bool confident = false;            // enough evidence to decide on
  double half_width() const { return (hi_us - lo_us) / 2; }
};

nlohmann::json estimate_to_json(const Estimate& e);

// a confidently lower (better) than b: the intervals do not overlap.
bool confidently_better(const Estimate& a, const Estimate& b);

class ConfigEvidence {
 public:
  // Adds one clean window; returns the window's own objective value, if any.
  std::optional<double> add(const Window& w, Metric m);
  Estimate estimate(const EvidenceOptions& o) const;
  int windows() const { return windows_; }
  uint64_t last_window() const { return last_window_; }

 private:
  Histogram pooled_;                  // objective histogram (service or runq metric)
  std::deque<double> window_values_;  // per-window objective values, bounded
  double throughput_sum_ = 0;
  int throughput_n_ = 0;
  int windows_ = 0;
  uint64_t samples_ = 0;
  uint64_t last_window_ = 0;
  size_t max_values_ = 64;
  friend class EvidenceStore;
};

// Evidence for every config seen in the current epoch (an epoch ends when the
// workload drifts: old evidence no longer describes the machine). Bounded:
// the least recently measured configs are evicted first.
class EvidenceStore {
 public:
  EvidenceStore(EvidenceOptions o, size_t max_configs) : opts_(o), max_configs_(max_configs) {}
  std::optional<double> add(const Config& c, const Window& w, Metric m);
  // Unmeasured configs get a non-confident, empty estimate.
  Estimate estimate(const Config& c) const;
  bool has(const Config& c) const { return by_config_.count(c) != 0; }
  void clear() { by_config_.clear(); }
  const std::map<Config, ConfigEvidence>& all() const { return by_config_; }
  const EvidenceOptions& options() const { return opts_; }

 private:
  EvidenceOptions opts_;
  size_t max_configs_;
  std::map<Config, ConfigEvidence> by_config_;
};

}  // namespace specact::engine
