// specactctl against the real D-Bus service on a private bus: output
// snapshots, exit codes, the policy as seen by an unprivileged user, watch.
#include <gtest/gtest.h>
#include <pty.h>

#include <fstream>
#include <sstream>

#include "bus_fixture.h"
#include "test_support.h"

namespace specact::testing {
namespace {

using nlohmann::json;
constexpr uid_t kNobody = 65534;

class SpecactctlTest : public ::testing::Test {
 protected:
  void SetUp() override {
    SPECACT_REQUIRE_ROOT_BPF();
    bus_ = std::make_unique<PrivateBus>();
    server_ = std::make_unique<ServerThread>(bus_->address());
  }
  void TearDown() override {
    server_.reset();
    bus_.reset();
  }
  ProcessResult ctl(std::vector<std::string> args, std::optional<uid_t> uid = std::nullopt,
                    std::function<void()> tick = nullptr) {
    args.insert(args.begin(), SPECACTCTL_PATH);
    return run_process(args, {"DBUS_SYSTEM_BUS_ADDRESS=" + bus_->address()}, uid,
                       std::chrono::seconds(20), std::move(tick));
  }
  // Compares with tests/dbus/snapshots/<name>; SPECACT_UPDATE_SNAPSHOTS=1 rewrites it.
  void expect_snapshot(const std::string& name, const std::string& actual) {
    std::string path = std::string(SPECACT_SNAPSHOT_DIR) + "/" + name;
    const char* update = std::getenv("SPECACT_UPDATE_SNAPSHOTS");
    if (update && std::string(update) == "1") {
      std::ofstream(path) << actual;
      return;
    }
    std::ifstream in(path);
    ASSERT_TRUE(in) << "missing snapshot " << path << " (run with SPECACT_UPDATE_SNAPSHOTS=1)";
    std::stringstream ss;
    ss << in.rdbuf();
    EXPECT_EQ(actual, ss.str()) << "snapshot " << name << " differs";
  }
  FakeSurface& fake() { return server_->surface; }

