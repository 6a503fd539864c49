// Warm start (learned.json in the state directory), through the real Runtime
// and engine on the simulated kernel: what a session confirms is remembered
// under its target and workload signature, re-applied after a restart as the
// first provisional and judged by the engine; a changed workload gets a
// normal search; a file that cannot be trusted is set aside.
#include "runtime/warm_start.h"

#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "sim_runtime_fixture.h"

namespace specact {
namespace {

using nlohmann::json;
using namespace specact::testing;
namespace fs = std::filesystem;

AgentReply nothing(const AgentContext&) { return {}; }

class WarmStartTest : public SimRuntime {
 protected:
  json unit_config() const {
    json cfg = base_config();
    cfg["target"] = kUnit;
    return cfg;
  }
  // A first run that tunes the unit (the scripted agents settle on a 100 us
  // slice) and remembers it; the runtime is then stopped like the service.
  void learn_first() {
    agents_.speculator = small_slice;
    agents_.actor = small_slice;
    open(unit_config());
    windows(12);
    ASSERT_EQ(machine_.in_force.at(sim::kSlice), 100);
    runtime_->shutdown("restart");
    runtime_.reset();
  }
  json learned_file() const { return json::parse(read_text(state_file("learned.json"))); }
  // The index of the window event of window `n` (1-based) in `h`.
  static size_t window_event(const std::vector<json>& h, int n) {
    int seen = 0;
    for (size_t i = 0; i < h.size(); ++i)
      if (h[i]["type"] == "window" && ++seen == n) return i;
    return h.size();
  }
};

// What a session confirmed is written with the target and the signature it
// was learned under; after a restart it is in force from window 1's end and
// the engine confirms it within the next two windows.
TEST_F(WarmStartTest, RestartReappliesTheRememberedConfigAndItIsConfirmed) {
  learn_first();
  const json doc = learned_file();
  EXPECT_EQ(doc["kind"], "specactd-learned");
  EXPECT_EQ(doc["format"], 1);
  ASSERT_EQ(doc["entries"].size(), 1u) << doc.dump();
  const json& entry = doc["entries"][0];
  EXPECT_EQ(entry["key"], kUnit);
  EXPECT_EQ(entry["metric"], "service_p95");
  EXPECT_EQ(entry["config"], json({{sim::kSlice, 100}})) << "only what tuning moved";
  // The simulated periodic task: 0.3 ms of work 1000 times a second.
  const WorkloadSignature learned = WorkloadSignature::from_json(entry["signature"]);
  EXPECT_NEAR(learned.oncpu_share, 0.3, 0.1);
  EXPECT_NEAR(learned.sleeps_per_s, 1000, 200);
  EXPECT_FALSE(of_type(history(), "learned").empty());
  struct stat st {};
  ASSERT_EQ(stat(state_file("learned.json").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);

  // The restarted run: a speculator that proposes nothing, so whatever
  // moves the slice is the warm start; the actor agrees with it.
  agents_.speculator = nothing;
  agents_.actor = small_slice;
  Runtime& rt = open(unit_config());
  EXPECT_EQ(machine_.in_force.at(sim::kSlice), 2800) << "window 1 measures the baseline";
  window();
  EXPECT_EQ(machine_.in_force.at(sim::kSlice), 100) << "re-applied at the end of window 1";
  ASSERT_NE(rt.engine(), nullptr);
  EXPECT_TRUE(rt.engine()->provisional()) << "judged, not taken on trust";
  windows(2);
  EXPECT_EQ(rt.engine()->confirmed().at(sim::kSlice), 100);
  EXPECT_EQ(rt.engine()->hits(), 1u);
  EXPECT_EQ(rt.engine()->misses(), 0u);

  const std::vector<json> h = this_run();
  const size_t w1 = window_event(h, 1), w2 = window_event(h, 2), w4 = window_event(h, 4);
  const size_t offer = index_of(h, "warm_start");
  ASSERT_LT(offer, h.size()) << types(h);
  EXPECT_EQ(h[offer]["applied"], true) << h[offer].dump();
  EXPECT_EQ(h[offer]["target"], kUnit);
  EXPECT_EQ(h[offer]["remembered"]["config"], json({{sim::kSlice, 100}}));
  const size_t applied = index_of(h, "applied");
  ASSERT_LT(applied, h.size()) << types(h);
  EXPECT_EQ(h[applied]["who"], "warm_start");
  EXPECT_EQ(h[applied]["kind"], "provisional");
  EXPECT_GT(applied, w1) << "window 1 is the baseline the warm config is judged against";
  EXPECT_LT(applied, w2) << types(h);
  const size_t confirmed = index_of(h, "confirmed", applied);
  ASSERT_LT(confirmed, h.size()) << types(h);
  EXPECT_LT(confirmed, w4) << "confirmed within 2 windows: " << types(h);
  EXPECT_EQ(h[confirmed]["hit"], true);
  EXPECT_EQ(h[confirmed]["config"][sim::kSlice], 100);
  EXPECT_EQ(h[w2]["straddled"], false) << "applied at window 1's end: window 2 is evidence";
  EXPECT_EQ(h[w2]["config"][sim::kSlice], 100) << "window 2 measured the warm config";
}

// The same target with a workload of another shape (CPU-bound threads that
// never sleep instead of a periodic task): the remembered config is not
// offered, the search starts as on a first run, and both shapes are kept.
TEST_F(WarmStartTest, ChangedWorkloadGetsANormalSearch) {
  learn_first();
  machine_.kernel.set_workload(sim::SimWorkload::sysbench_like());
  agents_.speculator = [](const AgentContext& ctx) {
    AgentReply r;
    Config c = ctx.current;
    c[sim::kSlice] = 20000;  // what a CPU-bound workload wants
    r.candidates.push_back({c, 0.9, "longer slices"});
    return r;
  };
  agents_.actor = agents_.speculator;
  Runtime& rt = open(unit_config());
  windows(2);
  const std::vector<json> h = this_run();
  const size_t offer = index_of(h, "warm_start");
  ASSERT_LT(offer, h.size()) << types(h);
  EXPECT_EQ(h[offer]["applied"], false);
  EXPECT_NE(h[offer]["reason"].get<std::string>().find("the workload changed"), std::string::npos)
      << h[offer].dump();
  EXPECT_GT(h[offer]["distance"].get<double>(), 0.5);
  for (const auto& a : of_type(h, "applied")) EXPECT_NE(a["who"], "warm_start") << a.dump();
  const size_t applied = index_of(h, "applied");
  ASSERT_LT(applied, h.size()) << types(h);
  EXPECT_EQ(h[applied]["who"], "speculator");
  EXPECT_EQ(h[applied]["config"][sim::kSlice], 20000);
  windows(10);
  ASSERT_EQ(rt.engine()->confirmed().at(sim::kSlice), 20000);
  const json doc = learned_file();
  ASSERT_EQ(doc["entries"].size(), 2u) << doc.dump();
  EXPECT_EQ(doc["entries"][0]["config"], json({{sim::kSlice, 100}}));
  EXPECT_EQ(doc["entries"][1]["config"], json({{sim::kSlice, 20000}}));
}

// A remembered config that hurts the workload it is offered to is reverted
// by the safety envelope like any provisional, and forgotten.
TEST_F(WarmStartTest, RememberedConfigThatHurtsIsRevertedAndForgotten) {
  learn_first();
  // The same entry, but the lowest weight for the periodic task: ~30 %
  // slower against the hogs in the simulated kernel.
  json doc = learned_file();
  doc["entries"][0]["config"] = {{sim::kNice, 19}};
  std::ofstream(state_file("learned.json")) << doc.dump();
  agents_.speculator = nothing;
  agents_.actor = nothing;
  Runtime& rt = open(unit_config());
  window();
  ASSERT_EQ(machine_.in_force.at(sim::kNice), 19);
  windows(3);
  EXPECT_EQ(machine_.in_force.at(sim::kNice), 0) << "the safety envelope reverted it";
  EXPECT_EQ(rt.engine()->misses(), 1u);
  const std::vector<json> h = this_run();
  const size_t reverted = index_of(h, "reverted");
  ASSERT_LT(reverted, h.size()) << types(h);
  EXPECT_EQ(h[reverted]["who"], "safety");
  const std::vector<json> learned = of_type(h, "learned");
  ASSERT_EQ(learned.size(), 1u) << types(h);
  EXPECT_EQ(learned[0]["config"], nullptr);
  EXPECT_EQ(learned[0]["reason"], "reverted");
  EXPECT_TRUE(learned_file()["entries"].empty());
}

// A learned.json that cannot be trusted is set aside (kept as it was, never
// overwritten), the run starts without warm start and says so, and the next
// confirmed config is written to a fresh file.
TEST_F(WarmStartTest, CorruptForeignOrHostileFilesAreSetAside) {
  const std::string entry =
      R"({"key": {"unit": "sim-app.service"}, "metric": "service_p95", "signature":
          {"oncpu_share": 0.3, "sleeps_per_s": 1000}, "config": {"task.slice_us": 100}})";
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"not JSON", R"({"kind": "specactd-learned", "format": 1, "entries": [)"},
      {"another program's", R"({"kind": "specactd-settings", "format": 1, "entries": []})"},
      {"a newer format", R"({"kind": "specactd-learned", "format": 2, "entries": []})"},
      {"no entries", R"({"kind": "specactd-learned", "format": 1})"},
      {"a pid key", R"({"kind": "specactd-learned", "format": 1, "entries": [{"key": {"pid": 1},
          "metric": "service_p95", "signature": {"oncpu_share": 0.3, "sleeps_per_s": 1000},
          "config": {}}]})"},
      {"a value that is not an integer",
       R"({"kind": "specactd-learned", "format": 1, "entries": [{"key": {"unit": "a.service"},
          "metric": "service_p95", "signature": {"oncpu_share": 0.3, "sleeps_per_s": 1000},
          "config": {"task.slice_us": "100"}}]})"},
      {"a negative signature",
       R"({"kind": "specactd-learned", "format": 1, "entries": [{"key": {"unit": "a.service"},
          "metric": "service_p95", "signature": {"oncpu_share": -1, "sleeps_per_s": 1000},
          "config": {}}]})"},
      {"an unknown field", R"({"kind": "specactd-learned", "format": 1, "entries": [)" +
                               entry.substr(0, entry.size() - 1) + R"(, "exec": "rm"}]})"},
  };
  agents_.speculator = nothing;
  agents_.actor = nothing;
  fs::create_directories(dir_.path() + "/state");
  chmod((dir_.path() + "/state").c_str(), 0700);
  for (const auto& [what, text] : cases) {
    SCOPED_TRACE(what);
    std::ofstream(state_file("learned.json")) << text;
    Runtime& rt = open(unit_config());
    EXPECT_TRUE(has_warning(rt.status(), "learned configs:")) << what;
    std::vector<json> aside;
    for (const auto& e : of_type(this_run(), "set_aside"))
      if (e["file"] == state_file("learned.json")) aside.push_back(e);
    ASSERT_EQ(aside.size(), 1u) << types(this_run());
    const std::string kept = aside[0]["kept_as"].get<std::string>();
    EXPECT_EQ(read_text(dir_.path() + "/state/" + kept), text) << "kept as it was";
    EXPECT_FALSE(fs::exists(state_file("learned.json")));
    window();
    EXPECT_EQ(machine_.in_force.at(sim::kSlice), 2800) << "nothing untrusted was applied";
    runtime_->shutdown("next case");
    runtime_.reset();
  }
  size_t kept = 0;
  for (const auto& e : fs::directory_iterator(dir_.path() + "/state"))
    kept += e.path().filename().string().rfind("learned.json.", 0) == 0;
  EXPECT_EQ(kept, cases.size()) << "nothing set aside was overwritten";

  // The next run learns into a fresh file; the warning is gone.
  learn_first();
  EXPECT_EQ(learned_file()["entries"].size(), 1u);
  EXPECT_FALSE(has_warning(open(unit_config()).status(), "learned configs:"));
}

