// A deterministic in-memory ControlSurface: stands in for the daemon runtime so
// the tests exercise the transport (adaptor, proxy, policy, specactctl).
#pragma once

#include <algorithm>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common/control.h"
#include "common/modes.h"

namespace specact::testing {

class FakeSurface : public ControlSurface {
 public:
  FakeSurface() {
    KnobInfo slice;
    slice.name = "task.slice_us";
    slice.family = "task";
    slice.unit = "us";
    slice.description = "EEVDF slice of the target's threads";
    slice.domain = {100, 100000, KnobScale::Log, {}};
    slice.available = true;
    slice.current = 3000;
    slice.default_value = 3000;
    KnobInfo policy;
    policy.name = "task.policy";
    policy.family = "task";
    policy.unit = "enum";
    policy.description = "scheduling policy of the target's threads";
    policy.domain = {0, 2, KnobScale::Enum, {"other", "batch", "idle"}};
    policy.available = true;
    policy.current = 0;
    KnobInfo tm;
    tm.name = "sysctl.kernel.timer_migration";
    tm.family = "sysctl";
    tm.unit = "bool";
    tm.description = "migrate timers to busy CPUs";
    tm.domain = {0, 1, KnobScale::Linear, {}};
    tm.available = true;
    tm.current = 1;
    KnobInfo base;
    base.name = "sched.base_slice_ns";
    base.family = "sched";
    base.unit = "ns";
    base.description = "EEVDF base slice (debugfs)";
    base.domain = {100000, 100000000, KnobScale::Log, {}};
    base.available = false;
    base.unavailable_reason = "kernel lockdown closes /sys/kernel/debug/sched";
    knobs_ = {slice, policy, tm, base};
    snap_.baseline = {
        {"task.slice_us", 3000}, {"task.policy", 0}, {"sysctl.kernel.timer_migration", 1}};
    snap_.current = snap_.baseline;
    snap_.confirmed = snap_.baseline;
    snap_.target = {{"pid", 4242}};
    snap_.baseline_p95_us = 4970;
    snap_.hit_rate = 0.75;
    snap_.windows = 12;
    snap_.speculator = {40, 52000, 4000, 1, 2, 0.0125, 41000};
    snap_.actor = {4, 30000, 2500, 0, 0, 0.25, 0};
    // The engine's spend shape for a speculator with an hourly token budget.
    snap_.spend = {{"speculator",
                    {{"tokens", 56000},
                     {"usd", 0.0125},
                     {"tokens_last_hour", 20000},
                     {"usd_last_hour", 0.004},
                     {"budget",
                      {{"tokens", nullptr},
                       {"usd", nullptr},
                       {"tokens_per_hour", 50000},
                       {"usd_per_hour", nullptr}}},
                     {"left",
                      {{"tokens", nullptr},
                       {"usd", nullptr},
                       {"tokens_this_hour", 30000},
                       {"usd_this_hour", nullptr}}},
                     {"limited_by", nullptr}}}};
    snap_.uptime_s = 3723.5;
    snap_.settings = {
        {"file", "/var/lib/specactd/settings.json"},
        {"target", {{"source", "saved"}, {"config", nullptr}}},
        {"mode", {{"source", "config"}, {"config", "speculative"}}},
        {"pins", {{"source", "config"}, {"values", nlohmann::json::object()}, {"target", nullptr}}},
        {"paused", {{"source", "config"}, {"value", false}}}};
    snap_.warnings = {
        "history: cannot append to /var/lib/specactd/history.jsonl: No space left on device "
        "(events are kept in memory only)"};
    snap_.last_window = {
        {"window", 12},
        {"duration_ms", 1000.0},
        {"objective_us", 420.0},
        {"service", {{"p50_us", 200.0}, {"p95_us", 420.0}, {"p99_us", 800.0}, {"count", 950}}},
        {"low_confidence", false}};
    add_event({{"type", "applied"},
               {"by", "speculator"},
               {"time", "2026-01-01T12:00:01Z"},
               {"changes", {{"task.slice_us", {{"from", 3000}, {"to", 100}}}}},
               {"reason", "runq p95 dominated by long slices"}});
    add_event({{"type", "confirmed"},
               {"by", "actor"},
               {"time", "2026-01-01T12:00:11Z"},
               {"config", {{"task.slice_us", 100}}},
               {"reason", "matches provisional config"}});
  }

