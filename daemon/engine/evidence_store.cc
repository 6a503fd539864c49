#include "engine/evidence_store.h"

#include <algorithm>

namespace specact::engine {

std::optional<double> EvidenceStore::add(const Config& c, const Window& w, Metric m) {
  auto it = by_config_.find(c);
  if (it == by_config_.end()) {
    if (by_config_.size() >= max_configs_) {
      auto oldest =
          std::min_element(by_config_.begin(), by_config_.end(), [](const auto& a, const auto& b) {
            return a.second.last_window() < b.second.last_window();
          });
      const evidence::Spread gone = oldest->second.spread();
      spread_.ss -= gone.ss;
      spread_.df -= gone.df;
      by_config_.erase(oldest);
    }
    it = by_config_.emplace(c, evidence::Pool(max_values_)).first;
  }
  const evidence::Spread before = it->second.spread();
  std::optional<double> v = it->second.add(w, m);
  const evidence::Spread after = it->second.spread();
  spread_.ss += after.ss - before.ss;
  spread_.df += after.df - before.df;
  if (v && m == Metric::CommandP95) quantum_.observe(*v);
  return v;
}

Estimate EvidenceStore::estimate(const Config& c) const {
  auto it = by_config_.find(c);
  if (it == by_config_.end()) return {};
  return it->second.estimate(opts_, &quantum_, &spread_);
}

void EvidenceStore::clear() {
  by_config_.clear();
  quantum_.clear();
  spread_ = {};
}

}  // namespace specact::engine
