// Where to measure next: a coordinate line search around the best measured
// config (the incumbent), stateless (everything it needs is in the evidence,
// so the same input always gives the same steps).
//
//  0. A point measured better than the incumbent but still within the noise,
//     and known less well, is measured again before anything else: set aside
//     as "no better" it would hide the very effect the search looks for.
//  1. Screen before refining: every searched knob first gets large, safe
//     steps from the incumbent, half-way to each edge of its domain (on the
//     log scale for log knobs), or to each neighbouring enum value; the
//     target's request size starts just above its burst when it has one.
//  2. Plateaus widen: a log knob whose half-way step stayed within the noise
//     is tried at the domain edge, where cliffs hide.
//  3. A knob whose largest steps all stayed within the noise is set aside for
//     the epoch (the engine starts a new epoch when the workload drifts).
//  4. Cliffs and valleys are bracketed: once every knob is screened, a knob
//     whose neighbours on both sides of the incumbent are measurably worse is
//     bisected towards the worse side with the widest gap, down to its
//     tolerance; a side that stayed within the noise is a plateau and is not.
#pragma once

#include <string>
#include <vector>

#include "agents/policy.h"

namespace specact::policy {

struct Step {
  enum class Kind { Confirm, Burst, Screen, Widen, Refine };
  Kind kind = Kind::Screen;
  Config config;
  std::string knob;
  std::string why;
};

// Windows a side that settle a gain of one window standard deviation.
int settling_windows(const PolicyInput& in);

// Next steps from `incumbent` (a config with confident evidence), most useful
// first; empty when the search has nothing left to measure.
std::vector<Step> next_steps(const PolicyInput& in, const std::vector<ConfigEvidence>& evidence,
                             const ConfigEvidence& incumbent);

// The best measured config that keeps the guards (nullptr if none is
// confident): lowest evidence::rank_score.
const ConfigEvidence* champion(const PolicyInput& in, const std::vector<ConfigEvidence>& evidence);
// The config the search and the decisions stand on: `reference` (the
// confirmed config) unless a measured config is better than it beyond the
// noise (evidence::compare), then the best-ranked of those. Near-equal
// configs never take turns: only evidence moves it.
const ConfigEvidence* incumbent(const PolicyInput& in, const std::vector<ConfigEvidence>& evidence,
                                const Config& reference);
// While the champion (best ranked) is ahead of the incumbent of `reference`
// but not beyond the noise (evidence::compare says Unknown), the less certain
// of the two: more windows of it are what settles which is better. nullptr
// when nothing is unsettled.
const ConfigEvidence* unsettled_side(const PolicyInput& in,
                                     const std::vector<ConfigEvidence>& evidence,
                                     const Config& reference);

}  // namespace specact::policy
