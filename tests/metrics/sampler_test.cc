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
  namespace fs = std::filesystem;
  std::string root = specact::cgroup2_mount();
  ASSERT_FALSE(root.empty()) << "no cgroup2 mount on this machine";
  fs::path cg = fs::path(root) / ("specact-test-" + std::to_string(getpid()));
  fs::create_directory(cg);
  // The shell waits, then forks the workload: that fork happens after attach.
  Subprocess sh({"/bin/sh", "-c",
                 std::string("sleep 0.4; ") + WORKLOAD_BIN +
                     " --hogs 0 --period-us 1000 --work-us 50 --duration-s 2"});
  ASSERT_GT(sh.pid(), 0);
  std::ofstream(cg / "cgroup.procs") << sh.pid() << "\n";
  {
    TargetSpec spec;
    spec.kind = TargetSpec::Kind::Cgroup;
    spec.cgroup = cg.string();
    TargetResolver target(spec);
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
  std::error_code ec;
  for (int i = 0; i < 50 && fs::exists(cg, ec); ++i) {
    rmdir(cg.c_str());
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_FALSE(fs::exists(cg, ec));
}

// A cgroup target that forks many short-lived children: the fork hook adds
// each to the BPF target map; once exited they must leave it again, or a
// long-running daemon would fill the map.
TEST(LatencySampler, ExitedForkedChildrenLeaveTheTargetMap) {
  SPECACT_REQUIRE_ROOT_BPF();
  namespace fs = std::filesystem;
  std::string root = specact::cgroup2_mount();
  ASSERT_FALSE(root.empty());
  fs::path cg = fs::path(root) / ("specact-test-forks-" + std::to_string(getpid()));
  fs::create_directory(cg);
  Subprocess sh({"/bin/sh", "-c", "sleep 0.3; for i in $(seq 40); do /bin/true; done; sleep 30"});
  ASSERT_GT(sh.pid(), 0);
  std::ofstream(cg / "cgroup.procs") << sh.pid() << "\n";
  {
    TargetSpec spec;
    spec.kind = TargetSpec::Kind::Cgroup;
    spec.cgroup = cg.string();
    TargetResolver target(spec);
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
  // sh's `sleep 30` outlives sh: stop every process left in the cgroup by pid.
  std::error_code ec;
  for (int i = 0; i < 50 && fs::exists(cg, ec); ++i) {
    std::ifstream procs(cg / "cgroup.procs");
    for (pid_t p; procs >> p;) kill(p, SIGKILL);
    rmdir(cg.c_str());
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_FALSE(fs::exists(cg, ec)) << "test cgroup left behind: " << cg;
}
