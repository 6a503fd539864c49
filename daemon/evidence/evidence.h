// The one evidence model of the engine and the builtin agents: windows of a
// config pooled into an estimate of its p95 with a standard error on the log
// scale, the comparison "A is better than B" that respects both the noise and
// the metric's resolution, and when two configs count as the same.
//
// Every quantity is on the log scale because latency effects are ratios (a
// slice change halves a p95 whether it is 60 ms or 60 us) and a p95's
// window-to-window spread grows with its size.
#pragma once

#include <cstdint>
#include <deque>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "common/evidence_options.h"
#include "common/histogram.h"
#include "common/knob_info.h"
#include "common/window.h"

namespace specact::evidence {

// A log-linear histogram reports a percentile at its bucket's midpoint and a
// bucket is at most 1/16 wide (bpf/sampler_abi.h): two p95s closer than one
// bucket cannot be told apart.
inline constexpr double kHistogramResolution = 1.0 / 16;

struct Estimate {
  double p95_us = 0;     // point estimate of the objective
  double se = 0;         // standard error of log(p95)
  double window_sd = 0;  // spread of one window's log p95 (shrunk towards the prior)
  // Mean of the windows' own log p95s: what one more window is compared with
  // (a pooled histogram's p95 sits above it when windows differ in scale).
  double window_log_mean = 0;
  double lo_us = 0;  // interval at EvidenceOptions::interval_z
  double hi_us = 0;
  // Relative step below which this metric cannot separate two values here
  // (histogram bucket width, or a command's observed quantisation).
  double resolution = 0;
  std::optional<double> p99_us;          // pooled, when the metric has a distribution
  std::optional<double> throughput;      // mean of throughput_of() per window
  std::optional<double> requests_per_s;  // mean voluntary sleeps per second (requests served)
  double window_best_us = 0;             // the lowest single-window value
  double window_worst_us = 0;            // the highest single-window value
  uint64_t samples = 0;
  int windows = 0;         // clean windows pooled
  double seconds = 0;      // their total duration
  bool confident = false;  // enough evidence to compare at all
  double half_width() const { return (hi_us - lo_us) / 2; }
};

nlohmann::json estimate_to_json(const Estimate& e);

// The distinct values a quantised metric has produced (a command that prints a
// p95 from its own coarse histogram). Their spacing is the metric's
// resolution: two readings one step apart may be the same latency.
class Quantisation {
 public:
  void observe(double value_us);
  // The smallest relative gap between two distinct observed values within a
  // factor of two of value_us; 0 when fewer than two are known there.
  double near(double value_us) const;
  void clear() { values_.clear(); }

 private:
  static constexpr size_t kMaxValues = 256;
  std::set<double> values_;
};

// The window-to-window spread of this workload's p95 (sd of its logarithm),
// pooled over every config measured: noise is a property of the machine and
// the workload, so a config measured once inherits what the others showed
// instead of an optimistic prior. Shrunk towards EvidenceOptions::prior_sd
// with the prior's two pseudo-windows.
struct Spread {
  double ss = 0;  // sum over configs of squared deviations from the config's mean
  double df = 0;  // sum over configs of (windows - 1)
  double sd(const EvidenceOptions& o) const;
};

// Every clean window of one config, pooled.
class Pool {
 public:
  explicit Pool(size_t max_window_values = 64) : max_values_(max_window_values) {}
  // Adds one window; returns its own objective value, if it has one. A
  // low-confidence window adds its samples to the pooled histogram but not a
  // point to the window-to-window spread (its own p95 is too unstable).
  std::optional<double> add(const Window& w, Metric m);
  // quantum: the metric's observed quantisation near this config's values;
  // spread: the workload's pooled window-to-window spread (nullptr: the prior).
  Estimate estimate(const EvidenceOptions& o, const Quantisation* quantum = nullptr,
                    const Spread* spread = nullptr) const;
  // This pool's part of a Spread.
  Spread spread() const;
  int windows() const { return windows_; }
  uint64_t last_window() const { return last_window_; }

 private:
  Histogram pooled_;
  std::deque<double> log_values_;  // per-window log objective, bounded
  double log_sum_all_ = 0;         // every window with a value (incl. low confidence)
  int valued_windows_ = 0;
  double best_ = 0;
  double worst_ = 0;
  double throughput_sum_ = 0;
  int throughput_n_ = 0;
  double requests_sum_ = 0;
  double seconds_ = 0;
  int requests_n_ = 0;
  int windows_ = 0;
  uint64_t samples_ = 0;
  uint64_t last_window_ = 0;
  size_t max_values_;
};

enum class Verdict { Better, Worse, Same, Unknown };
std::string to_string(Verdict v);

// log(b.p95 / a.p95): positive when a is lower (better).
double log_gain(const Estimate& a, const Estimate& b);
// The smallest relative difference that counts between a and b.
double effect_threshold(const Estimate& a, const Estimate& b, const EvidenceOptions& o);
// How a compares with b:
//  Better / Worse: the difference exceeds effect_threshold() and a one-sided
//    test at decide_z;
//  Same: the whole decide_z interval of the difference lies within the
//    threshold (an equivalence test): more windows would not change a decision;
//  Unknown: neither yet (or either side not confident).
Verdict compare(const Estimate& a, const Estimate& b, const EvidenceOptions& o);
// z of "a is lower than b" (0 when either side has no estimate).
double z_better(const Estimate& a, const Estimate& b);

// Windows a side that settle a gain of one window standard deviation: the
// difference of two means of n windows each has a standard error of
// sd * sqrt(2 / n), which is 1 / decide_z of one sd at n = 2 * decide_z^2.
int settling_windows(const EvidenceOptions& o);

// The ranking behind "the best measured config": the lowest p95 penalised by
// one standard error, so a single lucky window does not outrank a
// well-measured config by a hair.
double rank_score(const Estimate& e);

// Fewer voluntary sleeps per second than this cannot show the throughput
// floor's 10 % loss: a Poisson count of 100 already varies by 10 %.
inline constexpr double kMinRequestsForGuard = 100;
// A request count below the floor breaks the guard only when the deficit is
// beyond this many Poisson standard deviations of the count: the guard is
// checked every window, and a count of a few hundred misses a 10 % floor by
// chance every few dozen windows.
inline constexpr double kRequestDeficitZ = 3;

// Why figures break a guard against the reference ("" when they keep them):
// p99 beyond the margin; throughput below the floor: the command's own
// figure when it has one, else requests served (voluntary sleeps) for a
// target that sleeps per request, else on-CPU time.
std::string guard_violation(const Estimate& e, const GuardReference& ref, const EvidenceOptions& o,
                            bool command_throughput);

// Two values of a knob count as the same within its tolerance: enums exactly,
// log-scale knobs relative to the larger value, linear knobs relative to the
// domain's span.
bool same_value(const KnobInfo& k, int64_t a, int64_t b);
// Same on every listed knob; a knob missing from exactly one config differs.
bool same_config(const std::vector<KnobInfo>& knobs, const Config& a, const Config& b);

}  // namespace specact::evidence
