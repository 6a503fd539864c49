// Shared by the engine and agents suites (both drive the real engine here).
// Drives the engine in virtual time against the simulated kernel: windows are
// measured by tests/sim, agents answer after a configurable virtual latency,
// applies take effect in the simulated machine the moment they are emitted.
// As the runtime does, a write made by an agent's reply drops the open window
// (it would mix two configs) and starts the next one at the write; with
// `restart_window_on_write` off, that window is measured piecewise and merged
// (and the engine marks it straddled).
#pragma once

#include <algorithm>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "common/clock.h"
#include "engine/engine.h"
#include "sim_kernel.h"

namespace specact::engine::testing {

using Policy = std::function<AgentReply(const AgentContext&)>;

struct AppliedRecord {
  uint64_t window = 0;  // windows completed when it was emitted
  ApplyAction action;
};

struct CallRecord {
  uint64_t window = 0;
  AgentRole role;
  AgentContext context;
};

class SimDriver {
 public:
  static constexpr int64_t kWindowNs = 1'000'000'000;

  SimDriver(EngineOptions opts, sim::SimWorkload workload, uint64_t seed = 7,
            std::vector<KnobInfo> knobs = sim::catalogue())
      : kernel_(workload, seed),
        engine_(opts, clock_, knobs, baseline_of(knobs)),
        machine_(engine_.baseline()) {}

  static Config baseline_of(const std::vector<KnobInfo>& knobs) {
    Config c;
    for (const auto& k : knobs)
      if (k.current) c[k.name] = *k.current;
    return c;
  }

  Engine& engine() { return engine_; }
  sim::SimKernel& kernel() { return kernel_; }
  ManualClock& clock() { return clock_; }
  const Config& machine() const { return machine_; }

  Policy speculator, actor;
  double speculator_latency_windows = 0.5;
  double actor_latency_windows = 10.3;
  uint64_t speculator_tokens_per_call = 600;
  uint64_t actor_tokens_per_call = 2400;
  // Usage of one call (tokens, cached tokens, cost) from its context and
  // reply; unset, a call bills the fixed *_tokens_per_call above (3/4 prompt).
  std::function<AgentUsage(const AgentContext&, const AgentReply&)> usage_model;
  // Returns true for an apply the knob layer's rate limit holds back.
  std::function<bool(const ApplyAction&)> rate_limit;
  bool restart_window_on_write = true;  // as the runtime (see above)

  std::vector<Event> events;
  std::vector<AppliedRecord> applies;
  std::vector<CallRecord> calls;
  std::vector<double> true_p95;  // per window: true p95 of the config in force at its end
  std::vector<Config> in_force;  // per window: machine config at its end
  std::vector<bool> in_trial;    // per window: that config is a speculator's trial
  uint64_t cancels = 0;

  // Runs `n` windows.
  void run(int n) {
    for (int i = 0; i < n; ++i) step();
  }

  void step() {
    int64_t start = clock_.now_ns();
    int64_t end = start + kWindowNs;
    int64_t cursor = start;
    Window merged;
    merged.start_ns = start;
    merged.end_ns = end;
    kernel_.begin_window(start);
    bool any = false;
    for (;;) {
      // The next agent reply due inside this window, if any.
      int idx = -1;
      for (int r = 0; r < 2; ++r)
        if (pending_[r] && pending_[r]->first <= end &&
            (idx < 0 || pending_[r]->first < pending_[idx]->first))
          idx = r;
      if (idx < 0) break;
      int64_t due = std::max(pending_[idx]->first, cursor);
      if (due > cursor) {
        merge(merged, kernel_.measure(machine_, cursor, due - cursor), any);
        cursor = due;
      }
      clock_.set_ns(due);
      AgentReply reply = std::move(pending_[idx]->second);
      pending_[idx].reset();
      const size_t applied = applies.size();
      execute(engine_.on_agent_reply(idx == 0 ? AgentRole::Speculator : AgentRole::Actor, reply));
      if (restart_window_on_write && applies.size() != applied) {
        start = due;
        end = start + kWindowNs;
        merged = Window{};
        merged.start_ns = start;
        merged.end_ns = end;
        kernel_.begin_window(start);
        any = false;
      }
    }
    if (end > cursor) merge(merged, kernel_.measure(machine_, cursor, end - cursor), any);
    clock_.set_ns(end);
    merged.index = ++windows_;
    merged.runq = LatencySummary::from(merged.runq_hist);
    merged.service = LatencySummary::from(merged.service_hist);
    merged.low_confidence = merged.service.count < kernel_.workload().min_samples;
    if (kernel_.workload().command_metric && merged.service.count) {
      merged.command_p95_us = kernel_.workload().quantise(merged.service.p95_us);
      merged.command_throughput =
          merged.oncpu_ms / (kWindowNs / 1e9) / (kernel_.workload().work_us / 1e3);
    }
    true_p95.push_back(kernel_.true_p95_us(machine_));
    in_force.push_back(machine_);
    in_trial.push_back(engine_.trial_in_force());
    execute(engine_.on_window(merged));
  }

