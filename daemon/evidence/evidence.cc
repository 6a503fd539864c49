#include "evidence/evidence.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>

namespace specact::evidence {

namespace {

const Histogram* objective_hist(const Window& w, Metric m) {
  if (m == Metric::ServiceP95) return &w.service_hist;
  if (m == Metric::RunqP95) return &w.runq_hist;
  return nullptr;
}

// Two-sided 95 % Student t quantiles: with few windows the spread itself is
// uncertain, and a normal quantile would claim too much.
double t95(int df) {
  static const double kT[] = {0,    12.71, 4.30, 3.18, 2.78, 2.57, 2.45, 2.36,
                              2.31, 2.26,  2.23, 2.20, 2.18, 2.16, 2.14, 2.13};
  if (df <= 0) return kT[1];
  if (df < 16) return kT[df];
  return 1.96 + 2.5 / df;
}

// The prior spread counts as this many windows (see EvidenceOptions::prior_sd).
constexpr double kPriorWindows = 2;

}  // namespace

nlohmann::json estimate_to_json(const Estimate& e) {
  auto opt = [](const std::optional<double>& v) {
    return v ? nlohmann::json(*v) : nlohmann::json(nullptr);
  };
  return {{"p95_us", e.p95_us},
          {"lo_us", e.lo_us},
          {"hi_us", e.hi_us},
          {"se", e.se},
          {"resolution", e.resolution},
          {"p99_us", opt(e.p99_us)},
          {"throughput", opt(e.throughput)},
          {"requests_per_s", opt(e.requests_per_s)},
          {"samples", e.samples},
          {"windows", e.windows},
          {"confident", e.confident}};
}

void Quantisation::observe(double value_us) {
  if (!(value_us > 0) || !std::isfinite(value_us)) return;
  values_.insert(value_us);
  // Bounded: forget the extremes first, which are the least likely to be
  // compared with anything.
  while (values_.size() > kMaxValues) {
    values_.erase(values_.begin());
    if (values_.size() > kMaxValues) values_.erase(std::prev(values_.end()));
  }
}

double Quantisation::near(double value_us) const {
  if (!(value_us > 0)) return 0;
  double best = 0;
  auto it = values_.lower_bound(value_us / 2);
  if (it == values_.end()) return 0;
  double prev = *it;
  for (++it; it != values_.end() && *it <= value_us * 2; ++it) {
    double gap = std::log(*it / prev);
    if (best == 0 || gap < best) best = gap;
    prev = *it;
  }
  return best > 0 ? std::expm1(best) : 0;
}

std::optional<double> Pool::add(const Window& w, Metric m) {
  std::optional<double> value = objective_us(w, m);
  if (value && !(*value > 0)) value.reset();
  const Histogram* h = objective_hist(w, m);
  if (h && !h->empty()) {
    pooled_.merge(*h);
    samples_ += h->count();
  } else if (value) {
    samples_ += 1;
  }
  if (value) {
    const double lv = std::log(*value);
    log_sum_all_ += lv;
    ++valued_windows_;
    best_ = best_ == 0 ? *value : std::min(best_, *value);
    worst_ = std::max(worst_, *value);
    if (!w.low_confidence) {
      log_values_.push_back(lv);
      if (log_values_.size() > max_values_) log_values_.pop_front();
    }
  }
  if (auto tp = throughput_of(w, m)) {
    throughput_sum_ += *tp;
    ++throughput_n_;
  }
  if (w.duration_ms() > 0) {
    requests_sum_ += static_cast<double>(w.nvcsw) / (w.duration_ms() / 1e3);
    ++requests_n_;
    seconds_ += w.duration_ms() / 1e3;
  }
  ++windows_;
  last_window_ = w.index;
  return value;
}

double Spread::sd(const EvidenceOptions& o) const {
  return std::sqrt((kPriorWindows * o.prior_sd * o.prior_sd + ss) / (kPriorWindows + df));
}

Spread Pool::spread() const {
  Spread s;
  const size_t k = log_values_.size();
  if (k < 2) return s;
  double mean = 0;
  for (double v : log_values_) mean += v;
  mean /= static_cast<double>(k);
  for (double v : log_values_) s.ss += (v - mean) * (v - mean);
  s.df = static_cast<double>(k - 1);
  return s;
}

Estimate Pool::estimate(const EvidenceOptions& o, const Quantisation* quantum,
                        const Spread* spread) const {
  Estimate e;
  e.windows = windows_;
  e.samples = samples_;
  e.window_best_us = best_;
  e.window_worst_us = worst_;
  e.seconds = seconds_;
  if (throughput_n_ > 0) e.throughput = throughput_sum_ / throughput_n_;
  if (requests_n_ > 0) e.requests_per_s = requests_sum_ / requests_n_;

  const size_t k = log_values_.size();
  double mean = 0;
  for (double v : log_values_) mean += v;
  if (k) mean /= static_cast<double>(k);

  double se_order = 0;
  if (!pooled_.empty()) {
    // Distribution-free interval of a quantile: the ranks n*q +- z*sqrt(n*q*(1-q)).
    const double n = static_cast<double>(pooled_.count());
    const double q = 0.95;
    const double spread = o.interval_z * std::sqrt(n * q * (1 - q));
    e.p95_us = pooled_.percentile_ns(q) / 1e3;
    const double lo = pooled_.percentile_ns(std::clamp((n * q - spread) / n, 0.0, 1.0)) / 1e3;
    const double hi = pooled_.percentile_ns(std::clamp((n * q + spread + 1) / n, 0.0, 1.0)) / 1e3;
    if (e.p95_us > 0 && lo > 0 && hi > 0)
      se_order = std::max(std::log(hi / e.p95_us), std::log(e.p95_us / lo)) / o.interval_z;
    e.p99_us = pooled_.percentile_ns(0.99) / 1e3;
    e.resolution = kHistogramResolution;
    e.confident = pooled_.count() >= o.min_samples;
  } else if (valued_windows_ > 0) {
    // A command's own p95 per window: their geometric mean.
    e.p95_us = std::exp(k ? mean : log_sum_all_ / valued_windows_);
    e.confident = k > 0;
  } else {
    return e;  // nothing measured
  }
  if (quantum) e.resolution = std::max(e.resolution, quantum->near(e.p95_us));
  // Window-to-window spread, shrunk towards the workload's pooled spread (or
  // the prior) so that one lucky window is never "significant"; its
  // uncertainty is a t quantile with the pseudo-windows as extra degrees of
  // freedom.
  const double prior = spread ? spread->sd(o) : o.prior_sd;
  double ss = kPriorWindows * prior * prior;
  for (double v : log_values_) ss += (v - mean) * (v - mean);
  const double sd = std::sqrt(ss / (kPriorWindows + static_cast<double>(k) - (k ? 1 : 0)));
  const double t_scale = t95(static_cast<int>(k) + static_cast<int>(kPriorWindows)) / 1.96;
  const double se_between = t_scale * sd / std::sqrt(static_cast<double>(std::max<size_t>(k, 1)));
  e.window_sd = sd;
  e.window_log_mean = k ? mean : std::log(e.p95_us);
  e.se = std::sqrt(se_order * se_order + se_between * se_between);
  e.lo_us = e.p95_us * std::exp(-o.interval_z * e.se);
  e.hi_us = e.p95_us * std::exp(o.interval_z * e.se);
  return e;
}

std::string to_string(Verdict v) {
  switch (v) {
    case Verdict::Better:
      return "better";
    case Verdict::Worse:
      return "worse";
    case Verdict::Same:
      return "same";
    case Verdict::Unknown:
      return "unknown";
  }
  return "?";
}

double log_gain(const Estimate& a, const Estimate& b) {
  if (!(a.p95_us > 0) || !(b.p95_us > 0)) return 0;
  return std::log(b.p95_us / a.p95_us);
}

double effect_threshold(const Estimate& a, const Estimate& b, const EvidenceOptions& o) {
  return std::log1p(std::max({o.min_effect, a.resolution, b.resolution}));
}

double z_better(const Estimate& a, const Estimate& b) {
  const double se = std::sqrt(a.se * a.se + b.se * b.se);
  if (!(a.p95_us > 0) || !(b.p95_us > 0)) return 0;
  return log_gain(a, b) / std::max(se, 1e-9);
}

Verdict compare(const Estimate& a, const Estimate& b, const EvidenceOptions& o) {
  if (!a.confident || !b.confident) return Verdict::Unknown;
  const double d = log_gain(a, b);
  const double se = std::sqrt(a.se * a.se + b.se * b.se);
  const double m = effect_threshold(a, b, o);
  if (d >= m && d >= o.decide_z * se) return Verdict::Better;
  if (-d >= m && -d >= o.decide_z * se) return Verdict::Worse;
  if (std::fabs(d) + o.decide_z * se <= m) return Verdict::Same;
  return Verdict::Unknown;
}

int settling_windows(const EvidenceOptions& o) {
  return static_cast<int>(std::ceil(2 * o.decide_z * o.decide_z));
}

double rank_score(const Estimate& e) {
  if (!(e.p95_us > 0)) return INFINITY;
  return std::log(e.p95_us) + e.se;
}

std::string guard_violation(const Estimate& e, const GuardReference& ref, const EvidenceOptions& o,
                            bool command_throughput) {
  char buf[160];
  std::string why;
  auto add = [&](const char* s) { why += (why.empty() ? "" : ", ") + std::string(s); };
  if (ref.p99_us && e.p99_us && *ref.p99_us > 0 && *e.p99_us > *ref.p99_us * (1 + o.p99_margin)) {
    std::snprintf(buf, sizeof buf, "p99 %.0f us > baseline %.0f us + %.0f%%", *e.p99_us,
                  *ref.p99_us, o.p99_margin * 100);
    add(buf);
  }
  const bool by_requests = !command_throughput && ref.requests_per_s &&
                           *ref.requests_per_s >= kMinRequestsForGuard && e.requests_per_s;
  if (by_requests) {
    const double floor = o.throughput_floor * *ref.requests_per_s;
    const double count_sd = std::sqrt(floor / std::max(e.seconds, 1e-3));
    if (*e.requests_per_s < floor - kRequestDeficitZ * count_sd) {
      std::snprintf(buf, sizeof buf, "requests %.0f/s < %.2f x baseline %.0f/s", *e.requests_per_s,
                    o.throughput_floor, *ref.requests_per_s);
      add(buf);
    }
  } else if (ref.throughput && e.throughput && *ref.throughput > 0 &&
             *e.throughput < o.throughput_floor * *ref.throughput) {
    std::snprintf(buf, sizeof buf, "throughput %.3g < %.2f x baseline %.3g", *e.throughput,
                  o.throughput_floor, *ref.throughput);
    add(buf);
  }
  return why;
}

bool same_value(const KnobInfo& k, int64_t a, int64_t b) {
  if (a == b) return true;
  const double va = static_cast<double>(a), vb = static_cast<double>(b);
  const double tol = std::max(0.0, k.tolerance_fraction);
  switch (k.domain.scale) {
    case KnobScale::Enum:
      return false;
    case KnobScale::Log:
      return std::fabs(va - vb) <= tol * std::max(std::fabs(va), std::fabs(vb));
    case KnobScale::Linear:
      return std::fabs(va - vb) <= tol * static_cast<double>(k.domain.max - k.domain.min) + 1e-9;
  }
  return false;
}

bool same_config(const std::vector<KnobInfo>& knobs, const Config& a, const Config& b) {
  for (const auto& k : knobs) {
    auto ia = a.find(k.name), ib = b.find(k.name);
    if (ia == a.end() || ib == b.end()) {
      if ((ia == a.end()) != (ib == b.end())) return false;
      continue;
    }
    if (!same_value(k, ia->second, ib->second)) return false;
  }
  return true;
}

}  // namespace specact::evidence
