// The runtime on the simulated kernel (tests/sim/sim_platform.h): the real
// Runtime, engine, history file and control surface, with the machine, the
// metric source and the agents simulated. No root, no BPF, no real time: the
// test advances a ManualClock, closes each window itself and polls the loop
// for the scripted agents' replies.
#include <gtest/gtest.h>

#include <algorithm>
#include <boost/asio/io_context.hpp>
#include <filesystem>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "agents/agent_config.h"
#include "dbus/status_json.h"
#include "metrics/sampler.h"
#include "observe_test_util.h"
#include "runtime/runtime.h"
#include "sim_runtime_fixture.h"

namespace specact {
namespace {

using nlohmann::json;
using namespace specact::testing;

// config -> session -> windows -> decisions -> history.jsonl -> restore.
TEST_F(SimRuntime, TunesTheSimulatedKernelRecordsEveryStepAndRestores) {
  agents_.speculator = small_slice;
  agents_.actor = small_slice;
  const Config defaults = machine_.in_force;
  Runtime& rt = open();
  windows(15);
  EXPECT_EQ(machine_.in_force.at(sim::kSlice), 100) << "the agents' choice was written";
  rt.shutdown("test over");
  EXPECT_EQ(machine_.in_force, defaults) << "restore put every knob back";
  EXPECT_EQ(machine_.restores, 1u);

  const std::vector<json> h = history();
  ASSERT_FALSE(h.empty());
  for (size_t i = 0; i < h.size(); ++i) {
    EXPECT_EQ(h[i]["seq"], i + 1) << h[i].dump();
    EXPECT_TRUE(h[i]["time"].is_string()) << h[i].dump();
    EXPECT_TRUE(h[i]["time_ns"].is_number_integer()) << h[i].dump();
    EXPECT_TRUE(h[i]["summary"].is_string()) << h[i].dump();
  }
  const std::string trail = types(h);
  EXPECT_EQ(h.front()["type"], "started");
  EXPECT_EQ(h.front()["mode"], "speculative");
  EXPECT_EQ(h.front()["metric"], "service_p95");
  EXPECT_EQ(h.front()["target"], json({{"pid", kTargetPid}}));
  const size_t started = index_of(h, "session_started");
  ASSERT_LT(started, h.size()) << trail;
  EXPECT_EQ(h[started]["knobs"].size(), sim::catalogue().size());
  EXPECT_EQ(h[started]["baseline"], config_to_json(defaults));
  EXPECT_EQ(h[started]["speculator"], "scripted");

  const size_t applied = index_of(h, "applied", started);
  ASSERT_LT(applied, h.size()) << trail;
  EXPECT_EQ(h[applied]["kind"], "provisional");
  EXPECT_EQ(h[applied]["who"], "speculator");
  EXPECT_EQ(h[applied]["config"][sim::kSlice], 100);
  const size_t confirmed = index_of(h, "confirmed", applied);
  ASSERT_LT(confirmed, h.size()) << trail;
  EXPECT_EQ(h[confirmed]["hit"], true);
  EXPECT_LT(index_of(h, "agent_called", started), applied);
  const std::vector<json> replies = of_type(h, "agent_reply");
  ASSERT_FALSE(replies.empty());
  EXPECT_EQ(replies[0]["usage"]["prompt_tokens"], 300);
  EXPECT_EQ(replies[0]["candidates"], 1);

  // Windows: the untuned ones and the tuned ones, measured on the simulated kernel.
  std::vector<double> before, after;
  for (size_t i = started; i < h.size(); ++i) {
    if (h[i]["type"] != "window") continue;
    EXPECT_EQ(h[i]["metric"], "service_p95");
    EXPECT_TRUE(h[i]["window"]["service"]["count"].is_number());
    if (!h[i]["objective_us"].is_number() || h[i]["straddled"].get<bool>()) continue;
    (i < applied ? before : after).push_back(h[i]["objective_us"].get<double>());
  }
  ASSERT_FALSE(before.empty()) << trail;
  ASSERT_GE(after.size(), 5u) << trail;
  // The simulated kernel's p95 falls by a third with the small slice; window
  // noise is a few per cent.
  Config tuned = defaults;
  tuned[sim::kSlice] = 100;
  ASSERT_LT(machine_.kernel.true_p95_us(tuned), 0.75 * machine_.kernel.true_p95_us(defaults));
  std::sort(after.begin(), after.end());
  EXPECT_LT(after[after.size() / 2], 0.8 * before.front());

  const size_t summary = index_of(h, "status", confirmed);
  ASSERT_LT(summary, h.size()) << trail;
  EXPECT_GE(h[summary]["hits"], 1);
  size_t speculator_replies = 0;
  for (const auto& r : replies) speculator_replies += r["role"] == "speculator";
  EXPECT_EQ(h[summary]["usage"]["speculator"]["prompt_tokens"], 300 * speculator_replies);
  EXPECT_EQ(h[summary]["usage"]["speculator"]["calls"], agents_.calls_of(AgentRole::Speculator));
  const size_t restored = index_of(h, "restored", summary);
  ASSERT_LT(restored, h.size()) << trail;
  EXPECT_EQ(h[restored]["ok"], true);
  EXPECT_EQ(h[restored]["reason"], "test over");
  EXPECT_EQ(h.back()["type"], "stopped");
  EXPECT_EQ(h.back()["reason"], "test over");
}

// An agent's reply lands half-way through a window here. The write would mix
// two configs in that window; the runtime drops it and starts the next at the
// write, so the new config's first window is clean, is measured under it
// alone, keeps the next index and ends one window after the write.
TEST_F(SimRuntime, AWriteBetweenWindowsStartsTheNextWindowAtTheWrite) {
  agents_.speculator = small_slice;
  agents_.actor = small_slice;
  open();
  windows(4);
  const std::vector<json> h = this_run();
  const size_t applied = index_of(h, "applied");
  ASSERT_LT(applied, h.size()) << types(h);
  const size_t before = [&] {
    size_t last = h.size();
    for (size_t i = 0; i < applied; ++i)
      if (h[i]["type"] == "window") last = i;
    return last;
  }();
  ASSERT_LT(before, h.size()) << "a window was closed before the write";
  const size_t after = index_of(h, "window", applied);
  ASSERT_LT(after, h.size()) << types(h);
  const json& w = h[after];
  EXPECT_FALSE(w["straddled"].get<bool>()) << w.dump();
  EXPECT_TRUE(w["objective_us"].is_number()) << w.dump();
  EXPECT_EQ(w["config"][sim::kSlice], 100) << w.dump();
  EXPECT_EQ(w["window"]["window"], h[before]["window"]["window"].get<uint64_t>() + 1);
  // The reply came half a window in: the window from the write is the rest.
  EXPECT_NEAR(w["window"]["duration_ms"].get<double>(), kWindowMs / 2.0, 1.0) << w.dump();
  EXPECT_EQ(w["time_ns"].get<int64_t>() - h[applied]["time_ns"].get<int64_t>(),
            int64_t{kWindowMs} * 500'000);
  for (const auto& e : h) {
    if (e["type"] == "window") {
      EXPECT_FALSE(e["straddled"].get<bool>()) << e.dump();
    }
  }
}

// The runtime tells the engine what is in force from the knob layer's apply
// result: the machine is probed once for the baseline, not after every write.
TEST_F(SimRuntime, AppliesAreNotFollowedByAProbeOfEveryKnob) {
  agents_.speculator = small_slice;
  agents_.actor = small_slice;
  open();
  windows(10);
  ASSERT_GE(machine_.applies.size(), 1u);
  EXPECT_EQ(machine_.reads, 1u) << machine_.applies.size() << " applies";
}

// One more subscriber on the event sink (an exporter, say) sees every event
// the history has, in order, with its typed kind.
TEST_F(SimRuntime, AnotherSubscriberSeesEveryEventWithItsKind) {
  struct Counter : EventSubscriber {
    std::vector<engine::EventKind> kinds;
    std::vector<uint64_t> seqs;
    void on_event(const RecordedEvent& e) override {
      kinds.push_back(e.kind);
      seqs.push_back(e.entry.seq);
    }
  } counter;
  agents_.speculator = small_slice;
  Runtime& rt = open();
  rt.events().subscribe(counter);
  windows(5);
  rt.shutdown("test over");
  rt.events().unsubscribe(counter);
  const std::vector<json> h = history();
  ASSERT_FALSE(counter.kinds.empty());
  const size_t first = static_cast<size_t>(counter.seqs.front()) - 1;
  ASSERT_EQ(h.size(), first + counter.kinds.size());
  for (size_t i = 0; i < counter.kinds.size(); ++i) {
    EXPECT_EQ(counter.seqs[i], h[first + i]["seq"]);
    EXPECT_EQ(engine::to_string(counter.kinds[i]), h[first + i]["type"].get<std::string>());
  }
  EXPECT_NE(std::find(counter.kinds.begin(), counter.kinds.end(), engine::EventKind::Applied),
            counter.kinds.end());
  EXPECT_EQ(counter.kinds.back(), engine::EventKind::Stopped);
}

// A write the knob layer could not do: the pin fails with Failed, is
// released, and the failure is in the history.
TEST_F(SimRuntime, FailedPinIsFailedAndReleased) {
  Runtime& rt = open();
  windows(2);
  machine_.failing_writes[sim::kNice] = "journal not written (No space left on device)";
  const Refusal pin = refusal_of([&] { rt.pin(sim::kNice, 5); });
  EXPECT_EQ(pin.name, "Failed");
  EXPECT_TRUE(pin.says("not applied") && pin.says("No space left")) << pin.message;
  EXPECT_TRUE(rt.status().pinned.empty());
  EXPECT_EQ(machine_.in_force.at(sim::kNice), 0);
  const std::vector<json> h = history();
  ASSERT_FALSE(of_type(h, "apply_result").empty()) << types(h);
  EXPECT_EQ(of_type(h, "apply_result")[0]["result"]["ok"], false);
  ASSERT_FALSE(of_type(h, "apply_error").empty()) << types(h);
  EXPECT_NE(of_type(h, "apply_error")[0]["error"].get<std::string>().find(sim::kNice),
            std::string::npos);
  EXPECT_FALSE(of_type(h, "unpinned").empty()) << types(h);

  // The engine was told the truth: what is in force is the old value.
  EXPECT_EQ(rt.status().current.at(sim::kNice), 0);

  // A pin that works is not an error.
  machine_.failing_writes.clear();
  rt.pin(sim::kNice, 5);
  EXPECT_EQ(machine_.in_force.at(sim::kNice), 5);
  EXPECT_EQ(rt.status().pinned, std::vector<std::string>{sim::kNice});
}

TEST_F(SimRuntime, FailedRevertIsFailed) {
  agents_.speculator = small_slice;
  Runtime& rt = open();
  windows(4);
  ASSERT_EQ(machine_.in_force.at(sim::kSlice), 100);
  machine_.failing_writes[sim::kSlice] = "write failed (simulated EIO)";
  const Refusal revert = refusal_of([&] { rt.revert(); });
  EXPECT_EQ(revert.name, "Failed");
  EXPECT_TRUE(revert.says("not fully restored")) << revert.message;
  EXPECT_EQ(rt.status().current.at(sim::kSlice), 100) << "the engine knows the write failed";
}

// An agent that fails: the error is recorded, the confirmed config is kept.
TEST_F(SimRuntime, AgentErrorIsRecordedAndChangesNothing) {
  agents_.speculator = [](const AgentContext&) {
    AgentReply r;
    r.error = "HTTP 500 from the model server";
    return r;
  };
  const Config defaults = machine_.in_force;
  Runtime& rt = open();
  windows(4);
  EXPECT_EQ(machine_.in_force, defaults);
  EXPECT_TRUE(machine_.applies.empty());
  const std::vector<json> h = history();
  const std::vector<json> errors = of_type(h, "agent_error");
  ASSERT_FALSE(errors.empty()) << types(h);
  EXPECT_EQ(errors[0]["role"], "speculator");
  EXPECT_EQ(errors[0]["error"], "HTTP 500 from the model server");
  const std::vector<json> replies = of_type(h, "agent_reply");
  ASSERT_FALSE(replies.empty());
  EXPECT_EQ(replies[0]["error"], "HTTP 500 from the model server");
  EXPECT_GE(rt.status().speculator.errors, 1u);
}

// The target loses its processes and gets them back: the gap is not judged,
// a reply that arrives in it waits, and the returning tasks get the settings.
TEST_F(SimRuntime, TargetEmptyThenReturnedDefersRepliesAndReapplies) {
  json cfg = base_config();
  cfg["target"] = {{"comm", "^sim-app$"}};
  agents_.speculator = small_slice;
  Runtime& rt = open(cfg);
  // Up to the window that calls the speculator; its reply is posted, not run yet.
  for (int i = 0; i < 10 && agents_.calls.empty(); ++i) window();
  ASSERT_EQ(agents_.calls_of(AgentRole::Speculator), 1u);
  machine_.processes = 0;
  advance_half_window();
  rt.close_window();  // finds the target empty
  EXPECT_EQ(rt.status().state, "waiting");
  poll();  // the reply arrives now and must wait for the tasks
  EXPECT_NE(machine_.in_force.at(sim::kSlice), 100) << "applied to a target with no process";
  windows(2);
  const uint64_t reapplies = machine_.reapplies;
  machine_.processes = 2;
  window();
  poll();
  EXPECT_GT(machine_.reapplies, reapplies);
  EXPECT_EQ(machine_.in_force.at(sim::kSlice), 100) << "the deferred reply was applied";
  EXPECT_NE(rt.status().state, "waiting");

  const std::vector<json> h = history();
  EXPECT_EQ(of_type(h, "agent_reply").size(), agents_.calls.size()) << types(h);
  const size_t empty = index_of(h, "target_empty");
  const size_t returned = index_of(h, "target_returned", empty);
  ASSERT_LT(returned, h.size()) << types(h);
  EXPECT_EQ(h[returned]["processes"], 2);
  for (size_t i = empty; i < returned; ++i) {
    EXPECT_NE(h[i]["type"], "window") << "a gap window was judged: " << h[i].dump();
    EXPECT_NE(h[i]["type"], "applied") << "applied during the gap: " << h[i].dump();
  }
  EXPECT_LT(index_of(h, "applied", returned), h.size()) << types(h);
}

// A target with no process yet: the session waits, commands that need knobs
// say why they cannot work yet, pause is remembered.
TEST_F(SimRuntime, WaitingTargetStartsWhenItsFirstProcessAppears) {
  machine_.processes = 0;
  json cfg = base_config();
  cfg["target"] = {{"unit", "sim-app.service"}};
  Runtime& rt = open(cfg);
  EXPECT_EQ(rt.status().state, "waiting");
  const Refusal pin = refusal_of([&] { rt.pin(sim::kNice, 3); });
  EXPECT_EQ(pin.name, "Failed");
  EXPECT_TRUE(pin.says("has no process")) << pin.message;
  rt.pause();
  windows(2);
  EXPECT_EQ(rt.engine(), nullptr);
  machine_.processes = 1;
  window();
  ASSERT_NE(rt.engine(), nullptr);
  EXPECT_TRUE(rt.engine()->paused());
  windows(2);
  EXPECT_TRUE(agents_.calls.empty()) << "a paused session called an agent";
  const std::vector<json> h = history();
  const size_t waiting = index_of(h, "waiting_for_tasks");
  const size_t appeared = index_of(h, "target_appeared", waiting);
  const size_t started = index_of(h, "session_started", appeared);
  const size_t paused = index_of(h, "paused", started);
  ASSERT_LT(paused, h.size()) << types(h);
  EXPECT_EQ(h[appeared]["processes"], 1);
  EXPECT_EQ(h[waiting]["target"], json({{"unit", "sim-app.service"}}));
}

// A pid target that exits ends a run without D-Bus (nothing left to do).
TEST_F(SimRuntime, PidTargetExitingStopsARunWithoutDbus) {
  agents_.speculator = small_slice;
  const Config defaults = machine_.in_force;
  open();
  windows(4);
  ASSERT_EQ(machine_.in_force.at(sim::kSlice), 100);
  machine_.processes = 0;
  window();
  EXPECT_EQ(machine_.in_force, defaults);
  const std::vector<json> h = history();
  ASSERT_EQ(h.back()["type"], "stopped") << types(h);
  EXPECT_EQ(h.back()["reason"], "target pid " + std::to_string(kTargetPid) + " exited");
  EXPECT_LT(index_of(h, "restored"), h.size() - 1) << types(h);
}

// A knob changed behind the daemon's back is reported and left alone.
TEST_F(SimRuntime, KnobChangedBehindItsBackIsYielded) {
  Runtime& rt = open();
  windows(2);
  machine_.change_behind_back(sim::kAutogroup, 0);
  window();
  const std::vector<json> h = history();
  const std::vector<json> detail = of_type(h, "yield_detail");
  ASSERT_EQ(detail.size(), 1u) << types(h);
  EXPECT_EQ(detail[0]["knob"], sim::kAutogroup);
  EXPECT_EQ(detail[0]["found"], "0");
  ASSERT_FALSE(of_type(h, "yielded").empty()) << types(h);
  for (const auto& k : rt.engine()->knobs()) EXPECT_NE(k.name, sim::kAutogroup);
}

// What the D-Bus service is handed: the window payload (WindowMeasured), the
// events (EngineEvent, the same lines as history.jsonl) and the status JSON.
TEST_F(SimRuntime, DbusPayloadsCarryTheWindowPhaseEventsAndStatus) {
  agents_.speculator = small_slice;
  agents_.actor = [](const AgentContext&) {
    AgentReply r;
    r.wants_more_evidence = true;  // keeps the speculator's config provisional
    return r;
  };
  std::vector<json> payloads;
  std::vector<HistoryEvent> events;
  std::vector<std::string> signals;  // "WindowMeasured" or the event's type, in order
  size_t status_changes = 0;
  Runtime& rt = open();
  rt.on_window = [&](const json& w) {
    payloads.push_back(w);
    signals.push_back("WindowMeasured");
    EXPECT_EQ(rt.status().last_window, w) << "GetStatus already shows the window";
  };
  rt.on_event = [&](const HistoryEvent& e) {
    events.push_back(e);
    signals.push_back(e.data["type"].get<std::string>());
  };
  rt.on_status_changed = [&] { ++status_changes; };
  windows(6);

  ASSERT_EQ(payloads.size(), 6u);
  std::vector<std::string> phases;
  for (size_t i = 0; i < payloads.size(); ++i) {
    const json& w = payloads[i];
    EXPECT_EQ(w["metric"], "service_p95");
    EXPECT_TRUE(w.contains("objective_us"));
    EXPECT_TRUE(w["config"].is_object());
    EXPECT_TRUE(w["service"].is_object());
    EXPECT_TRUE(w["window"].is_number_integer());
    phases.push_back(w["phase"].get<std::string>());
  }
  EXPECT_EQ(phases.front(), "confirmed");
  // The speculator's write restarted the window it fell in (the straddled
  // phase's payload: event_sink_test).
  EXPECT_EQ(std::find(phases.begin(), phases.end(), "straddled"), phases.end());
  EXPECT_EQ(phases.back(), "provisional");
  EXPECT_EQ(payloads.back()["config"][sim::kSlice], 100);

  // The event stream is the history file, line for line.
  const std::vector<json> h = history();
  ASSERT_FALSE(events.empty());
  const size_t first = static_cast<size_t>(events.front().seq) - 1;
  ASSERT_EQ(h.size(), first + events.size());
  for (size_t i = 0; i < events.size(); ++i) EXPECT_EQ(event_to_json(events[i]), h[first + i]);
  EXPECT_GT(status_changes, 0u);
  for (size_t i = 0; i < signals.size(); ++i)
    if (signals[i] == "WindowMeasured") {
      ASSERT_LT(i + 1, signals.size());
      EXPECT_EQ(signals[i + 1], "window") << "WindowMeasured comes just before its event";
    }

  json status = status_to_json(rt.status(), "test");
  EXPECT_EQ(status["state"], "running");
  EXPECT_EQ(status["mode"], "speculative");
  EXPECT_EQ(status["target"], json({{"pid", kTargetPid}}));
  EXPECT_EQ(status["current"][sim::kSlice], 100);
  EXPECT_EQ(status["confirmed"][sim::kSlice], 2800);
  EXPECT_EQ(status["baseline"][sim::kSlice], 2800);
  EXPECT_EQ(status["last_window"], payloads.back());
  EXPECT_EQ(status["windows"], 6);
  EXPECT_EQ(status["usage"]["speculator"]["calls"], agents_.calls_of(AgentRole::Speculator));
  size_t speculator_replies = 0;
  for (const auto& e : of_type(h, "agent_reply")) speculator_replies += e["role"] == "speculator";
  EXPECT_EQ(status["usage"]["speculator"]["prompt_tokens"], 300 * speculator_replies);
  EXPECT_EQ(status["warnings"], json::array());
  // As the D-Bus service does at shutdown: the hooks outlive this test's locals otherwise.
  rt.on_window = nullptr;
  rt.on_event = nullptr;
  rt.on_status_changed = nullptr;
}

// Issue 17 through the real runtime: metrics.textfile after every window holds
// what history.jsonl and the status say (counters from the events, gauges
// from the status, histograms from the windows), promtool accepts it, and it
// is removed at shutdown.
TEST_F(SimRuntime, TheMetricsTextfileAgreesWithHistoryAndStatus) {
  SPECACT_REQUIRE_PROGRAM("promtool");
  agents_.speculator = small_slice;
  agents_.actor = small_slice;
  const std::string textdir = dir_.path() + "/node-exporter";
  std::filesystem::create_directories(textdir);
  const std::string textfile = textdir + "/specact.prom";
  json cfg = base_config();
  cfg["metrics"] = {{"textfile", textfile}};
  Runtime& rt = open(cfg);
  windows(8);
  poll();  // the write posted after the last window
  std::ifstream in(textfile);
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string text = ss.str();
  ASSERT_FALSE(text.empty());
  auto lint = observe::promtool_check_metrics(text);
  EXPECT_EQ(lint.exit_code, 0) << lint.output;

  // "name{labels} value" lines -> value.
  auto sample = [&](const std::string& series) -> double {
    const size_t at = text.find("\n" + series + " ");
    if (at == std::string::npos) {
      ADD_FAILURE() << "no sample " << series << " in\n" << text;
      return -1;
    }
    const size_t from = at + series.size() + 2;
    return std::stod(text.substr(from, text.find('\n', from) - from));
  };
  const std::vector<json> h = history();
  const std::vector<json> windows_seen = of_type(h, "window");
  EXPECT_EQ(sample("specact_windows_total"), static_cast<double>(windows_seen.size()));
  size_t by_speculator = 0, hits = 0;
  uint64_t prompt = 0, service_samples = 0;
  for (const auto& e : of_type(h, "applied")) by_speculator += e["who"] == "speculator";
  for (const auto& e : of_type(h, "confirmed")) hits += e["hit"] == true;
  for (const auto& e : of_type(h, "agent_reply"))
    if (e["role"] == "actor") prompt += e["usage"]["prompt_tokens"].get<uint64_t>();
  for (const auto& w : windows_seen)
    service_samples += w["window"]["service"]["count"].get<uint64_t>();
  ASSERT_GT(by_speculator, 0u) << types(h);
  EXPECT_EQ(sample("specact_decisions_total{kind=\"applied\",role=\"speculator\"}"), by_speculator);
  EXPECT_EQ(sample("specact_speculations_total{outcome=\"hit\"}"), hits);
  EXPECT_EQ(sample("specact_agent_tokens_total{role=\"actor\",type=\"prompt\"}"), prompt);
  EXPECT_EQ(sample("specact_service_latency_seconds_count"), service_samples);

  const StatusSnapshot st = rt.status();
  EXPECT_EQ(
      sample("specact_knob_value{knob=\"" + std::string(sim::kSlice) + "\",config=\"current\"}"),
      st.current.at(sim::kSlice));
  EXPECT_EQ(
      sample("specact_knob_value{knob=\"" + std::string(sim::kSlice) + "\",config=\"baseline\"}"),
      st.baseline.at(sim::kSlice));
  EXPECT_EQ(sample("specact_window_index"), st.last_window["window"].get<double>());
  EXPECT_DOUBLE_EQ(sample("specact_objective_p95_seconds{metric=\"service_p95\"}"),
                   st.last_window["objective_us"].get<double>() / 1e6);
  EXPECT_EQ(sample("specact_state{state=\"" + st.state + "\"}"), 1);

  rt.shutdown("test over");
  EXPECT_FALSE(std::filesystem::exists(textfile));
}

// What `specactd run` maps to exit codes: startup errors by type.
TEST_F(SimRuntime, StartupErrorsKeepTheirTypes) {
  machine_.target_exists = false;
  EXPECT_THROW(open(), TargetError);
  machine_.target_exists = true;

  machine_.metrics_unavailable = true;
  EXPECT_THROW(open(), SamplerError);
  machine_.metrics_unavailable = false;

  agents_.config_error = "api_key_env OPENAI_API_KEY is not set";
  EXPECT_THROW(open(), AgentConfigError);
  agents_.config_error.clear();

  machine_.leftover.nothing_to_do = false;
  machine_.leftover.ok = false;
  machine_.leftover.items.push_back({"task.nice", "tid 7", "0", "failed", "EPERM"});
  try {
    open();
    ADD_FAILURE() << "a leftover journal that cannot be restored was accepted";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("could not be fully restored"), std::string::npos);
  }
  ASSERT_FALSE(of_type(history(), "recovered").empty());
}

TEST_F(SimRuntime, ControlErrorsAreNamed) {
  json cfg = base_config();
  cfg["target"] = nullptr;
  Runtime& rt = open(cfg);
  auto name_of = [](const std::function<void()>& command) { return refusal_of(command).name; };
  EXPECT_EQ(rt.status().state, "stopped");
  EXPECT_EQ(name_of([&] { rt.start(); }), "NoSuchTarget");
  EXPECT_EQ(name_of([&] { rt.pause(); }), "NotRunning");
  EXPECT_EQ(name_of([&] { rt.set_mode("fastest"); }), "InvalidArgument");
  EXPECT_EQ(name_of([&] { rt.set_target(json{{"pid", "one"}}); }), "InvalidArgument");
  machine_.target_exists = false;
  EXPECT_EQ(name_of([&] { rt.set_target(json{{"pid", kTargetPid}}); }), "NoSuchTarget");
  machine_.target_exists = true;
  EXPECT_EQ(rt.list_knobs().size(), sim::catalogue().size());

  rt.set_target(json{{"pid", kTargetPid}});
  EXPECT_EQ(rt.status().state, "running");
  EXPECT_EQ(name_of([&] { rt.pin("task.no_such_knob", 1); }), "UnknownKnob");
  rt.stop();
  EXPECT_EQ(rt.status().state, "stopped");
  EXPECT_EQ(of_type(history(), "restored").size(), 1u);
}

}  // namespace
}  // namespace specact
