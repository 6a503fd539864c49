// `specactd run` as a user runs it: against the bundled workload (a periodic
// 300 us task vs 4 CPU hogs) on the real kernel, with the builtin agents. It
// must cut the target's service p95 against the untuned first window(s), and
// put every setting back at the end (duration or SIGTERM).
#include <gtest/gtest.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "bus_fixture.h"
#include "observe/metrics_server.h"
#include "observe_test_util.h"
#include "runtime_test_util.h"
#include "subprocess.h"
#include "target/target.h"
#include "test_support.h"

namespace specact {
namespace {

using nlohmann::json;
using specact::testing::Subprocess;
using specact::testing::TempDir;

struct SchedAttr {
  uint32_t size;
  uint32_t sched_policy;
  uint64_t sched_flags;
  int32_t sched_nice;
  uint32_t sched_priority;
  uint64_t sched_runtime;
  uint64_t sched_deadline;
  uint64_t sched_period;
  uint32_t sched_util_min;
  uint32_t sched_util_max;
};

struct TaskSettings {
  int policy = -1;
  int nice = 0;
  uint64_t runtime_ns = 0;  // EEVDF slice request
  bool operator==(const TaskSettings&) const = default;
};

std::string describe(const TaskSettings& t) {
  return "policy " + std::to_string(t.policy) + " nice " + std::to_string(t.nice) + " slice " +
         std::to_string(t.runtime_ns) + " ns";
}

std::map<pid_t, TaskSettings> task_settings(pid_t pid) {
  std::map<pid_t, TaskSettings> out;
  for (pid_t tid : threads_of(pid)) {
    SchedAttr a{};
    if (syscall(SYS_sched_getattr, tid, &a, sizeof a, 0) != 0) continue;
    out[tid] = {static_cast<int>(a.sched_policy), a.sched_nice, a.sched_runtime};
  }
  return out;
}

// The sysctls specactd may manage on this machine.
std::map<std::string, std::string> sysctls() {
  std::map<std::string, std::string> out;
  for (const char* f :
       {"kernel/sched_autogroup_enabled", "kernel/sched_cfs_bandwidth_slice_us",
        "kernel/sched_rr_timeslice_ms", "kernel/timer_migration", "kernel/numa_balancing"}) {
    std::ifstream in(std::string("/proc/sys/") + f);
    std::string v;
    if (in >> v) out[f] = v;
  }
  return out;
}

std::string write_file(const std::string& path, const std::string& text) {
  std::ofstream(path) << text;
  return path;
}

std::vector<json> read_history(const std::string& path) {
  std::vector<json> out;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line))
    if (!line.empty()) out.push_back(json::parse(line));
  return out;
}

// Waits for a child while draining its (merged) output so it never blocks on
// a full pipe. Returns the exit code or -1 on timeout.
int wait_draining(Subprocess& p, int timeout_ms, std::string& output) {
  for (int waited = 0; waited < timeout_ms; waited += 100) {
    std::string line;
    while (p.read_line(line, 0)) output += line + "\n";
    int code = p.wait(100);
    if (code >= 0) {
      output += p.drain_stdout();
      return code;
    }
  }
  return -1;
}

double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

struct RunResult {
  int code = -1;
  std::string output;
  std::vector<json> history;
};

std::string daemon_config(pid_t target, const std::string& state_dir) {
  json cfg = {{"target", {{"pid", target}}},
              {"objective", {{"metric", "service_p95"}}},
              {"window_ms", 1000},
              {"mode", "speculative"},
              {"speculator", {{"backend", "builtin"}, {"delay_ms", 300}}},
              {"actor", {{"backend", "builtin"}, {"delay_ms", 4000}}},
              {"state_dir", state_dir},
              {"dbus", {{"enabled", false}}}};
  return cfg.dump(2);
}