// A symlink where learned.json should be is neither followed for reading nor
// written through.
TEST_F(WarmStartTest, SymlinkIsNotFollowed) {
  learn_first();
  const std::string outside = dir_.path() + "/outside.json";
  const std::string planted = read_text(state_file("learned.json"));
  std::ofstream(outside) << planted;
  fs::remove(state_file("learned.json"));
  fs::create_symlink(outside, state_file("learned.json"));

  agents_.speculator = nothing;
  agents_.actor = small_slice;
  Runtime& rt = open(unit_config());
  EXPECT_TRUE(has_warning(rt.status(), "symbolic link"));
  window();
  EXPECT_EQ(machine_.in_force.at(sim::kSlice), 2800) << "the link's content was trusted";
  bool unsafe_link = false;
  for (const auto& e : fs::directory_iterator(dir_.path() + "/state"))
    unsafe_link |= e.path().filename().string().rfind("learned.json.unsafe-", 0) == 0 &&
                   fs::is_symlink(e.symlink_status());
  EXPECT_TRUE(unsafe_link);
  rt.shutdown("test over");
  runtime_.reset();
  learn_first();  // writes learned.json again: a file of its own, not through the link
  EXPECT_FALSE(fs::is_symlink(state_file("learned.json")));
  EXPECT_EQ(read_text(outside), planted);
}