  void execute(Output out) {
    for (auto& e : out.events) events.push_back(e);
    for (auto& a : out.actions) {
      if (auto* ap = std::get_if<ApplyAction>(&a)) {
        applies.push_back({windows_, *ap});
        ApplyOutcome o;
        if (rate_limit && rate_limit(*ap)) {
          // The knob layer's rate limit held every changed knob back.
          for (const auto& [k, v] : ap->config)
            if (machine_.count(k) && machine_.at(k) != v) o.unwritten.push_back(k);
          o.retry = !o.unwritten.empty();
        } else {
          machine_ = ap->config;
        }
        o.applied = machine_;
        execute(engine_.on_apply_outcome(o));
      } else if (auto* call = std::get_if<CallAgentAction>(&a)) {
        calls.push_back({windows_, call->role, call->context});
        const bool spec = call->role == AgentRole::Speculator;
        Policy& p = spec ? speculator : actor;
        AgentReply reply = p ? p(call->context) : AgentReply{};
        if (usage_model) {
          reply.usage = usage_model(call->context, reply);
        } else {
          reply.usage.prompt_tokens =
              (spec ? speculator_tokens_per_call : actor_tokens_per_call) * 3 / 4;
          reply.usage.completion_tokens =
              (spec ? speculator_tokens_per_call : actor_tokens_per_call) / 4;
        }
        double lat = spec ? speculator_latency_windows : actor_latency_windows;
        pending_[spec ? 0 : 1] = {clock_.now_ns() + static_cast<int64_t>(lat * kWindowNs),
                                  std::move(reply)};
      } else if (auto* c = std::get_if<CancelAgentAction>(&a)) {
        pending_[c->role == AgentRole::Speculator ? 0 : 1].reset();
        ++cancels;
      }
    }
  }

  void command(Output out) { execute(std::move(out)); }

  size_t count(const std::string& type) const {
    return static_cast<size_t>(std::count_if(events.begin(), events.end(),
                                             [&](const Event& e) { return e.type == type; }));
  }
  size_t calls_of(AgentRole r) const {
    return static_cast<size_t>(std::count_if(calls.begin(), calls.end(),
                                             [&](const CallRecord& c) { return c.role == r; }));
  }
  // First window (1-based) whose config in force has a true p95 within `tol` of
  // `target_us`; 0 when never.
  uint64_t first_within(double target_us, double tol = 0.10) const {
    for (size_t i = 0; i < true_p95.size(); ++i)
      if (true_p95[i] <= target_us * (1 + tol)) return i + 1;
    return 0;
  }
  // First window from which the config held stays within `tol` of `target_us`
  // to the end, trials aside (a trial is one window of exploration; the config
  // held between them is what the search has reached); 0 when never. The
  // Generality suite's "settled".
  uint64_t settled_within(double target_us, double tol = 0.10) const {
    return first_staying_within(target_us, tol, /*skip_trials=*/true);
  }
  // The same with every window counted, trials included; 0 when never.
  uint64_t every_window_within(double target_us, double tol = 0.10) const {
    return first_staying_within(target_us, tol, /*skip_trials=*/false);
  }

 private:
  uint64_t first_staying_within(double target_us, double tol, bool skip_trials) const {
    uint64_t first = 0;
    for (size_t i = 0; i < true_p95.size(); ++i) {
      if (skip_trials && in_trial[i]) continue;
      if (true_p95[i] <= target_us * (1 + tol)) {
        if (!first) first = i + 1;
      } else {
        first = 0;
      }
    }
    return first;
  }
  static void merge(Window& into, const Window& part, bool& any) {
    into.runq_hist.merge(part.runq_hist);
    into.service_hist.merge(part.service_hist);
    into.nvcsw += part.nvcsw;
    into.nivcsw += part.nivcsw;
    into.migrations += part.migrations;
    into.oncpu_ms += part.oncpu_ms;
    any = true;
  }

  ManualClock clock_;
  sim::SimKernel kernel_;
  Engine engine_;
  Config machine_;
  uint64_t windows_ = 0;
  std::optional<std::pair<int64_t, AgentReply>> pending_[2];
};

// A reply with the given candidates (best first).
inline AgentReply reply_with(std::vector<Config> configs, double confidence = 0.8,
                             std::string why = "scripted") {
  AgentReply r;
  for (auto& c : configs) r.candidates.push_back({std::move(c), confidence, why});
  return r;
}

}  // namespace specact::engine::testing
