// Settings set over D-Bus survive a restart (settings.json in the state
// directory), through the real Runtime on the simulated kernel: save,
// restore, reset, and what happens to a file that cannot be trusted (corrupt,
// foreign, newer, hostile values, a symlink) or cannot be written.
#include "runtime/saved_settings.h"

#include <sys/stat.h>
#include <unistd.h>

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

// Entries of the state directory whose name starts with `prefix`.
std::vector<std::string> entries_starting(const std::string& dir, const std::string& prefix) {
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator(dir)) {
    const std::string name = e.path().filename().string();
    if (name.rfind(prefix, 0) == 0) out.push_back(name);
  }
  return out;
}

class SavedSettingsTest : public SimRuntime {
 protected:
  json no_target() const {
    json cfg = base_config();
    cfg["target"] = nullptr;
    return cfg;
  }
  // Writes settings.json before the runtime starts, as a crash or a person left it.
  void plant(const std::string& text) {
    fs::create_directories(dir_.path() + "/state");
    chmod((dir_.path() + "/state").c_str(), 0700);
    std::ofstream(state_file("settings.json")) << text;
  }
  static std::string source(const StatusSnapshot& s, const char* setting) {
    return s.settings[setting]["source"].get<std::string>();
  }
};

// Target, mode, pins and pause set over D-Bus are in force again after a
// restart, and status says they came from the settings file.
TEST_F(SavedSettingsTest, TargetModePinsAndPauseSurviveARestart) {
  Runtime& first = open(no_target());
  EXPECT_EQ(source(first.status(), "target"), "config");
  first.set_target(kUnit);
  windows(2);
  first.set_mode("actor-only");
  first.pin(sim::kNice, 5);
  first.pause();
  ASSERT_EQ(machine_.in_force.at(sim::kNice), 5);

  Runtime& rt = restart(no_target());
  EXPECT_EQ(machine_.in_force.at(sim::kNice), 5) << "the pin is in force before window 1";
  const StatusSnapshot s = rt.status();
  EXPECT_EQ(s.target, kUnit);
  EXPECT_EQ(s.mode, "actor-only");
  EXPECT_EQ(s.state, "paused");
  EXPECT_EQ(s.pinned, std::vector<std::string>{sim::kNice});
  EXPECT_EQ(source(s, "target"), "saved");
  EXPECT_EQ(source(s, "mode"), "saved");
  EXPECT_EQ(source(s, "pins"), "saved");
  EXPECT_EQ(source(s, "paused"), "saved");
  EXPECT_EQ(s.settings["target"]["config"], nullptr);
  EXPECT_EQ(s.settings["mode"]["config"], "speculative");
  EXPECT_EQ(s.settings["pins"]["values"], json({{sim::kNice, 5}}));
  EXPECT_EQ(s.settings["file"], state_file("settings.json"));
  EXPECT_TRUE(s.warnings.empty()) << s.warnings.front();
  const size_t calls = agents_.calls.size();
  windows(3);
  EXPECT_EQ(agents_.calls.size(), calls) << "the restored pause was not in force";

  const std::vector<json> h = this_run();
  ASSERT_EQ(h.front()["type"], "started");
  EXPECT_EQ(h.front()["target"], kUnit);
  EXPECT_EQ(h.front()["mode"], "actor-only");
  const std::vector<json> restored = of_type(h, "settings_restored");
  ASSERT_EQ(restored.size(), 2u) << types(
      h);  // at start: target, mode; at the session: pins, pause
  EXPECT_EQ(restored[0]["target"], kUnit);
  EXPECT_EQ(restored[0]["mode"], "actor-only");
  EXPECT_EQ(restored[1]["pins"], json({{sim::kNice, 5}}));
  EXPECT_EQ(restored[1]["paused"], true);
  // Pins go in before window 1 opens: the session's first window is evidence.
  const size_t pinned = index_of(h, "pinned");
  const size_t first_window = index_of(h, "window");
  ASSERT_LT(first_window, h.size()) << types(h);
  EXPECT_LT(pinned, first_window) << types(h);
  EXPECT_EQ(h[first_window]["straddled"], false) << h[first_window].dump();

  // The file is what a person can read.
  const json doc = json::parse(read_text(state_file("settings.json")));
  EXPECT_EQ(doc["kind"], "specactd-settings");
  EXPECT_EQ(doc["format"], 1);
  EXPECT_EQ(doc["target"], kUnit);
  EXPECT_EQ(doc["session"]["pins"], json({{sim::kNice, 5}}));
  struct stat st {};
  ASSERT_EQ(stat(state_file("settings.json").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
}

// The config's values are the defaults: Reset forgets what was set over
// D-Bus, per setting or all of them, and the config's are in force again.
TEST_F(SavedSettingsTest, ResetForgetsAndTheConfigFileRulesAgain) {
  json cfg = base_config();  // target: pid 4242, mode speculative
  Runtime& first = open(cfg);
  first.set_target(kUnit);
  first.set_mode("speculator-only");
  windows(2);
  first.pin(sim::kSlice, 900);
  Runtime& rt = restart(cfg);
  ASSERT_EQ(rt.status().target, kUnit);
  ASSERT_EQ(rt.status().pinned.size(), 1u);

  rt.reset({"pins"});
  EXPECT_TRUE(rt.status().pinned.empty());
  EXPECT_EQ(source(rt.status(), "pins"), "config");
  EXPECT_EQ(rt.status().target, kUnit) << "only the pins were reset";

  rt.reset({"target"});
  StatusSnapshot s = rt.status();
  EXPECT_EQ(s.target, json({{"pid", kTargetPid}}));
  EXPECT_EQ(s.state, "running") << "the config's target is tuned again";
  EXPECT_EQ(source(s, "target"), "config");
  EXPECT_EQ(s.mode, "speculator-only");

  EXPECT_EQ(refusal_of([&] { rt.reset({"knobs"}); }).name, "InvalidArgument");
  rt.reset({});
  s = rt.status();
  EXPECT_EQ(s.mode, "speculative");
  EXPECT_EQ(source(s, "mode"), "config");
  const std::vector<json> resets = of_type(this_run(), "settings_reset");
  ASSERT_EQ(resets.size(), 3u);
  EXPECT_EQ(resets[0]["forgot"], json({"pins"}));
  EXPECT_EQ(resets[1]["forgot"], json({"target"}));
  EXPECT_EQ(resets[2]["forgot"], json({"mode"}));

  Runtime& again = restart(cfg);
  EXPECT_EQ(again.status().target, json({{"pid", kTargetPid}}));
  EXPECT_EQ(again.status().mode, "speculative");
  EXPECT_TRUE(of_type(this_run(), "settings_restored").empty());
  EXPECT_EQ(json::parse(read_text(state_file("settings.json"))),
            json({{"kind", "specactd-settings"}, {"format", 1}}));
}

// A pid names a process, not a workload: a saved pid target is kept only
// while the pid is the same process (same boot, same start time).
TEST_F(SavedSettingsTest, PidTargetIsKeptOnlyWhileItIsTheSameProcess) {
  Runtime& first = open(no_target());
  first.set_target({{"pid", kTargetPid}});
  EXPECT_EQ(restart(no_target()).status().target, json({{"pid", kTargetPid}}));

  machine_.start_time = 2;  // the pid now belongs to another process
  Runtime& rt = restart(no_target());
  EXPECT_EQ(rt.status().state, "stopped");
  EXPECT_TRUE(rt.status().target.is_null());
  EXPECT_EQ(source(rt.status(), "target"), "config");
  const std::vector<json> restored = of_type(this_run(), "settings_restored");
  ASSERT_EQ(restored.size(), 1u);
  ASSERT_EQ(restored[0]["dropped"].size(), 1u);
  EXPECT_NE(restored[0]["dropped"][0].get<std::string>().find("another process"),
            std::string::npos);
  EXPECT_FALSE(json::parse(read_text(state_file("settings.json"))).contains("target"));

  machine_.start_time = 1;
  rt.set_target({{"pid", kTargetPid}});
  machine_.boot_id = "sim-boot-2";  // rebooted
  EXPECT_TRUE(restart(no_target()).status().target.is_null());
}

// A settings file that cannot be trusted is set aside (never deleted, never
// overwritten), the daemon starts from the config file's values and says so.
TEST_F(SavedSettingsTest, CorruptForeignNewerOrHostileFilesAreSetAside) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"not JSON", "{\"kind\": \"specactd-settings\", \"format\": 1, \"mode\": "},
      {"another program's", R"({"kind": "something-else", "format": 1, "mode": "monitor"})"},
      {"a newer format", R"({"kind": "specactd-settings", "format": 2, "mode": "monitor"})"},
      {"an unknown mode", R"({"kind": "specactd-settings", "format": 1, "mode": "turbo"})"},
      {"pid 1", R"({"kind": "specactd-settings", "format": 1, "target": {"pid": 1},
                    "pid_identity": {"boot_id": "sim-boot", "start_times": {"1": 1}}})"},
      {"a pid without identity", R"({"kind": "specactd-settings", "format": 1,
                                     "target": {"pid": 4242}})"},
      {"a pin that is not an integer",
       R"({"kind": "specactd-settings", "format": 1, "session": {"target": {"pid": 4242},
           "pins": {"task.nice": "-20"}, "paused": false}})"},
      {"a huge number", R"({"kind": "specactd-settings", "format": 1, "session":
           {"target": {"unit": "a.service"}, "pins": {"task.nice": 1e400}}})"},
  };
  for (const auto& [what, text] : cases) {
    SCOPED_TRACE(what);
    plant(text);
    Runtime& rt = open();  // target pid 4242 from the config
    StatusSnapshot s = rt.status();
    EXPECT_EQ(s.mode, "speculative");
    EXPECT_EQ(s.target, json({{"pid", kTargetPid}}));
    EXPECT_EQ(s.state, "running");
    EXPECT_TRUE(has_warning(s, "started from the config file's settings")) << what;
    const std::vector<json> aside = of_type(this_run(), "set_aside");
    ASSERT_EQ(aside.size(), 1u) << types(this_run());
    const std::string kept = aside[0]["kept_as"].get<std::string>();
    EXPECT_EQ(read_text(dir_.path() + "/state/" + kept), text) << "kept as it was";
    EXPECT_FALSE(fs::exists(state_file("settings.json")));

    // Setting something writes a good file; the warning goes.
    rt.set_mode("actor-only");
    EXPECT_FALSE(has_warning(rt.status(), "settings:"));
    EXPECT_EQ(json::parse(read_text(state_file("settings.json")))["mode"], "actor-only");
    runtime_->shutdown("next case");
    runtime_.reset();
    fs::remove(state_file("settings.json"));
  }
  // Each case kept its own file: nothing set aside was overwritten.
  EXPECT_EQ(entries_starting(dir_.path() + "/state", "settings.json.").size(), cases.size());
}

