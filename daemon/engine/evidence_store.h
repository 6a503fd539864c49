// The engine's evidence: one pool per config measured in the current epoch
// (an epoch ends when the workload drifts, since old evidence then describes
// a machine that is gone), and the metric's observed quantisation. Bounded:
// the least recently measured configs are evicted first.
#pragma once

#include <cstdint>
#include <map>
#include <optional>

#include "common/evidence_options.h"
#include "common/knob_info.h"
#include "common/window.h"
#include "evidence/evidence.h"

namespace specact::engine {

using evidence::Estimate;

class EvidenceStore {
 public:
  EvidenceStore(EvidenceOptions o, size_t max_configs, size_t max_window_values = 64)
      : opts_(o), max_configs_(max_configs), max_values_(max_window_values) {}
  // Adds one clean window measured under c; returns its objective value.
  std::optional<double> add(const Config& c, const Window& w, Metric m);
  // Unmeasured configs get a non-confident, empty estimate.
  Estimate estimate(const Config& c) const;
  void clear();
  const std::map<Config, evidence::Pool>& all() const { return by_config_; }
  const EvidenceOptions& options() const { return opts_; }

 private:
  EvidenceOptions opts_;
  size_t max_configs_;
  size_t max_values_;
  std::map<Config, evidence::Pool> by_config_;
  evidence::Quantisation quantum_;
  evidence::Spread spread_;  // over every pool, kept up to date by add()
};

}  // namespace specact::engine