// Paused (here: the pause saved with the target), the offer waits; it is
// made at the first window after resume.
TEST_F(WarmStartTest, OfferWaitsWhilePaused) {
  learn_first();
  agents_.speculator = nothing;
  agents_.actor = nothing;
  Runtime& rt = open(unit_config());
  rt.pause();
  windows(3);
  EXPECT_EQ(machine_.in_force.at(sim::kSlice), 2800);
  EXPECT_EQ(index_of(this_run(), "warm_start"), this_run().size()) << types(this_run());
  rt.resume();
  window();
  EXPECT_EQ(machine_.in_force.at(sim::kSlice), 100);
  const std::vector<json> offers = of_type(this_run(), "warm_start");
  ASSERT_EQ(offers.size(), 1u);
  EXPECT_EQ(offers[0]["applied"], true);
}

// warm_start.enabled false: nothing is remembered, nothing re-applied.
TEST_F(WarmStartTest, DisabledRemembersNothing) {
  agents_.speculator = small_slice;
  agents_.actor = small_slice;
  json cfg = unit_config();
  cfg["warm_start"] = {{"enabled", false}};
  open(cfg);
  windows(12);
  EXPECT_FALSE(fs::exists(state_file("learned.json")));
  EXPECT_TRUE(of_type(this_run(), "learned").empty());
}