// A symlink where settings.json should be is neither followed for reading
// nor written through: it is set aside, and what it points at is untouched.
TEST_F(SavedSettingsTest, SymlinkIsNotFollowed) {
  const std::string outside = dir_.path() + "/outside.json";
  const std::string planted = R"({"kind": "specactd-settings", "format": 1, "mode": "monitor"})";
  std::ofstream(outside) << planted;
  fs::create_directories(dir_.path() + "/state");
  chmod((dir_.path() + "/state").c_str(), 0700);
  fs::create_symlink(outside, state_file("settings.json"));

  Runtime& rt = open();
  EXPECT_EQ(rt.status().mode, "speculative") << "the link's target was trusted";
  EXPECT_TRUE(has_warning(rt.status(), "symbolic link"));
  const std::vector<std::string> aside =
      entries_starting(dir_.path() + "/state", "settings.json.unsafe-");
  ASSERT_EQ(aside.size(), 1u);
  EXPECT_TRUE(fs::is_symlink(dir_.path() + "/state/" + aside[0]));
  rt.set_mode("actor-only");
  EXPECT_FALSE(fs::is_symlink(state_file("settings.json")));
  EXPECT_EQ(read_text(outside), planted);
}

// A file that cannot be written: what was set is in force, and status says
// it will not survive a restart until a write works again.
TEST_F(SavedSettingsTest, SaveFailureIsAWarningNotAnError) {
  Runtime& rt = open();
  // The atomic replace writes settings.json.tmp first: a directory there
  // makes every write fail.
  fs::create_directory(state_file("settings.json.tmp"));
  rt.set_mode("actor-only");
  StatusSnapshot s = rt.status();
  EXPECT_EQ(s.mode, "actor-only");
  EXPECT_EQ(source(s, "mode"), "unsaved");
  EXPECT_TRUE(has_warning(s, "will not survive a restart"));
  fs::remove(state_file("settings.json.tmp"));
  rt.set_mode("speculator-only");
  s = rt.status();
  EXPECT_EQ(source(s, "mode"), "saved");
  EXPECT_FALSE(has_warning(s, "settings:"));
}

