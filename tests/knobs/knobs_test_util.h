// Helpers shared by the knobs tests: temp dirs, fake file trees, a victim
// process with threads, and an independent sched_getattr (so the tests do not
// check the library with its own code).
#pragma once

#include <sched.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "knobs/knob_manager.h"

namespace knobs_test {

namespace fs = std::filesystem;

inline std::string make_temp_dir(const std::string& tag) {
  std::string tmpl = (fs::temp_directory_path() / ("specact-knobs-" + tag + "-XXXXXX")).string();
  char* p = mkdtemp(tmpl.data());
  if (!p) std::abort();
  return p;
}

struct TempDir {
  std::string path;
  explicit TempDir(const std::string& tag) : path(make_temp_dir(tag)) {}
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  std::string operator/(const std::string& rel) const { return path + "/" + rel; }
};

inline void write_text(const std::string& path, const std::string& text) {
  fs::create_directories(fs::path(path).parent_path());
  std::ofstream out(path, std::ios::trunc);
  out << text;
}

// Fake /proc/sys, debugfs and cgroup roots plus a state directory in one
// temp dir, and the KnobsConfig that points the knobs layer at them.
struct FakeRoots {
  TempDir dir;
  std::string sys = dir / "sys";
  std::string dbg = dir / "dbg";
  std::string cg = dir / "cg";
  std::string state = dir / "state";

  explicit FakeRoots(const std::string& tag) : dir(tag) {}
  specact::KnobsConfig config() const {
    specact::KnobsConfig c;
    c.state_dir = state;
    c.sys_root = sys;
    c.debugfs_root = dbg;
    c.cgroup_root = cg;
    c.min_interval_ms = 0;
    return c;
  }
  std::string journal() const { return state + "/knobs-journal.json"; }
};

// FakeRoots holding the files of a 6.x kernel with EEVDF (no numa_balancing:
// "not present") and a cgroup "app" holding this process.
struct FakeKernel : FakeRoots {
  explicit FakeKernel(const std::string& tag = "unit") : FakeRoots(tag) {
    write_text(sys + "/kernel/sched_autogroup_enabled", "1\n");
    write_text(sys + "/kernel/sched_cfs_bandwidth_slice_us", "5000\n");
    write_text(sys + "/kernel/sched_rr_timeslice_ms", "100\n");
    write_text(sys + "/kernel/timer_migration", "1\n");
    write_text(dbg + "/base_slice_ns", "700000\n");
    write_text(dbg + "/migration_cost_ns", "500000\n");
    write_text(dbg + "/nr_migrate", "32\n");
    write_text(dbg + "/preempt", "none voluntary (full) lazy\n");
    write_text(cg + "/cgroup.controllers", "cpuset cpu io memory pids\n");
    write_text(cg + "/cgroup.procs", "");
    write_text(cg + "/app/cgroup.procs", std::to_string(getpid()) + "\n");
    write_text(cg + "/app/cpu.weight", "100\n");
    write_text(cg + "/app/cpu.idle", "0\n");
    write_text(cg + "/app/cpu.max", "max 100000\n");
  }
  // The cgroup "app" of the fake tree as a target.
  specact::TargetResolver app_target() const {
    specact::TargetSpec spec;
    spec.kind = specact::TargetSpec::Kind::Cgroup;
    spec.cgroup = "app";
    specact::TargetResolver target(spec, "/proc", cg);
    target.validate();
    return target;
  }
};

inline std::string read_text(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  std::string s = ss.str();
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

// Puts a real kernel file back however the test ends (a failed ASSERT
// included), so a failing test never leaves the machine changed.
struct RestoreFileGuard {
  std::string path, original;
  explicit RestoreFileGuard(std::string p) : path(std::move(p)), original(read_text(path)) {}
  ~RestoreFileGuard() {
    if (!original.empty() && read_text(path) != original) std::ofstream(path) << original;
  }
};

struct Attr {
  uint32_t size, policy;
  uint64_t flags;
  int32_t nice;
  uint32_t prio;
  uint64_t runtime, deadline, period;
  uint32_t umin, umax;
};

inline Attr get_attr(pid_t tid) {
  Attr a{};
  if (syscall(SYS_sched_getattr, tid, &a, sizeof(a), 0) != 0) a.size = 0;
  return a;
}

inline std::vector<pid_t> tids_of(pid_t pid) {
  std::vector<pid_t> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator("/proc/" + std::to_string(pid) + "/task", ec))
    out.push_back(std::stoi(e.path().filename().string()));
  std::sort(out.begin(), out.end());
  return out;
}

// A child process running `victim` with `threads` sleeping threads. SIGUSR1
// makes it start a thread that resets its own slice/nice to the defaults;
// SIGUSR2 one that just inherits.
struct Victim {
  pid_t pid = -1;
  Victim(const std::string& exe, int threads) {
    pid = fork();
    if (pid == 0) {
      std::string n = std::to_string(threads);
      execl(exe.c_str(), exe.c_str(), n.c_str(), static_cast<char*>(nullptr));
      _exit(127);
    }
    wait_threads(threads + 1);
  }
  bool wait_threads(size_t n) const {
    for (int i = 0; i < 400; ++i) {
      if (tids_of(pid).size() >= n) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return false;
  }
  void stop() {
    if (pid > 0) {
      kill(pid, SIGKILL);
      waitpid(pid, nullptr, 0);
      pid = -1;
    }
  }
  ~Victim() { stop(); }
};

}  // namespace knobs_test
