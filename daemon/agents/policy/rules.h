// Scheduler knowledge as stated rules, and the small helpers every builtin
// role shares. Each rule is a fact about the scheduler or a statistic of the
// target, never a number taken from one workload.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "agents/policy.h"

namespace specact::policy {

// A knob's value in c, else in force now, else as read, else its default.
int64_t knob_value(const PolicyInput& in, const KnobInfo& k, const Config& c);
// c completed with every tunable knob (clamped), so configs compare by value.
Config full_config(const PolicyInput& in, const Config& c);
// Same on every tunable knob, within each knob's tolerance.
bool same_config(const PolicyInput& in, const Config& a, const Config& b);
const ConfigEvidence* find_evidence(const PolicyInput& in,
                                    const std::vector<ConfigEvidence>& evidence, const Config& c);

// The target's on-CPU time between a wakeup and its next voluntary sleep
// (its request size), when it sleeps at all.
std::optional<double> burst_us(const PolicyInput& in);
// The target's on-CPU time as a share of every online CPU.
std::optional<double> cpu_share(const PolicyInput& in);
// The target alone keeps every CPU busy (SearchOptions::saturated_share).
bool saturating(const PolicyInput& in);

// EEVDF's slice is a request size: a task runs until it sleeps or its slice
// is used up, then waits behind the deadlines of every other runnable task.
// A target whose burst is longer than the largest slice the knob allows (or
// that never sleeps) is CPU-bound: every unit of its work that straddles a
// slice end waits a round, so it wants a slice as long as possible.
bool cpu_bound(const PolicyInput& in, const KnobInfo& slice);
// For a target that sleeps between requests: a slice just above its burst
// (SearchOptions::slice_burst_margin), so a woken request runs to completion
// on an early deadline. Rounded to two significant digits.
std::optional<int64_t> slice_for_burst(const PolicyInput& in, const KnobInfo& slice);

// The builtin search spends windows on a knob at all (a conditional knob
// only matters under a condition it cannot see: it is left to pins and LLM
// agents).
bool searched(const KnobInfo& k);
// Screening order, lowest first: the target's request size, then its other
// own knobs, then machine-wide ones; within each, direct knobs (how its
// requests are scheduled) before relative ones (only its share against
// others); relative knobs after every direct one while the target saturates
// the CPUs (they cannot shorten waits behind its own threads).
int screen_rank(const PolicyInput& in, const KnobInfo& k);
// Which way a numeric knob is screened first: -1 down, +1 up.
int first_direction(const PolicyInput& in, const KnobInfo& k, size_t order);

}  // namespace specact::policy
