// The BPF sampler on the real kernel (root + BTF).
#include "metrics/sampler.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <thread>

#include "common/clock.h"
#include "subprocess.h"
#include "test_support.h"

using specact::LatencySampler;
using specact::SteadyClock;
using specact::TargetResolver;
using specact::TargetSpec;
using specact::testing::Subprocess;

namespace {

void sleepy_loop(int iterations) {
  for (int i = 0; i < iterations; ++i) {
    timespec ts{0, 1'000'000};
    nanosleep(&ts, nullptr);
  }
}

// A cgroup v2 directory for one test. remove() stops every process left in
// it by pid (a shell's children can outlive the shell) and deletes it.
class TestCgroup {
 public:
  explicit TestCgroup(const std::string& name)
      : path_(std::filesystem::path(specact::cgroup2_mount()) /
              (name + "-" + std::to_string(getpid()))) {
    std::filesystem::create_directory(path_);
  }
  void add(pid_t pid) const { std::ofstream(path_ / "cgroup.procs") << pid << "\n"; }
  TargetSpec spec() const {
    TargetSpec s;
    s.kind = TargetSpec::Kind::Cgroup;
    s.cgroup = path_.string();
    return s;
  }
  bool remove() const {
    std::error_code ec;
    for (int i = 0; i < 50 && std::filesystem::exists(path_, ec); ++i) {
      std::ifstream procs(path_ / "cgroup.procs");
      for (pid_t p; procs >> p;) kill(p, SIGKILL);
      rmdir(path_.c_str());
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return !std::filesystem::exists(path_, ec);
  }
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

}  // namespace

// Threads born after the sampler attached are measured: targets are whole
// thread groups, not thread ids.
TEST(LatencySampler, MeasuresThreadsCreatedLater) {
  SPECACT_REQUIRE_ROOT_BPF();
  TargetResolver target(TargetSpec::pid(getpid()));
  target.validate();
  LatencySampler sampler(target);
  SteadyClock clock;
  sampler.close_window(clock.now_ns());
  std::thread late(sleepy_loop, 200);
  late.join();
  auto w = sampler.close_window(clock.now_ns());
  EXPECT_EQ(w.index, 1u);
  EXPECT_GE(w.service.count, 150u);
  EXPECT_GE(w.nvcsw, 150u);
  EXPECT_GT(w.runq.count, 0u);
  // wakeup -> next block is only the loop's own work here: far below the 1 ms sleep.
  EXPECT_LT(w.service.p50_us, 1000.0);
}

// A busy non-target must not show up in the target's numbers.
TEST(LatencySampler, IgnoresNonTargets) {
  SPECACT_REQUIRE_ROOT_BPF();
  Subprocess idle({"/bin/sleep", "30"});
  ASSERT_GT(idle.pid(), 0);
  TargetResolver target(TargetSpec::pid(idle.pid()));
  target.validate();
  LatencySampler sampler(target);
  SteadyClock clock;
  sampler.close_window(clock.now_ns());
  std::thread noise(sleepy_loop, 300);  // this process switches a lot, but is not the target
  noise.join();
  auto w = sampler.close_window(clock.now_ns());
  EXPECT_LE(w.service.count + w.runq.count, 2u);
  EXPECT_LE(w.nvcsw, 2u);
  EXPECT_TRUE(w.low_confidence);
}

// cgroup targets include processes forked into the cgroup after attach, via
// the BPF fork hook, before user space rescans.
TEST(LatencySampler, CgroupTargetFollowsForks) {
  SPECACT_REQUIRE_ROOT_BPF();
  std::string root = specact::cgroup2_mount();
  ASSERT_FALSE(root.empty()) << "no cgroup2 mount on this machine";
  TestCgroup cg("specact-test");
  // The shell waits, then forks the workload: that fork happens after attach.
  Subprocess sh({"/bin/sh", "-c",
                 std::string("sleep 0.4; ") + WORKLOAD_BIN +
                     " --hogs 0 --period-us 1000 --work-us 50 --duration-s 2"});
  ASSERT_GT(sh.pid(), 0);
  cg.add(sh.pid());
  {
    TargetResolver target(cg.spec());
    target.validate();
    LatencySampler sampler(target);
    EXPECT_GE(sampler.refresh_targets(), 1u);
    SteadyClock clock;
    sampler.close_window(clock.now_ns());
    std::this_thread::sleep_for(std::chrono::milliseconds(1400));
    auto w = sampler.close_window(clock.now_ns());
    EXPECT_GE(w.service.count, 500u) << "the workload in the cgroup was not measured";
  }
  sh.stop();
  EXPECT_TRUE(cg.remove()) << "test cgroup left behind: " << cg.path();
}

// A cgroup target that forks many short-lived children: the fork hook adds
// each to the BPF target map; once exited they must leave it again, or a
// long-running daemon would fill the map.
TEST(LatencySampler, ExitedForkedChildrenLeaveTheTargetMap) {
  SPECACT_REQUIRE_ROOT_BPF();
  std::string root = specact::cgroup2_mount();
  ASSERT_FALSE(root.empty());
  TestCgroup cg("specact-test-forks");
  Subprocess sh({"/bin/sh", "-c", "sleep 0.3; for i in $(seq 40); do /bin/true; done; sleep 30"});
  ASSERT_GT(sh.pid(), 0);
  cg.add(sh.pid());
  {
    TargetResolver target(cg.spec());
    target.validate();
    LatencySampler sampler(target);
    std::this_thread::sleep_for(std::chrono::milliseconds(1500));  // the forks happen now
    size_t grown = sampler.target_map_entries();
    EXPECT_GE(grown, 20u) << "the fork hook did not add the children";
    sampler.refresh_targets();
    sampler.refresh_targets();
    EXPECT_LE(sampler.target_map_entries(), 3u);  // sh and its sleep, at most
  }
  sh.stop();
  // sh's `sleep 30` outlives sh: remove() stops it by pid.
  EXPECT_TRUE(cg.remove()) << "test cgroup left behind: " << cg.path();
}