// A saved pin the session cannot have (a knob this machine lacks) is dropped
// with the reason; the others are restored.
TEST_F(SavedSettingsTest, PinThatCannotBeRestoredIsDropped) {
  plant(json({{"kind", "specactd-settings"},
              {"format", 1},
              {"session",
               {{"target", {{"pid", kTargetPid}}},
                {"pins", {{"task.no_such_knob", 1}, {sim::kNice, 3}}},
                {"paused", false}}}})
            .dump());
  Runtime& rt = open();
  EXPECT_EQ(rt.status().pinned, std::vector<std::string>{sim::kNice});
  EXPECT_EQ(machine_.in_force.at(sim::kNice), 3);
  const std::vector<json> restored = of_type(this_run(), "settings_restored");
  ASSERT_EQ(restored.size(), 1u);
  EXPECT_EQ(restored[0]["pins"], json({{sim::kNice, 3}}));
  ASSERT_EQ(restored[0]["dropped"].size(), 1u);
  EXPECT_NE(restored[0]["dropped"][0].get<std::string>().find("task.no_such_knob"),
            std::string::npos);
  EXPECT_EQ(json::parse(read_text(state_file("settings.json")))["session"]["pins"],
            json({{sim::kNice, 3}}));
}

// Pins and pause belong to the target they were set for: a new target
// starts without them.
TEST_F(SavedSettingsTest, PinsBelongToTheirTarget) {
  Runtime& rt = open();
  windows(1);
  rt.pin(sim::kNice, 4);
  rt.set_target(kUnit);
  EXPECT_TRUE(rt.status().pinned.empty());
  EXPECT_EQ(source(rt.status(), "pins"), "config");
  Runtime& again = restart(base_config());
  EXPECT_EQ(again.status().target, kUnit);
  EXPECT_TRUE(again.status().pinned.empty());
}

