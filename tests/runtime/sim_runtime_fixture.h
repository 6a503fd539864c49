// The runtime on the simulated kernel (tests/sim/sim_platform.h), shared by
// the runtime suite's files: the real Runtime, engine, history file and
// control surface, with the machine, the metric source and the agents
// simulated. No root, no BPF, no real time: a test advances a ManualClock,
// closes each window itself and polls the loop for the scripted agents'
// replies.
#pragma once

#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <cstddef>
#include <fstream>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "runtime/runtime.h"
#include "runtime_test_util.h"
#include "sim_platform.h"

namespace specact::testing {

using nlohmann::json;

inline constexpr int kWindowMs = 1000;
inline constexpr pid_t kTargetPid = 4242;  // never looked up: the platform is simulated
// A unit target (the simulated platform opens any): it names a workload
// across restarts, as a pid does not.
inline const json kUnit = {{"unit", "sim-app.service"}};

inline std::string read_text(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

inline bool has_warning(const StatusSnapshot& s, const std::string& text) {
  for (const auto& w : s.warnings)
    if (w.find(text) != std::string::npos) return true;
  return false;
}

// The scripted agents' answer: the config in force with the target's slice
// at 100 us, the best setting of the simulated periodic-vs-hogs workload.
inline AgentReply small_slice(const AgentContext& ctx) {
  AgentReply r;
  Config c = ctx.current;
  c[sim::kSlice] = 100;
  r.candidates.push_back({c, 0.9, "small slices preempt the hogs sooner"});
  r.usage.prompt_tokens = 300;
  r.usage.completion_tokens = 100;
  return r;
}

// What a control command refused with: the ControlError's name ("" when it
// did not throw one) and its message.
struct Refusal {
  std::string name;
  std::string message;
  bool says(const std::string& text) const { return message.find(text) != std::string::npos; }
};
inline Refusal refusal_of(const std::function<void()>& command) {
  try {
    command();
  } catch (const ControlError& e) {
    return {e.name(), e.what()};
  }
  return {};
}

class SimRuntime : public ::testing::Test {
 protected:
  SimRuntime()
      : machine_(sim::SimWorkload::periodic_vs_hogs()),
        platform_(machine_),
        agents_(io_),
        clock_(1'000'000'000) {}

  json base_config() const {
    return {{"target", {{"pid", kTargetPid}}},
            {"objective", {{"metric", "service_p95"}}},
            {"window_ms", kWindowMs},
            {"mode", "speculative"},
            {"speculator", {{"backend", "builtin"}}},
            {"actor", {{"backend", "builtin"}}},
            {"state_dir", dir_.path() + "/state"},
            {"dbus", {{"enabled", false}}},
            {"log_level", "warning"}};
  }

  Runtime& open(const json& cfg) {
    runtime_ = std::make_unique<Runtime>(RunConfig::from_json(cfg), io_,
                                         RuntimeEnvironment{&platform_, &agents_, &clock_});
    runtime_->open();
    return *runtime_;
  }
  Runtime& open() { return open(base_config()); }
  // Stops the runtime the way the service stops (the knobs restored) and
  // starts another on the same state directory and simulated machine.
  Runtime& restart(const json& cfg) {
    runtime_->shutdown("restart");
    runtime_.reset();
    return open(cfg);
  }
  std::string state_file(const std::string& name) const { return dir_.path() + "/state/" + name; }

  // Runs the scripted agents' replies posted to the loop.
  void poll() {
    io_.restart();
    io_.poll();
  }
  void advance_half_window() { clock_.advance_ns(int64_t{kWindowMs} * 500'000); }
  // One window of virtual time. The agents called at the end of the previous
  // window answer half-way through this one (so a write lands inside it, as
  // it would with a real agent's latency).
  void window() {
    advance_half_window();
    poll();
    advance_half_window();
    runtime_->close_window();
  }
  void windows(int n) {
    for (int i = 0; i < n; ++i) window();
  }

  std::vector<json> history() const {
    std::vector<json> out;
    std::ifstream in(dir_.path() + "/state/history.jsonl");
    std::string line;
    while (std::getline(in, line))
      if (!line.empty()) out.push_back(json::parse(line));
    return out;
  }
  // The lines of the latest run: from its "started" on.
  std::vector<json> this_run() const {
    std::vector<json> h = history();
    size_t from = 0;
    for (size_t i = 0; i < h.size(); ++i)
      if (h[i]["type"] == "started") from = i;
    return std::vector<json>(h.begin() + static_cast<std::ptrdiff_t>(from), h.end());
  }
  static std::vector<json> of_type(const std::vector<json>& h, const std::string& type) {
    std::vector<json> out;
    for (const auto& e : h)
      if (e["type"] == type) out.push_back(e);
    return out;
  }
  static size_t index_of(const std::vector<json>& h, const std::string& type, size_t from = 0) {
    for (size_t i = from; i < h.size(); ++i)
      if (h[i]["type"] == type) return i;
    return h.size();
  }
  static std::string types(const std::vector<json>& h) {
    std::string s;
    for (const auto& e : h)
      if (e["type"] != "window") s += e["type"].get<std::string>() + " ";
    return s;
  }

  TempDir dir_;
  boost::asio::io_context io_;
  sim::SimMachine machine_;
  sim::SimPlatform platform_;
  sim::ScriptedAgents agents_;
  ManualClock clock_;
  std::unique_ptr<Runtime> runtime_;
};

}  // namespace specact::testing
