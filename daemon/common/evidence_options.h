// How sure the engine and the builtin agents must be before they call one
// config better than another. One set, shared: an agent that predicts a
// decision must judge the evidence exactly as the engine will.
#pragma once

#include <cstdint>
#include <optional>

namespace specact {

struct EvidenceOptions {
  // Two-sided 95 % intervals, for people and prompts.
  double interval_z = 1.96;
  // "A is better than B" is a one-sided test at 95 %: a decision moves one way.
  double decide_z = 1.645;
  // Pooled histogram samples before a histogram p95 counts: below ~50 the 95th
  // percentile rests on two or three samples.
  uint64_t min_samples = 50;
  // Window-to-window spread of a p95 (sd of its logarithm) assumed before a
  // config has data, worth two windows: one window alone never looks more
  // certain than a typical shared machine allows.
  double prior_sd = 0.10;
  // Differences smaller than this (relative) are not worth a knob change,
  // whatever the evidence: they are below what a user can tell apart.
  double min_effect = 0.05;
  // Guards a tuned config must keep, whatever its p95: its p99 no more than
  // this much worse than the baseline's (relative), and its throughput at
  // least this share of the baseline's.
  double p99_margin = 0.10;
  double throughput_floor = 0.9;
};

// What the guards compare a config with: the baseline's figures (scaled with
// the workload when it drifts).
struct GuardReference {
  std::optional<double> p99_us;
  std::optional<double> throughput;
  std::optional<double> requests_per_s;
};

}  // namespace specact
