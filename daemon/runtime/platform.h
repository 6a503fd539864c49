// The runtime's seams: everything the runtime does to the machine (resolve a
// target, measure it, write its knobs) and every agent it starts goes through
// these interfaces. The real implementations (linux_platform.h) wrap
// TargetResolver, LatencySampler, CommandSource, KnobManager and the agents
// library; tests/sim/sim_platform.h stands in for all of them with the
// simulated kernel, so the whole runtime runs in tests without root or BPF.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "agents/agent.h"
#include "agents/agent_config.h"
#include "common/knob_info.h"
#include "common/window.h"
#include "knobs/knob_manager.h"
#include "target/target.h"

namespace specact {

// Measures one session's target, window after window.
class MetricSource {
 public:
  virtual ~MetricSource() = default;
  // Looks up the target's processes again (new ones are measured from now
  // on) and returns how many there are.
  virtual size_t refresh_targets() = 0;
  // Ends the window open since the previous close (or discard) and returns
  // it as the engine takes it: index, span, latency summaries, counters, the
  // command metric's figures and low_confidence.
  virtual Window close_window(int64_t now_ns) = 0;
  // Ends the open window without using it (the target had no process, the
  // engine did not exist yet, or a write mixed two configs in it): the next
  // window starts now and takes the discarded one's index.
  virtual void discard_window(int64_t now_ns) = 0;
};

// The one write path to the knobs of one session (the KnobManager gate:
// allow-list, clamp, rate limit, journal, write, read back).
class KnobGate {
 public:
  virtual ~KnobGate() = default;
  // Every knob, probed now: availability, domain, current value.
  virtual std::vector<KnobInfo> catalogue() = 0;
  // Never throws for bad names or values: each knob gets a KnobResult.
  virtual ApplyResult apply(const Config& desired, const std::string& who_why) = 0;
  // Current values of the available, allowed, readable knobs.
  virtual Config read_current() = 0;
  // Knobs changed behind specactd's back since its last write (no longer managed).
  virtual std::vector<YieldEvent> check_yielded() = 0;
  // Tasks born since the last call get the settings in force; returns how many.
  virtual size_t reapply_to_new_threads() = 0;
  // Puts back everything written in this session.
  virtual RestoreReport restore_all() = 0;
  // Restores what a crashed earlier run left (ok + nothing_to_do when nothing).
  virtual RestoreReport recover_leftover() = 0;
};

// The machine side of one session: its resolved target, the knob gate acting
// on that target's tasks and, opened once the knob journal has been
// recovered, the metric source measuring it.
class TargetSession {
 public:
  virtual ~TargetSession() = default;
  virtual KnobGate& knobs() = 0;
  // Opens the metric source (once). Throws SamplerError when the objective
  // cannot be measured here.
  virtual MetricSource& open_metrics() = 0;
};

class Platform {
 public:
  virtual ~Platform() = default;
  // Throws TargetError when `spec` cannot be used now (no such pid, no cgroup
  // v2 on this host, ...).
  virtual void validate_target(const TargetSpec& spec) = 0;
  // Resolves and validates `spec` (TargetError) and opens its knob gate.
  virtual std::unique_ptr<TargetSession> open_target(const TargetSpec& spec) = 0;
  // The knob catalogue probed without a target (ListKnobs between sessions).
  virtual std::vector<KnobInfo> catalogue_without_target() = 0;
  // Who a pid is, so a pid target saved before a restart is not handed to a
  // process that only reuses the number: this boot's id ("" when unknown)
  // and the process's start time (0 when there is no such process).
  virtual std::string boot_id() = 0;
  virtual uint64_t process_start_time(pid_t pid) = 0;
  // CPUs the target's threads can run on: the agents judge its CPU share
  // against them.
  virtual int online_cpus() const = 0;
};

class AgentFactory {
 public:
  virtual ~AgentFactory() = default;
  // Throws AgentConfigError when the config cannot work here.
  virtual std::unique_ptr<Agent> make(AgentRole role, const AgentConfig& config) = 0;
};

}  // namespace specact