TEST(WorkloadSignature, MatchesWithinDecadesAndChecksItsFile) {
  const WorkloadSignature a{0.3, 1000};
  EXPECT_NEAR(a.distance({0.3, 1000}), 0, 1e-12);
  EXPECT_TRUE(a.matches(WorkloadSignature{0.6, 400}, 0.5));    // a factor of 2 and 2.5
  EXPECT_FALSE(a.matches(WorkloadSignature{2.0, 1000}, 0.5));  // CPU-bound now
  EXPECT_FALSE(a.matches(WorkloadSignature{0.3, 1}, 0.5));     // barely sleeps now
  // Idle figures count at their floors: two idle targets are alike.
  const WorkloadSignature idle{0, 0};
  EXPECT_TRUE(idle.matches(WorkloadSignature{1e-5, 0.01}, 0.01));
  EXPECT_EQ(WorkloadSignature::from_json(a.to_json()).distance(a), 0);
  EXPECT_THROW(WorkloadSignature::from_json(json({{"oncpu_share", 0.3}})), std::runtime_error);
  EXPECT_THROW(WorkloadSignature::from_json(json({{"oncpu_share", "0.3"}, {"sleeps_per_s", 1}})),
               std::runtime_error);

  // The pins are the user's, not learned; a pid target is never remembered.
  const Config base = {{"a", 1}, {"b", 2}, {"c", 3}};
  EXPECT_EQ(learned_config({{"a", 1}, {"b", 5}, {"c", 7}}, base, {"c"}), Config({{"b", 5}}));
  EXPECT_FALSE(learned_key(TargetSpec::pid(77)));
  TargetSpec unit;
  unit.kind = TargetSpec::Kind::Unit;
  unit.unit = "x.service";
  EXPECT_EQ(learned_key(unit), json({{"unit", "x.service"}}));
}

}  // namespace
}  // namespace specact
