// The runtime's seams (daemon/runtime/platform.h) on the simulated kernel: a
// knob gate that writes into a simulated machine, a metric source that
// measures the SimKernel under the knobs in force, and scripted agents that
// answer on the runtime's loop. With them `Runtime` runs in a test without
// root, BPF or real time: the test advances a ManualClock, closes windows and
// polls the loop for agent replies.
//
// CMake: link `specact_sim_runtime` (it links the runtime library).
#pragma once

#include <boost/asio/io_context.hpp>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "runtime/platform.h"
#include "sim_kernel.h"

namespace specact::sim {

// The simulated machine the runtime tunes. Tests read it to see what was
// written and change it to inject processes coming and going, failing writes
// and changes made behind the daemon's back.
struct SimMachine {
  explicit SimMachine(SimWorkload workload, uint64_t seed = 7);

  SimKernel kernel;
  std::vector<KnobInfo> knobs = catalogue();  // what the gate offers (current: from in_force)
  Config in_force;                            // every knob's value now
  Config original;                            // values before the session's first write
  size_t processes = 1;                       // the target's processes now
  bool target_exists = true;                  // false: validate/open fail with TargetError
  bool metrics_unavailable = false;           // true: open_metrics throws SamplerError
  // knob -> error: apply() reports the knob Failed with this error and leaves it.
  std::map<std::string, std::string> failing_writes;
  // What recover_leftover() reports (default: nothing to do).
  RestoreReport leftover;
  // Who the target's pids are: a pid target saved before a restart is kept
  // only while both are the same (change them for a reboot or a reused pid).
  std::string boot_id = "sim-boot";
  uint64_t start_time = 1;

  // Observations.
  std::vector<Config> applies;  // every apply's desired config, in order
  uint64_t reads = 0;           // read_current() calls
  uint64_t restores = 0;        // restore_all() calls
  uint64_t reapplies = 0;       // reapply_to_new_threads() calls
  std::set<std::string> yielded;

  // Someone else sets a knob: the next check_yielded() (or apply of it)
  // reports it, and the gate leaves it alone from then on.
  void change_behind_back(const std::string& knob, int64_t value);

 private:
  friend class SimKnobGate;
  std::vector<YieldEvent> pending_yields_;
};

class SimPlatform : public Platform {
 public:
  explicit SimPlatform(SimMachine& machine) : machine_(machine) {}
  void validate_target(const TargetSpec& spec) override;
  std::unique_ptr<TargetSession> open_target(const TargetSpec& spec) override;
  std::vector<KnobInfo> catalogue_without_target() override;
  std::string boot_id() override { return machine_.boot_id; }
  uint64_t process_start_time(pid_t) override {
    return machine_.target_exists ? machine_.start_time : 0;
  }
  int online_cpus() const override { return 2; }  // the development machines

 private:
  SimMachine& machine_;
};

// Agents that answer with a scripted reply, posted to the loop (never inline):
// the reply arrives on the test's next poll of the io_context.
class ScriptedAgents : public AgentFactory {
 public:
  using Policy = std::function<AgentReply(const AgentContext&)>;
  explicit ScriptedAgents(boost::asio::io_context& io) : io_(io) {}

  Policy speculator, actor;  // unset: an empty reply
  // make() throws AgentConfigError with this message when non-empty.
  std::string config_error;

  struct Call {
    AgentRole role;
    AgentContext context;
  };
  std::vector<Call> calls;
  uint64_t cancels = 0;
  size_t calls_of(AgentRole r) const;

  std::unique_ptr<Agent> make(AgentRole role, const AgentConfig& config) override;

 private:
  boost::asio::io_context& io_;
};

}  // namespace specact::sim