// The file's values go through the same checks as D-Bus arguments.
TEST(SavedSettingsFile, RoundTripAndChecks) {
  SavedSettings s;
  s.target = TargetSpec::pid(77);
  s.boot_id = "b";
  s.start_times[77] = 1234;
  s.mode = engine::Mode::Recommend;
  s.set_session(*s.target, {{"task.nice", -3}}, true);
  const SavedSettings back = SavedSettings::from_json(s.to_json(), TargetPolicy{});
  EXPECT_EQ(back.to_json(), s.to_json());
  EXPECT_TRUE(back.session_is_for(TargetSpec::pid(77)));
  EXPECT_FALSE(back.session_is_for(TargetSpec::pid(78)));

  json unknown = s.to_json();
  unknown["kernel.panic"] = 1;
  EXPECT_THROW(SavedSettings::from_json(unknown, TargetPolicy{}), std::runtime_error);
  json many = s.to_json();
  for (int i = 0; i < 2000; ++i) many["session"]["pins"]["k" + std::to_string(i)] = 1;
  EXPECT_THROW(SavedSettings::from_json(many, TargetPolicy{}), std::runtime_error);
  json other_pid = s.to_json();
  other_pid["pid_identity"]["start_times"]["99"] = 1;
  EXPECT_THROW(SavedSettings::from_json(other_pid, TargetPolicy{}), std::runtime_error);
  TargetPolicy two;
  two.max_pids = 1;
  json pids = {{"target", {{"pids", {1000, 1001}}}},
               {"pid_identity", {{"boot_id", "b"}, {"start_times", json::object()}}}};
  EXPECT_THROW(SavedSettings::from_json(pids, two), std::runtime_error);
}

}  // namespace
}  // namespace specact
