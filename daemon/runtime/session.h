// One tuning session: everything that exists only while a target is being
// tuned, and the builder that opens it and, once the target has processes,
// builds its engine.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <utility>
#include <vector>

#include "agents/agent.h"
#include "common/clock.h"
#include "engine/engine.h"
#include "runtime/event_sink.h"
#include "runtime/platform.h"
#include "runtime/run_config.h"
#include "runtime/warm_start.h"

namespace specact {

struct Session {
  std::unique_ptr<TargetSession> target;  // the machine side: knobs and metrics
  KnobGate* knobs = nullptr;              // the target's
  MetricSource* metrics = nullptr;        // the target's
  std::unique_ptr<engine::Engine> engine;
  std::unique_ptr<Agent> speculator;
  std::unique_ptr<Agent> actor;
  int64_t started_ns = 0;
  // A comm, cgroup or unit target may have no process yet (a service started
  // before the application it tunes) or lose all of them (a restart). The
  // engine is built when the first process appears, so its knob set and
  // baseline come from real tasks; while the target is empty no window is
  // judged, and the settings in force reach the returning tasks.
  bool target_empty = false;
  bool pause_pending = false;  // paused before the engine existed
  // Agent replies that arrived while the target had no process.
  std::vector<std::pair<AgentRole, AgentReply>> deferred_replies;
  WarmStartProgress warm;

  Agent* agent(AgentRole r) { return r == AgentRole::Speculator ? speculator.get() : actor.get(); }
};

class SessionBuilder {
 public:
  // All must outlive the builder; `config` is read at each call (its mode
  // follows set_mode).
  SessionBuilder(const RunConfig& config, Platform& platform, AgentFactory& agents,
                 EventSink& events, const Clock& clock)
      : cfg_(config), platform_(platform), agents_(agents), events_(events), clock_(clock) {}

  // Opens `target` on the platform (TargetError), restores what a crashed
  // earlier run left (recorded; ConfigError when it could not be), opens the
  // metric source (SamplerError) and makes the agents (AgentConfigError).
  // The session has no engine yet.
  std::unique_ptr<Session> open(const TargetSpec& target) const;
  // Builds the engine from the knobs the target's processes have now (their
  // values are the baseline), records session_started, calls
  // `before_first_window` (settings restored for this target go in before
  // anything is measured) and opens window 1.
  void start_engine(Session& s, const TargetSpec& target,
                    const std::function<void()>& before_first_window = nullptr) const;

 private:
  const RunConfig& cfg_;
  Platform& platform_;
  AgentFactory& agents_;
  EventSink& events_;
  const Clock& clock_;
};

}  // namespace specact