  std::unique_ptr<PrivateBus> bus_;
  std::unique_ptr<ServerThread> server_;
};

TEST_F(SpecactctlTest, StatusTableSnapshot) {
  auto r = ctl({"status"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  expect_snapshot("status.txt", r.out);
}

TEST_F(SpecactctlTest, StatusJsonSnapshot) {
  auto r = ctl({"status", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  expect_snapshot("status.json", r.out);
  json s = json::parse(r.out);
  EXPECT_EQ(s["state"], "stopped");
  EXPECT_EQ(s["current"]["task.slice_us"], 3000);
}

TEST_F(SpecactctlTest, KnobsTableSnapshot) {
  auto r = ctl({"knobs"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  expect_snapshot("knobs.txt", r.out);
}

TEST_F(SpecactctlTest, KnobsJsonSnapshot) {
  auto r = ctl({"--json", "knobs"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  expect_snapshot("knobs.json", r.out);
  EXPECT_EQ(json::parse(r.out).size(), 4u);
}

TEST_F(SpecactctlTest, HistoryTableAndJson) {
  auto r = ctl({"history"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(
      r.out.find(
          "applied by speculator task.slice_us 3000->100 (runq p95 dominated by long slices)"),
      std::string::npos)
      << r.out;
  auto j = ctl({"history", "--json", "--since", "1"});
  ASSERT_EQ(j.exit_code, 0) << j.err;
  json events = json::parse(j.out);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0]["type"], "confirmed");
}

TEST_F(SpecactctlTest, ControlCommandsChangeTheDaemon) {
  EXPECT_EQ(ctl({"start"}).exit_code, 0);
  EXPECT_EQ(ctl({"pause"}).exit_code, 0);
  EXPECT_EQ(ctl({"resume"}).exit_code, 0);
  EXPECT_EQ(ctl({"mode", "speculator-only"}).exit_code, 0);
  EXPECT_EQ(ctl({"target", "--pid", "17,18"}).exit_code, 0);
  EXPECT_EQ(ctl({"pin", "task.policy=batch"}).exit_code, 0);
  EXPECT_EQ(ctl({"pin", "task.slice_us=250"}).exit_code, 0);
  EXPECT_EQ(ctl({"unpin", "task.slice_us"}).exit_code, 0);
  StatusSnapshot s;
  server_->run([&] { s = fake().snap_; });
  EXPECT_EQ(s.state, "running");
  EXPECT_EQ(s.mode, "speculator-only");
  EXPECT_EQ(s.target, json({{"pids", {17, 18}}}));
  EXPECT_EQ(s.current.at("task.policy"), 1);
  EXPECT_EQ(s.current.at("task.slice_us"), 250);
  EXPECT_EQ(s.pinned, std::vector<std::string>{"task.policy"});
  EXPECT_EQ(ctl({"revert"}).exit_code, 0);
  EXPECT_EQ(ctl({"stop"}).exit_code, 0);
  server_->run([&] { s = fake().snap_; });
  EXPECT_EQ(s.state, "stopped");
  EXPECT_EQ(s.current, s.baseline);
  auto u = ctl({"target", "--unit", "web.service", "--json"});
  EXPECT_EQ(json::parse(u.out), json({{"ok", true}, {"command", "target"}}));
}

// What was set over D-Bus is forgotten with Reset: `target --clear` for the
// target, `reset [SETTING...]` for the named settings or all of them.
TEST_F(SpecactctlTest, TargetClearAndResetCallReset) {
  auto clear = ctl({"target", "--clear"});
  EXPECT_EQ(clear.exit_code, 0) << clear.err;
  EXPECT_NE(clear.out.find("config file's"), std::string::npos) << clear.out;
  EXPECT_EQ(ctl({"reset"}).exit_code, 0);
  auto some = ctl({"reset", "pins", "paused", "--json"});
  EXPECT_EQ(some.exit_code, 0) << some.err;
  EXPECT_EQ(json::parse(some.out), json({{"ok", true}, {"command", "reset"}}));
  auto bad = ctl({"reset", "knobs"});
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_NE(bad.err.find("'knobs' is not a setting"), std::string::npos) << bad.err;
  EXPECT_EQ(ctl({"target", "--clear", "x"}).exit_code, 2);
  std::vector<std::vector<std::string>> resets;
  server_->run([&] { resets = fake().resets; });
  ASSERT_EQ(resets.size(), 3u);
  EXPECT_EQ(resets[0], std::vector<std::string>{"target"});
  EXPECT_TRUE(resets[1].empty());
  EXPECT_EQ(resets[2], (std::vector<std::string>{"pins", "paused"}));
}

TEST_F(SpecactctlTest, ExitCodesForUsageAndDaemonErrors) {
  auto bad_mode = ctl({"mode", "turbo"});
  EXPECT_EQ(bad_mode.exit_code, 2);
  EXPECT_NE(bad_mode.err.find("unknown mode 'turbo'"), std::string::npos) << bad_mode.err;
  EXPECT_EQ(ctl({"frobnicate"}).exit_code, 2);
  EXPECT_EQ(ctl({}).exit_code, 2);
  EXPECT_EQ(ctl({"pin", "task.slice_us"}).exit_code, 2);
  EXPECT_EQ(ctl({"target", "--pid", "abc"}).exit_code, 2);
  EXPECT_EQ(ctl({"history", "--limit"}).exit_code, 2);
  auto unknown = ctl({"pin", "no.such.knob=5"});
  EXPECT_EQ(unknown.exit_code, 1);
  EXPECT_NE(unknown.err.find("UnknownKnob"), std::string::npos) << unknown.err;
  auto range = ctl({"pin", "task.slice_us=1"});
  EXPECT_EQ(range.exit_code, 1);
  EXPECT_NE(range.err.find("within [100, 100000]"), std::string::npos) << range.err;
  int64_t pid_max = 4194304;
  std::ifstream("/proc/sys/kernel/pid_max") >> pid_max;
  auto gone = ctl({"target", "--pid", std::to_string(pid_max - 1)});
  EXPECT_EQ(gone.exit_code, 0) << gone.err;  // in range for the kernel; the fake accepts it
  for (const std::string& not_a_pid : {std::to_string(pid_max), std::string("4294967297")}) {
    auto missing = ctl({"target", "--pid", not_a_pid});
    EXPECT_EQ(missing.exit_code, 2) << not_a_pid;  // not a pid at all: rejected before the call
    EXPECT_NE(missing.err.find("is not a valid pid"), std::string::npos) << missing.err;
  }
  auto help = ctl({"--help"});
  EXPECT_EQ(help.exit_code, 0);
  EXPECT_NE(help.out.find("Exit status:"), std::string::npos);
}

TEST_F(SpecactctlTest, DaemonNotRunningIsExitThree) {
  server_->stop_service();
  auto r = ctl({"status"});
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_NE(r.err.find("systemctl start specactd"), std::string::npos) << r.err;
  EXPECT_EQ(ctl({"watch", "--json", "--count", "1"}).exit_code, 3);
  auto nobus = run_process({SPECACTCTL_PATH, "status"},
                           {"DBUS_SYSTEM_BUS_ADDRESS=unix:path=/nonexistent/specact/bus"});
  EXPECT_EQ(nobus.exit_code, 3);
  EXPECT_NE(nobus.err.find("cannot connect"), std::string::npos) << nobus.err;
}

// Issue 11, specactctl minor points: with the daemon down a usage error is
// still exit 2 (it was 3 "not running"), per-command --help works, and an
// argument that is not UTF-8 gets one clear line.
TEST_F(SpecactctlTest, UsageErrorsComeFirstAndHelpAndUtf8) {
  server_->stop_service();
  const std::vector<std::vector<std::string>> usage = {{"mode", "turbo"},
                                                       {"target", "--pid", "abc"},
                                                       {"pin", "task.slice_us"},
                                                       {"history", "--limit", "x"},
                                                       {"status", "extra"},
                                                       {"unpin"},
                                                       {"target", "--pid", "4294967297"},
                                                       {"watch", "--count", "0"}};
  for (const auto& args : usage) {
    auto r = ctl(args);
    EXPECT_EQ(r.exit_code, 2) << args[0] << " " << (args.size() > 1 ? args[1] : "") << ": "
                              << r.err;
  }
  EXPECT_EQ(ctl({"status"}).exit_code, 3);  // a valid command still says "not running"
  for (const char* cmd :
       {"status", "knobs", "history", "watch", "target", "pin", "mode", "reset"}) {
    auto h = ctl({cmd, "--help"});
    EXPECT_EQ(h.exit_code, 0) << cmd << ": " << h.err;
    EXPECT_NE(h.out.find(std::string("specactctl ") +
                         (std::string(cmd) == "status" || std::string(cmd) == "knobs" ||
                                  std::string(cmd) == "history" || std::string(cmd) == "watch"
                              ? "[--json] "
                              : "") +
                         cmd),
              std::string::npos)
        << h.out;
  }
  auto bad = ctl({"target", "--comm",
                  "\xff\xfe"
                  "abc"});
  EXPECT_EQ(bad.exit_code, 2) << bad.err;
  EXPECT_NE(bad.err.find("is not valid UTF-8"), std::string::npos) << bad.err;
  EXPECT_EQ(bad.err.find("json.exception"), std::string::npos) << bad.err;
  EXPECT_EQ(ctl({"pin", "task.slice_us=\xc0\xaf"}).exit_code, 2);  // overlong "/"
}

TEST_F(SpecactctlTest, UnprivilegedUserReadsButCannotChange) {
  auto status = ctl({"status", "--json"}, kNobody);
  ASSERT_EQ(status.exit_code, 0) << status.err;
  EXPECT_EQ(json::parse(status.out)["state"], "stopped");
  EXPECT_EQ(ctl({"knobs"}, kNobody).exit_code, 0);
  EXPECT_EQ(ctl({"history"}, kNobody).exit_code, 0);
  for (std::vector<std::string> cmd : {std::vector<std::string>{"start"},
                                       {"stop"},
                                       {"pause"},
                                       {"revert"},
                                       {"mode", "monitor"},
                                       {"pin", "task.slice_us=100"},
                                       {"target", "--comm", "x"},
                                       {"target", "--clear"},
                                       {"reset"},
                                       {"unpin", "task.slice_us"}}) {
    auto r = ctl(cmd, kNobody);
    EXPECT_EQ(r.exit_code, 1) << cmd[0];
    EXPECT_NE(r.err.find("permission denied"), std::string::npos) << cmd[0] << ": " << r.err;
  }
  StatusSnapshot s;
  server_->run([&] { s = fake().snap_; });
  EXPECT_EQ(s.state, "stopped");
  EXPECT_EQ(s.mode, "speculative");
  EXPECT_TRUE(s.pinned.empty());
  std::vector<std::vector<std::string>> resets;
  server_->run([&] { resets = fake().resets; });
  EXPECT_TRUE(resets.empty());
  // Root may (the same binary, the same bus).
  EXPECT_EQ(ctl({"start"}).exit_code, 0);
}

TEST_F(SpecactctlTest, WatchJsonCountReceivesWindows) {
  // Windows every ~50 ms on the daemon's loop while specactctl runs.
  auto r = ctl({"watch", "--json", "--count", "3"}, std::nullopt, [&] {
    boost::asio::post(server_->io(), [srv = server_.get()] { srv->surface.emit_window(1000.0); });
  });
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::istringstream lines(r.out);
  std::string line;
  std::vector<json> windows;
  while (std::getline(lines, line)) {
    json j = json::parse(line);
    if (j["kind"] == "window") windows.push_back(j);
  }
  ASSERT_EQ(windows.size(), 3u) << r.out;
  EXPECT_LT(windows[0]["index"].get<uint64_t>(), windows[1]["index"].get<uint64_t>());
  EXPECT_LT(windows[1]["index"].get<uint64_t>(), windows[2]["index"].get<uint64_t>());
  EXPECT_EQ(windows[2]["p95_us"], 1000.0);
  EXPECT_TRUE(windows[2]["window"].contains("config"));
}

TEST_F(SpecactctlTest, WatchPlainLinesWhenNotATerminal) {
  int n = 0;
  auto r = ctl({"watch", "--count", "2"}, kNobody, [&] {
    if (++n % 2 == 0)
      boost::asio::post(server_->io(), [srv = server_.get()] {
        srv->surface.add_event({{"type", "applied"},
                                {"by", "speculator"},
                                {"changes", {{"task.policy", {{"from", 0}, {"to", 2}}}}}});
        srv->surface.add_event({{"type", "agent_called"}, {"summary", "bookkeeping"}});
        srv->surface.add_event(
            {{"type", "confirmed"}, {"summary", "actor confirmed task.policy=idle (hit)"}});
        srv->surface.emit_window(777.0);
      });
  });
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("window "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("p95 777 us"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("applied by speculator task.policy other->idle"), std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("actor confirmed task.policy=idle (hit)"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("bookkeeping"), std::string::npos) << "agent bookkeeping is not a knob move";
  EXPECT_EQ(r.out.find("\033["), std::string::npos) << "no terminal escapes in plain mode";
}

TEST_F(SpecactctlTest, WatchReconnectsWhenTheDaemonRestarts) {
  // Phase 0: one window, then the service goes away, then comes back and
  // sends more; watch must see windows from both lives.
  int ticks = 0;
  auto r = ctl({"watch", "--json", "--count", "3"}, std::nullopt, [&] {
    ++ticks;
    if (ticks == 10)
      boost::asio::post(server_->io(), [srv = server_.get()] { srv->surface.emit_window(500.0); });
    if (ticks == 20) server_->stop_service();
    if (ticks == 40) server_->start_service();
    if (ticks > 50 && ticks % 5 == 0)
      boost::asio::post(server_->io(), [srv = server_.get()] { srv->surface.emit_window(250.0); });
  });
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::istringstream lines(r.out);
  std::string line;
  std::vector<double> p95;
  while (std::getline(lines, line)) {
    json j = json::parse(line);
    if (j["kind"] == "window") p95.push_back(j["p95_us"].get<double>());
  }
  ASSERT_EQ(p95.size(), 3u) << r.out;
  EXPECT_EQ(p95[0], 500.0);
  EXPECT_EQ(p95[2], 250.0);
  EXPECT_NE(r.err.find("went away"), std::string::npos) << r.err;
}

TEST_F(SpecactctlTest, WatchDrawsChartOnATerminal) {
  // specactctl under a pseudo-terminal: it must draw (alternate screen, chart
  // with axis, config table, move log) and still honour --count.
  int master = -1;
  winsize ws{30, 100, 0, 0};
  pid_t pid = forkpty(&master, nullptr, nullptr, &ws);
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    setenv("DBUS_SYSTEM_BUS_ADDRESS", bus_->address().c_str(), 1);
    setenv("LANG", "C.UTF-8", 1);
    execl(SPECACTCTL_PATH, SPECACTCTL_PATH, "watch", "--count", "3", nullptr);
    _exit(127);
  }
  std::string out;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  int n = 0;
  while (std::chrono::steady_clock::now() < deadline) {
    pollfd p{master, POLLIN, 0};
    if (poll(&p, 1, 50) > 0) {
      char buf[4096];
      ssize_t r = read(master, buf, sizeof buf);
      if (r <= 0) break;  // EIO once the child has exited
      out.append(buf, static_cast<size_t>(r));
    }
    if (++n % 3 == 0)
      boost::asio::post(server_->io(), [srv = server_.get(), n] {
        if (n == 6)
          srv->surface.add_event({{"type", "applied"},
                                  {"by", "speculator"},
                                  {"changes", {{"task.slice_us", {{"from", 3000}, {"to", 100}}}}},
                                  {"reason", "shorter slices"}});
        srv->surface.emit_window(n * 100.0);
      });
  }
  int status = 0;
  if (waitpid(pid, &status, WNOHANG) == 0) {
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
  }
  close(master);
  ASSERT_TRUE(WIFEXITED(status)) << out;
  EXPECT_EQ(WEXITSTATUS(status), 0) << out;
  EXPECT_NE(out.find("\033[?1049h"), std::string::npos) << "alternate screen";
  EXPECT_NE(out.find("┤"), std::string::npos) << "chart y axis";
  EXPECT_NE(out.find("└"), std::string::npos) << "chart x axis";
  EXPECT_NE(out.find("CONFIRMED"), std::string::npos) << "config table";
  EXPECT_NE(out.find("applied by speculator task.slice_us 3000->100 (shorter slices)"),
            std::string::npos);
  EXPECT_NE(out.find("\033[?1049l"), std::string::npos) << "terminal restored";
}

}  // namespace
}  // namespace specact::testing