class RunKernel : public ::testing::Test {
 protected:
  void SetUp() override {
    workload_ = std::make_unique<Subprocess>(
        std::vector<std::string>{SPECACT_WORKLOAD_BIN, "--hogs", "4", "--period-us", "2000",
                                 "--work-us", "300", "--duration-s", "120"});
    usleep(500'000);
    ASSERT_TRUE(workload_->running());
    tasks_before_ = task_settings(workload_->pid());
    sysctls_before_ = sysctls();
    ASSERT_FALSE(tasks_before_.empty());
  }
  void TearDown() override {
    if (workload_) workload_->stop();
  }

  void expect_restored() {
    auto tasks_after = task_settings(workload_->pid());
    for (const auto& [tid, before] : tasks_before_) {
      auto it = tasks_after.find(tid);
      if (it == tasks_after.end()) continue;  // thread gone
      EXPECT_TRUE(it->second == before)
          << "tid " << tid << ": before " << describe(before) << ", after " << describe(it->second);
    }
    EXPECT_EQ(sysctls(), sysctls_before_);
  }

  std::unique_ptr<Subprocess> workload_;
  std::map<pid_t, TaskSettings> tasks_before_;
  std::map<std::string, std::string> sysctls_before_;
  TempDir dir_;
};

TEST_F(RunKernel, CutsServiceP95OfTheBundledWorkloadAndRestoresEveryKnob) {
  SPECACT_REQUIRE_ROOT_BPF();
  const std::string state = dir_.path() + "/state";
  const std::string cfg =
      write_file(dir_.path() + "/config.json", daemon_config(workload_->pid(), state));
  Subprocess d({SPECACTD_BIN, "run", "--config", cfg, "--duration", "20"}, true);
  std::string output;
  int code = wait_draining(d, 60'000, output);
  ASSERT_EQ(code, 0) << output;
  std::vector<json> h = read_history(state + "/history.jsonl");
  ASSERT_FALSE(h.empty()) << output;

  // Untuned: clean windows before the first write; tuned: the last 5 clean windows.
  std::vector<double> untuned, all;
  bool applied = false;
  size_t applies = 0;
  for (const auto& e : h) {
    if (e["type"] == "applied") {
      applied = true;
      ++applies;
    }
    if (e["type"] != "window" || e["straddled"].get<bool>() || !e["objective_us"].is_number())
      continue;
    if (!applied) untuned.push_back(e["objective_us"].get<double>());
    all.push_back(e["objective_us"].get<double>());
  }
  ASSERT_FALSE(untuned.empty()) << output;
  ASSERT_GE(all.size(), 8u) << output;
  std::vector<double> tuned(all.end() - 5, all.end());
  const double before = median(untuned), after = median(tuned);
  std::printf("service p95: untuned %.0f us (%zu windows), last 5 windows %.0f us; %zu applies\n",
              before, untuned.size(), after, applies);
  EXPECT_GE(applies, 1u);
  EXPECT_LT(after, 0.5 * before) << output;

  // Writes between windows (the agents' replies) restart the window at the
  // write, and trials start at boundaries: no window mixes two configs, none
  // is cut short by a second tick chain, and the window after a write between
  // windows ends one window after it.
  size_t between = 0;
  int64_t last_window_ns = 0;
  for (size_t i = 0; i < h.size(); ++i) {
    const json& e = h[i];
    if (e["type"] == "window") {
      last_window_ns = e["time_ns"].get<int64_t>();
      EXPECT_FALSE(e["straddled"].get<bool>()) << e.dump();
      // A second tick chain would cut windows in two (one part at most half a
      // window); a late tick only shortens the next window by its lateness.
      if (e["window"]["window"].get<uint64_t>() > 1) {
        EXPECT_GE(e["window"]["duration_ms"].get<double>(), 500.0) << e.dump();
      }
    }
    if (e["type"] != "applied" || last_window_ns == 0) continue;
    const int64_t at = e["time_ns"].get<int64_t>();
    if (at - last_window_ns < 50'000'000) continue;  // at a boundary
    ++between;
    for (size_t j = i + 1; j < h.size(); ++j)
      if (h[j]["type"] == "window") {
        const double ms = static_cast<double>(h[j]["time_ns"].get<int64_t>() - at) / 1e6;
        EXPECT_GE(ms, 950.0) << h[j].dump();
        EXPECT_LE(ms, 1900.0) << h[j].dump();  // not two windows (a tick may be late)
        break;
      }
  }
  EXPECT_GE(between, 1u) << "no write between windows: the speculator's replies land mid-window";

  bool restored = false, stopped = false;
  for (const auto& e : h) {
    if (e["type"] == "restored") restored = e["ok"].get<bool>();
    if (e["type"] == "stopped") stopped = true;
  }
  EXPECT_TRUE(restored) << output;
  EXPECT_TRUE(stopped);
  expect_restored();
}

TEST_F(RunKernel, SigtermRestoresAndExitsZero) {
  SPECACT_REQUIRE_ROOT_BPF();
  const std::string state = dir_.path() + "/state";
  const std::string cfg =
      write_file(dir_.path() + "/config.json", daemon_config(workload_->pid(), state));
  Subprocess d({SPECACTD_BIN, "run", "--config", cfg}, true);
  std::string output;
  // Long enough for the speculator to have written something.
  EXPECT_EQ(wait_draining(d, 6000, output), -1) << output;
  d.signal(SIGTERM);
  ASSERT_EQ(wait_draining(d, 20'000, output), 0) << output;
  std::vector<json> h = read_history(state + "/history.jsonl");
  size_t applies = 0;
  std::string reason;
  for (const auto& e : h) {
    if (e["type"] == "applied") ++applies;
    if (e["type"] == "stopped") reason = e["reason"];
  }
  EXPECT_GE(applies, 1u) << output;
  EXPECT_EQ(reason, "SIGTERM");
  expect_restored();
}

// A copy of the bundled workload under a name of its own, so a comm target
// matches only the processes this test starts.
std::string workload_copy(const std::string& dir, const std::string& name) {
  const std::string path = dir + "/" + name;
  std::filesystem::copy_file(SPECACT_WORKLOAD_BIN, path);
  std::filesystem::permissions(path, std::filesystem::perms::owner_all);
  return path;
}

size_t index_of(const std::vector<json>& h, const std::string& type, size_t from = 0) {
  for (size_t i = from; i < h.size(); ++i)
    if (h[i]["type"] == type) return i;
  return h.size();
}

// The settings of a task nobody tuned: this test's own thread.
TaskSettings untouched_settings() {
  SchedAttr a{};
  syscall(SYS_sched_getattr, 0, &a, sizeof a, 0);
  return {static_cast<int>(a.sched_policy), a.sched_nice, a.sched_runtime};
}

// Issue 11 item 9: a comm target that matches nothing at start (a service
// started before its application) is tuned once its process appears, and the
// session survives the target going to zero processes and coming back.
TEST(RunLiveTarget, CommTargetStartingEmptyIsTunedWhenItAppearsAndAfterARestart) {
  SPECACT_REQUIRE_ROOT_BPF();
  TempDir dir;
  const std::string name = "sa-late-" + std::to_string(getpid() % 100000);
  const std::string bin = workload_copy(dir.path(), name);
  const std::string state = dir.path() + "/state";
  json cfg = json::parse(daemon_config(1, state));
  cfg["target"] = {{"comm", "^" + name + "$"}};
  const std::string cfg_path = write_file(dir.path() + "/config.json", cfg.dump());
  const std::vector<std::string> workload = {
      bin, "--hogs", "2", "--period-us", "2000", "--work-us", "300", "--duration-s", "60"};
  Subprocess d({SPECACTD_BIN, "run", "--config", cfg_path, "--duration", "24"}, true);
  std::string output;
  EXPECT_EQ(wait_draining(d, 3000, output), -1) << output;  // waiting, not failed
  auto first = std::make_unique<Subprocess>(workload);
  EXPECT_EQ(wait_draining(d, 9000, output), -1) << output;
  first->stop();  // the target goes to zero processes
  EXPECT_EQ(wait_draining(d, 3000, output), -1) << output;
  Subprocess second(workload);
  ASSERT_EQ(wait_draining(d, 40'000, output), 0) << output;
  const auto second_after = task_settings(second.pid());
  second.stop();

  std::vector<json> h = read_history(state + "/history.jsonl");
  std::string trail;
  for (const auto& e : h) {
    if (e["type"] != "window") trail += e["type"].get<std::string>() + " ";
  }
  std::printf("events: %s\n", trail.c_str());
  const size_t waiting = index_of(h, "waiting_for_tasks");
  const size_t appeared = index_of(h, "target_appeared", waiting);
  const size_t started = index_of(h, "session_started", appeared);
  const size_t empty = index_of(h, "target_empty", started);
  const size_t returned = index_of(h, "target_returned", empty);
  ASSERT_LT(waiting, h.size()) << output;
  ASSERT_LT(appeared, h.size()) << output;
  ASSERT_LT(started, h.size()) << output;
  EXPECT_GT(h[started]["knobs"].size(), 0u) << h[started].dump();
  ASSERT_LT(empty, h.size()) << output;
  ASSERT_LT(returned, h.size()) << output;
  // The process that appeared was measured (whether the agents then moved a
  // knob within 9 s is their business, not this test's).
  size_t measured = 0;
  for (size_t i = started; i < empty; ++i)
    if (h[i]["type"] == "window" && h[i]["objective_us"].is_number()) ++measured;
  EXPECT_GE(measured, 3u) << "windows with samples of the process that appeared";
  size_t windows_after = 0;
  for (size_t i = returned; i < h.size(); ++i)
    if (h[i]["type"] == "window") ++windows_after;
  EXPECT_GE(windows_after, 3u) << "the session stopped measuring after the target came back";
  bool restored = false;
  for (const auto& e : h)
    if (e["type"] == "restored") restored = e["ok"].get<bool>();
  EXPECT_TRUE(restored) << output;
  const TaskSettings clean = untouched_settings();
  for (const auto& [tid, t] : second_after)
    EXPECT_TRUE(t == clean) << "tid " << tid << " of the returned target left at " << describe(t)
                            << " (untouched: " << describe(clean) << ")";
}

struct CtlRun {
  int code = -1;
  std::string output;  // stdout and stderr
};

CtlRun specactctl(const std::string& bus, std::vector<std::string> args) {
  args.insert(args.begin(), {SPECACTCTL_BIN, "--bus", bus});
  Subprocess p(args, true);
  CtlRun r;
  r.code = wait_draining(p, 20'000, r.output);
  return r;
}

// specactd on a private bus; the status JSON once it answers.
json wait_until_answering(const std::string& bus, Subprocess& d, std::string& output) {
  for (int i = 0; i < 100; ++i) {
    CtlRun r = specactctl(bus, {"--json", "status"});
    if (r.code == 0) return json::parse(r.output);
    if (wait_draining(d, 200, output) >= 0) break;  // the daemon exited
  }
  return json();
}

json bus_config(const json& target, const std::string& state_dir, const std::string& bus) {
  json cfg = json::parse(daemon_config(1, state_dir));
  cfg["target"] = target;
  cfg["mode"] = "actor-only";
  cfg["actor"] = {{"backend", "builtin"}, {"delay_ms", 600'000}};  // only the user acts
  cfg["dbus"] = {{"enabled", true}, {"required", true}, {"bus_address", bus}};
  return cfg;
}

// Issue 11 item 9: before the target's first process, control commands that
// need tuned knobs fail with the reason instead of "no managed knob".
TEST(RunLiveTarget, PinBeforeTheTargetHasAProcessFailsWithTheReason) {
  SPECACT_REQUIRE_ROOT_BPF();
  TempDir dir;
  testing::PrivateBus bus;
  const std::string cfg = write_file(
      dir.path() + "/c.json", bus_config({{"comm", "^sa-none-" + std::to_string(getpid()) + "$"}},
                                         dir.path() + "/state", bus.address())
                                  .dump());
  Subprocess d({SPECACTD_BIN, "run", "--config", cfg}, true);
  std::string output;
  json status = wait_until_answering(bus.address(), d, output);
  ASSERT_TRUE(status.is_object()) << output;
  EXPECT_EQ(status["state"], "waiting") << status.dump();
  CtlRun pin = specactctl(bus.address(), {"pin", "task.nice=5"});
  EXPECT_NE(pin.code, 0) << pin.output;
  EXPECT_NE(pin.output.find("has no process"), std::string::npos) << pin.output;
  EXPECT_EQ(pin.output.find("no managed knob"), std::string::npos) << pin.output;
  EXPECT_EQ(specactctl(bus.address(), {"pause"}).code, 0);  // held until tuning starts
  d.signal(SIGTERM);
  EXPECT_EQ(wait_draining(d, 20'000, output), 0) << output;
}

// A tmpfs mounted for the test, unmounted whatever happens.
class TmpfsMount {
 public:
  TmpfsMount(const std::string& path, const std::string& options) : path_(path) {
    std::filesystem::create_directories(path);
    ok_ = mount("tmpfs", path.c_str(), "tmpfs", MS_NOSUID | MS_NODEV, options.c_str()) == 0;
  }
  ~TmpfsMount() {
    if (ok_) umount2(path_.c_str(), MNT_DETACH);
  }
  bool ok() const { return ok_; }

 private:
  std::string path_;
  bool ok_ = false;
};

// Issue 11 item 10: on a full file system the history cannot be written; the
// daemon says so (once, on stderr, and in the status), and a pin that could
// not be journalled, so was not applied, is an error, not a success.
TEST_F(RunKernel, FullStateDirIsAWarningAndAFailedPin) {
  SPECACT_REQUIRE_ROOT_BPF();
  const std::string state = dir_.path() + "/state";
  TmpfsMount fs(state, "size=64k,mode=0700");
  ASSERT_TRUE(fs.ok()) << "mount tmpfs: " << std::strerror(errno);
  {
    std::ofstream fill(state + "/fill");
    std::string block(4096, 'x');
    for (int i = 0; i < 64 && fill; ++i) fill << block << std::flush;
  }
  testing::PrivateBus bus;
  const std::string cfg =
      write_file(dir_.path() + "/c.json",
                 bus_config({{"pid", workload_->pid()}}, state, bus.address()).dump());
  Subprocess d({SPECACTD_BIN, "run", "--config", cfg}, true);
  std::string output;
  json status = wait_until_answering(bus.address(), d, output);
  ASSERT_TRUE(status.is_object()) << output;
  ASSERT_TRUE(status["warnings"].is_array()) << status.dump();
  ASSERT_EQ(status["warnings"].size(), 1u) << status.dump();
  EXPECT_NE(status["warnings"][0].get<std::string>().find("history.jsonl"), std::string::npos)
      << status.dump();

  CtlRun pin = specactctl(bus.address(), {"pin", "task.nice=5"});
  std::printf("status warning: %s\npin (exit %d): %s", status["warnings"][0].dump().c_str(),
              pin.code, pin.output.c_str());
  EXPECT_NE(pin.code, 0) << pin.output;
  EXPECT_NE(pin.output.find("not applied"), std::string::npos) << pin.output;
  for (const auto& [tid, t] : task_settings(workload_->pid()))
    EXPECT_EQ(t.nice, tasks_before_.count(tid) ? tasks_before_[tid].nice : 0) << "tid " << tid;
  json after = json::parse(specactctl(bus.address(), {"--json", "status"}).output);
  EXPECT_TRUE(after["pinned"].empty()) << after.dump();

  d.signal(SIGTERM);
  EXPECT_GE(wait_draining(d, 20'000, output), 0) << output;
  size_t warnings = 0;
  for (size_t at = output.find("history: cannot append"); at != std::string::npos;
       at = output.find("history: cannot append", at + 1))
    ++warnings;
  EXPECT_EQ(warnings, 1u) << "one warning a minute, not one per line:\n" << output;
  expect_restored();
}

// Issue 17: a real Prometheus (Debian's) scrapes a running `specactd run` on
// 127.0.0.1, and Debian's node_exporter serves the daemon's textfile to it.
// What Prometheus's HTTP API returns for the objective's p95 and a knob value
// is what `specactctl status --json` says; promtool accepts the endpoint's and
// the textfile's text; every query of the Grafana dashboard runs, and its
// knob-change annotation finds the pin made while Prometheus was scraping.
class PrometheusScrape : public RunKernel {
 protected:
  // The result vector (or matrix) of `q` from Prometheus's HTTP API; null
  // when the query failed.
  json query(const std::string& q) {
    auto r = testing::http_get("http://127.0.0.1:" + std::to_string(prom_port_) +
                               "/api/v1/query?query=" + testing::url_encode(q));
    json j = json::parse(r.body, nullptr, false);
    if (r.status != 200 || !j.is_object() || j.value("status", "") != "success") return json();
    return j["data"]["result"];
  }
  // Polls `q` (for up to 60 s) until it has a result.
  json await(const std::string& q) {
    json r;
    for (int i = 0; i < 600; ++i) {
      drain();
      r = query(q);
      if (r.is_array() && !r.empty()) return r;
      usleep(100'000);
    }
    return r;
  }
  static double value_of(const json& sample) {
    return std::stod(sample["value"][1].get<std::string>());
  }
  void drain() {
    std::string line;
    for (Subprocess* p : {prom_.get(), node_.get()})
      while (p && p->read_line(line, 0)) logs_ += line + "\n";
  }
  static std::string read_text(const std::string& path) {
    std::ifstream in(path);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }

  uint16_t prom_port_ = 0;
  std::unique_ptr<Subprocess> prom_, node_;
  std::string logs_;
};

TEST_F(PrometheusScrape, ItsApiAgreesWithTheStatusAndPromtoolPasses) {
  SPECACT_REQUIRE_ROOT_BPF();
  SPECACT_REQUIRE_PROGRAM("prometheus");
  SPECACT_REQUIRE_PROGRAM("prometheus-node-exporter");
  SPECACT_REQUIRE_PROGRAM("promtool");
  testing::PrivateBus bus;
  const std::string state = dir_.path() + "/state";
  const std::string textdir = dir_.path() + "/node-exporter";
  std::filesystem::create_directories(textdir);
  const uint16_t metrics_port = testing::free_port(), node_port = testing::free_port();
  prom_port_ = testing::free_port();
  json cfg = bus_config({{"pid", workload_->pid()}}, state, bus.address());
  // Windows of 2 s: Prometheus (every 1 s) then has the window the status shows.
  cfg["window_ms"] = 2000;
  cfg["metrics"] = {{"listen", "127.0.0.1:" + std::to_string(metrics_port)},
                    {"textfile", textdir + "/specact.prom"}};
  const std::string cfg_path = write_file(dir_.path() + "/c.json", cfg.dump());
  Subprocess d({SPECACTD_BIN, "run", "--config", cfg_path}, true);
  std::string output;
  ASSERT_TRUE(wait_until_answering(bus.address(), d, output).is_object()) << output;

  node_ = std::make_unique<Subprocess>(
      std::vector<std::string>{testing::find_program("prometheus-node-exporter"),
                               "--web.listen-address=127.0.0.1:" + std::to_string(node_port),
                               "--collector.disable-defaults", "--collector.textfile",
                               "--collector.textfile.directory=" + textdir},
      true);
  const std::string prom_dir = dir_.path() + "/prometheus";
  std::filesystem::create_directories(prom_dir + "/data");
  write_file(prom_dir + "/prometheus.yml",
             "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n"
             "  - job_name: specact\n    static_configs:\n      - targets: ['127.0.0.1:" +
                 std::to_string(metrics_port) +
                 "']\n  - job_name: node\n    static_configs:\n      - targets: ['127.0.0.1:" +
                 std::to_string(node_port) + "']\n");
  prom_ = std::make_unique<Subprocess>(
      std::vector<std::string>{testing::find_program("prometheus"),
                               "--config.file=" + prom_dir + "/prometheus.yml",
                               "--storage.tsdb.path=" + prom_dir + "/data",
                               "--web.listen-address=127.0.0.1:" + std::to_string(prom_port_)},
      true);

  // Prometheus sees the knob before the pin, then the pin: a knob change.
  const std::string nice = "specact_knob_value{knob=\"task.nice\",config=\"current\"";
  ASSERT_FALSE(await(nice + ",job=\"specact\"}").empty()) << logs_ << output;
  CtlRun pin = specactctl(bus.address(), {"pin", "task.nice=5"});
  ASSERT_EQ(pin.code, 0) << pin.output;
  json pinned = await(nice + ",job=\"specact\"} == 5");
  ASSERT_EQ(pinned.size(), 1u) << logs_;
  EXPECT_EQ(value_of(pinned[0]), 5);
  // The same value through node_exporter's textfile collector, read cleanly.
  json via_node = await(nice + ",job=\"node\"} == 5");
  EXPECT_EQ(via_node.size(), 1u) << logs_ << read_text(textdir + "/specact.prom");
  json node_errors = await("node_textfile_scrape_error{job=\"node\"}");
  ASSERT_EQ(node_errors.size(), 1u) << logs_;
  EXPECT_EQ(value_of(node_errors[0]), 0) << logs_;

  // The p95 of one window, read from Prometheus and from the status: retried
  // until a scrape and the status show the same window.
  bool compared = false;
  json status;
  for (int i = 0; i < 120 && !compared; ++i) {
    drain();
    // Raw samples (a range selector): each carries its own scrape's timestamp.
    json both = query(
        "{__name__=~\"specact_objective_p95_seconds|specact_window_index\",job=\"specact\"}[10s]");
    json p95, index;
    for (const auto& s : both)
      if (s.contains("values") && !s["values"].empty())
        (s["metric"]["__name__"] == "specact_window_index" ? index : p95) = {
            {"metric", s["metric"]}, {"value", s["values"].back()}};
    status = json::parse(specactctl(bus.address(), {"--json", "status"}).output, nullptr, false);
    if (p95.is_null() || index.is_null() || !status.is_object() ||
        p95["value"][0] != index["value"][0] ||  // the same scrape
        !status["last_window"].is_object() ||
        status["last_window"]["window"].get<double>() != value_of(index) ||
        !status["last_window"]["objective_us"].is_number()) {
      usleep(250'000);
      continue;
    }
    EXPECT_DOUBLE_EQ(value_of(p95), status["last_window"]["objective_us"].get<double>() / 1e6)
        << p95.dump() << "\n"
        << status.dump();
    EXPECT_EQ(p95["metric"]["metric"], "service_p95");
    EXPECT_EQ(status["current"]["task.nice"], 5);
    std::printf("window %.0f: Prometheus p95 %s s, status objective_us %s\n", value_of(index),
                p95["value"][1].get<std::string>().c_str(),
                status["last_window"]["objective_us"].dump().c_str());
    compared = true;
  }
  EXPECT_TRUE(compared) << "no scrape matched the status' window\n" << status.dump() << logs_;

  json applied = query("specact_decisions_total{kind=\"applied\",role=\"user\",job=\"specact\"}");
  ASSERT_EQ(applied.size(), 1u);
  EXPECT_GE(value_of(applied[0]), 1);
  json up = query("up{job=\"specact\"}");
  ASSERT_EQ(up.size(), 1u);
  EXPECT_EQ(value_of(up[0]), 1);

  // The dashboard's queries run here as Grafana would send them (its template
  // variables at "All"); the knob-change annotation marks the pin.
  const json dashboard =
      json::parse(read_text(SPECACT_SOURCE_DIR "/deploy/grafana/specact-dashboard.json"));
  size_t ran = 0;
  for (const auto& p : dashboard["panels"])
    for (const auto& t : p["targets"]) {
      EXPECT_TRUE(query(testing::grafana_query_for_all(t["expr"])).is_array())
          << p["title"] << ": " << t["expr"];
      ++ran;
    }
  bool marked = false;
  for (const auto& a : dashboard["annotations"]["list"]) {
    const std::string expr = a.value("expr", "");
    if (expr.find("changes(specact_knob_value") == std::string::npos) continue;
    for (const auto& s : query(testing::grafana_query_for_all(expr)))
      marked = marked || s["metric"]["knob"] == "task.nice";
  }
  EXPECT_TRUE(marked) << "no knob-change annotation for the pin";
  std::printf("dashboard: %zu panel queries ran; the pin is annotated: %s\n", ran,
              marked ? "yes" : "no");

  auto scrape = testing::http_get("http://127.0.0.1:" + std::to_string(metrics_port) + "/metrics");
  ASSERT_EQ(scrape.status, 200) << output;
  auto lint = observe::promtool_check_metrics(scrape.body);
  EXPECT_EQ(lint.exit_code, 0) << lint.output;
  EXPECT_EQ(lint.output, "");
  lint = observe::promtool_check_metrics(read_text(textdir + "/specact.prom"));
  EXPECT_EQ(lint.exit_code, 0) << lint.output;

  for (Subprocess* p : {prom_.get(), node_.get()}) {
    p->signal(SIGTERM);
    EXPECT_GE(wait_draining(*p, 20'000, logs_), 0) << logs_;
  }
  d.signal(SIGTERM);
  ASSERT_EQ(wait_draining(d, 20'000, output), 0) << output;
  EXPECT_FALSE(std::filesystem::exists(textdir + "/specact.prom"))
      << "a stopped daemon's textfile would show figures that are no longer true";
  expect_restored();
}

TEST(RunCommand, AMetricsAddressInUseIsARuntimeErrorNamingTheKey) {
  TempDir dir;
  // Something listens there already.
  boost::asio::io_context io;
  observe::ListenAddress at = observe::parse_listen_address("127.0.0.1:1", false);
  at.port = 0;
  observe::MetricsServer holder(io, at, [] { return std::string(); });
  json cfg = {{"target", nullptr},
              {"state_dir", dir.path() + "/state"},
              {"dbus", {{"enabled", false}}},
              {"metrics", {{"listen", "127.0.0.1:" + std::to_string(holder.endpoint().port())}}}};
  const std::string path = write_file(dir.path() + "/c.json", cfg.dump());
  Subprocess d({SPECACTD_BIN, "run", "--config", path, "--duration", "5"}, true);
  std::string output;
  EXPECT_EQ(wait_draining(d, 10'000, output), 1) << output;
  EXPECT_NE(output.find("metrics.listen: cannot listen on 127.0.0.1:"), std::string::npos)
      << output;
}

TEST(RunCommand, BadConfigIsAUsageErrorNamingTheKey) {
  TempDir dir;
  const std::string cfg = write_file(dir.path() + "/bad.json",
                                     R"({"target": {"pid": 1}, "safety": {"windows": "two"}})");
  Subprocess d({SPECACTD_BIN, "run", "--config", cfg}, true);
  std::string output;
  EXPECT_EQ(wait_draining(d, 10'000, output), 2);
  EXPECT_NE(output.find("safety.windows: expected an integer"), std::string::npos) << output;

  Subprocess missing({SPECACTD_BIN, "run"}, true);
  std::string out2;
  EXPECT_EQ(wait_draining(missing, 10'000, out2), 2);
  EXPECT_NE(out2.find("--config FILE is required"), std::string::npos) << out2;
}

TEST(RunCommand, MissingTargetProcessIsARuntimeError) {
  SPECACT_REQUIRE_ROOT_BPF();
  TempDir dir;
  // A pid that cannot exist (above pid_max).
  const std::string cfg = write_file(dir.path() + "/c.json", daemon_config(99999999, dir.path()));
  Subprocess d({SPECACTD_BIN, "run", "--config", cfg, "--duration", "2"}, true);
  std::string output;
  EXPECT_EQ(wait_draining(d, 10'000, output), 1);
  EXPECT_NE(output.find("target"), std::string::npos) << output;
}

}  // namespace
}  // namespace specact
