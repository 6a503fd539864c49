#include "engine/evidence.h"

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>

namespace specact::engine {

namespace {

// Two-sided 95 % Student t quantiles for small degrees of freedom; the engine
// scales them by z/1.96 when a different confidence is configured.
double t95(int df) {
  static const double kT[] = {0,    12.71, 4.30, 3.18, 2.78, 2.57, 2.45, 2.36,
                              2.31, 2.26,  2.23, 2.20, 2.18, 2.16, 2.14, 2.13};
  if (df <= 0) return kT[1];
  if (df < 16) return kT[df];
  return 1.96 + 2.5 / df;  // close enough beyond the table
}

const Histogram* objective_hist(const Window& w, Metric m) {
  if (m == Metric::ServiceP95) return &w.service_hist;
  if (m == Metric::RunqP95) return &w.runq_hist;
  return nullptr;
}

}  // namespace

nlohmann::json estimate_to_json(const Estimate& e) {
  nlohmann::json j = {{"p95_us", e.p95_us},   {"lo_us", e.lo_us},     {"hi_us", e.hi_us},
                      {"samples", e.samples}, {"windows", e.windows}, {"confident", e.confident}};
  j["throughput"] = e.throughput ? nlohmann::json(*e.throughput) : nlohmann::json(nullptr);
  return j;
}

bool confidently_better(const Estimate& a, const Estimate& b) {
  return a.confident && b.confident && a.hi_us < b.lo_us;
}

std::optional<double> ConfigEvidence::add(const Window& w, Metric m) {
  std::optional<double> value = objective_us(w, m);
  const Histogram* h = objective_hist(w, m);
  if (h && !h->empty()) {
    pooled_.merge(*h);
    samples_ += h->count();
  } else if (value) {
    samples_ += std::max<uint64_t>(1, m == Metric::CommandP95 ? 1 : w.service.count);
  }
  // A low-confidence window still adds its samples to the pool, but its own
  // p95 is too unstable to count as a point of the window-to-window spread.
  if (value && !w.low_confidence) {
    window_values_.push_back(*value);
    if (window_values_.size() > max_values_) window_values_.pop_front();
  }
  if (auto tp = throughput_of(w, m)) {
    throughput_sum_ += *tp;
    ++throughput_n_;
  }
  ++windows_;
  last_window_ = w.index;
  return value;
}

Estimate ConfigEvidence::estimate(const EvidenceOptions& o) const {
  Estimate e;
  e.windows = windows_;
  e.samples = samples_;
  if (throughput_n_ > 0) e.throughput = throughput_sum_ / throughput_n_;
  const size_t k = window_values_.size();
  double mean = 0;
  for (double v : window_values_) mean += v;
  if (k) mean /= static_cast<double>(k);

  double hw_pool = 0;
  if (!pooled_.empty()) {
    // Distribution-free interval for a quantile: the ranks n*q +- z*sqrt(n*q*(1-q)).
    const double n = static_cast<double>(pooled_.count());
    const double q = 0.95;
    const double spread = o.z * std::sqrt(n * q * (1 - q));
    const double qlo = std::clamp((n * q - spread) / n, 0.0, 1.0);
    const double qhi = std::clamp((n * q + spread + 1) / n, 0.0, 1.0);
    e.p95_us = pooled_.percentile_ns(q) / 1e3;
    const double lo = pooled_.percentile_ns(qlo) / 1e3;
    const double hi = pooled_.percentile_ns(qhi) / 1e3;
    hw_pool = std::max(e.p95_us - lo, hi - e.p95_us);
    // Low-confidence windows pool into this too: enough of them together count.
    e.confident = pooled_.count() >= o.min_samples;
  } else if (k) {
    e.p95_us = mean;
    e.confident = true;
  } else {
    return e;  // nothing measured
  }
  // Window-to-window spread, shrunk towards the prior when there are few windows
  // (two pseudo-observations), so one lucky window is never "significant".
  const double prior_sd = o.prior_cv * e.p95_us;
  double ss = 2 * prior_sd * prior_sd;
  for (double v : window_values_) ss += (v - mean) * (v - mean);
  const double sd = std::sqrt(ss / static_cast<double>(k + 1));
  // The prior counts as a few degrees of freedom: the noise level of a window is
  // roughly known before this config was ever measured.
  const double t = t95(static_cast<int>(k) + 3) * o.z / 1.96;
  const double hw_between = t * sd / std::sqrt(static_cast<double>(std::max<size_t>(k, 1)));
  const double hw = std::max({hw_pool, hw_between, o.noise_floor * e.p95_us});
  e.lo_us = std::max(0.0, e.p95_us - hw);
  e.hi_us = e.p95_us + hw;
  return e;
}

std::optional<double> EvidenceStore::add(const Config& c, const Window& w, Metric m) {
  auto it = by_config_.find(c);
  if (it == by_config_.end()) {
    if (by_config_.size() >= max_configs_) {
      auto oldest =
          std::min_element(by_config_.begin(), by_config_.end(), [](const auto& a, const auto& b) {
            return a.second.last_window() < b.second.last_window();
          });
      by_config_.erase(oldest);
    }
    it = by_config_.emplace(c, ConfigEvidence{}).first;
    it->second.max_values_ = opts_.max_window_values;
  }
  return it->second.add(w, m);
}

Estimate EvidenceStore::estimate(const Config& c) const {
  auto it = by_config_.find(c);
  if (it == by_config_.end()) return {};
  return it->second.estimate(opts_);
}

}  // namespace specact::engine