  StatusSnapshot status() override {
    ++status_calls;
    return snap_;
  }
  void start() override { set_state("running"); }
  void stop() override { set_state("stopped"); }
  void pause() override {
    if (snap_.state != "running") throw ControlError("NotRunning", "tuning is not running");
    set_state("paused");
  }
  void resume() override {
    if (snap_.state != "paused") throw ControlError("NotRunning", "tuning is not paused");
    set_state("running");
  }
  void set_mode(const std::string& mode) override {
    if (std::find(kModeNames.begin(), kModeNames.end(), mode) == kModeNames.end())
      throw ControlError("InvalidArgument", "unknown mode '" + mode + "'");
    snap_.mode = mode;
    changed();
  }
  void set_target(const nlohmann::json& t) override {
    if (t.contains("pid") && t["pid"].is_number() && t["pid"].get<int64_t>() > 4194304)
      throw ControlError("NoSuchTarget", "no process " + t["pid"].dump());
    if (!t.contains("pid") && !t.contains("pids") && !t.contains("unit") && !t.contains("cgroup") &&
        !t.contains("comm"))
      throw ControlError("InvalidArgument", "target needs pid, pids, unit, cgroup or comm");
    snap_.target = t;
    changed();
  }
  void revert() override {
    snap_.current = snap_.baseline;
    add_event({{"type", "reverted"}, {"by", "user"}, {"reason", "specactctl revert"}});
    changed();
  }
  void pin(const std::string& knob, int64_t value) override {
    const KnobInfo* k = find(knob);
    if (!k || !k->available) throw ControlError("UnknownKnob", "no available knob '" + knob + "'");
    if (!k->domain.contains(value))
      throw ControlError("InvalidArgument", knob + " must be within [" +
                                                std::to_string(k->domain.min) + ", " +
                                                std::to_string(k->domain.max) + "]");
    snap_.current[knob] = value;
    if (std::find(snap_.pinned.begin(), snap_.pinned.end(), knob) == snap_.pinned.end())
      snap_.pinned.push_back(knob);
    changed();
  }
  void unpin(const std::string& knob) override {
    auto it = std::find(snap_.pinned.begin(), snap_.pinned.end(), knob);
    if (it == snap_.pinned.end()) throw ControlError("UnknownKnob", "'" + knob + "' is not pinned");
    snap_.pinned.erase(it);
    changed();
  }
  void reset(const std::vector<std::string>& settings) override {
    for (const auto& s : settings)
      if (s != "target" && s != "mode" && s != "pins" && s != "paused")
        throw ControlError("InvalidArgument", "'" + s + "' is not a setting");
    resets.push_back(settings);
    changed();
  }
  std::vector<KnobInfo> list_knobs() override { return knobs_; }
  std::vector<HistoryEvent> history(uint64_t since) override {
    std::vector<HistoryEvent> out;
    for (const auto& e : events_)
      if (e.seq > since) out.push_back(e);
    return out;
  }

  // Test drivers (call on the loop thread).
  void emit_window(double p95_us) {
    ++snap_.windows;
    snap_.last_window = {{"window", snap_.windows},
                         {"duration_ms", 1000.0},
                         {"objective_us", p95_us},
                         {"config", config_to_json(snap_.current)},
                         {"low_confidence", false}};
    if (on_window) on_window(snap_.last_window);
    if (on_status_changed) on_status_changed();
  }
  void add_event(nlohmann::json data) {
    HistoryEvent e{++seq_, std::move(data)};
    events_.push_back(e);
    if (on_event) on_event(e);
  }

  StatusSnapshot snap_;
  int status_calls = 0;
  std::vector<std::vector<std::string>> resets;  // every Reset's argument, in order

 private:
  const KnobInfo* find(const std::string& name) const {
    for (const auto& k : knobs_)
      if (k.name == name) return &k;
    return nullptr;
  }
  void set_state(const std::string& s) {
    snap_.state = s;
    changed();
  }
  void changed() {
    if (on_status_changed) on_status_changed();
  }

  std::vector<KnobInfo> knobs_;
  std::vector<HistoryEvent> events_;
  uint64_t seq_ = 0;
};

}  // namespace specact::testing
