// Real-kernel tests (root): per-task slice/nice/policy on a live
// multi-threaded process read back with sched_getattr, threads born later,
// a real sysctl, yielding, a target that exits, and the CLI.
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <sys/wait.h>

#include <cstdio>

#include "knobs/knob_manager.h"
#include "knobs_test_util.h"
#include "subprocess.h"
#include "test_support.h"

namespace specact {
namespace {

using knobs_test::get_attr;
using knobs_test::read_text;
using knobs_test::TempDir;
using knobs_test::tids_of;
using knobs_test::Victim;
using Status = KnobResult::Status;

KnobsConfig real_config(const std::string& state) {
  KnobsConfig c;
  c.state_dir = state;
  c.min_interval_ms = 0;
  return c;
}

// The default slice a task without a custom one reports (probed, not assumed).
uint64_t default_slice_ns() {
  uint64_t v = 0;
  std::thread([&] { v = get_attr(static_cast<pid_t>(syscall(SYS_gettid))).runtime; }).join();
  return v;
}

TEST(KnobsKernel, SliceAndNiceOnLiveThreadsAndRestore) {
  SPECACT_REQUIRE_ROOT_BPF();
  TempDir state("kstate");
  Victim v(KNOBS_VICTIM, 4);
  auto tids = tids_of(v.pid);
  ASSERT_EQ(tids.size(), 5u);
  uint64_t def = get_attr(v.pid).runtime;
  ASSERT_GT(def, 0u);
  TargetResolver target(TargetSpec::pid(v.pid));
  target.validate();
  {
    KnobManager m(real_config(state.path), &target);
    auto cat = m.catalogue();
    for (const auto& k : cat)
      if (k.name == "task.slice_us") {
        EXPECT_TRUE(k.available) << k.unavailable_reason;
        EXPECT_EQ(k.current, static_cast<int64_t>((def + 500) / 1000));
      }
    auto r = m.apply({{"task.slice_us", 300}, {"task.nice", 5}}, "test");
    ASSERT_TRUE(r.all_ok()) << r.to_json().dump();
    for (const auto& x : r.results) EXPECT_EQ(x.tasks_written, 5u) << x.knob;
    for (pid_t t : tids) {
      auto a = get_attr(t);
      EXPECT_EQ(a.runtime, 300000u) << "tid " << t;
      EXPECT_EQ(a.nice, 5) << "tid " << t;
      EXPECT_EQ(a.policy, 0u);
    }
    EXPECT_EQ(m.read_current().at("task.slice_us"), 300);
    // Out of range: clamped to the kernel's 100 us floor, and says so.
    auto c = m.apply({{"task.slice_us", 10}}, "test");
    EXPECT_TRUE(c.results[0].clamped);
    EXPECT_EQ(c.results[0].read_back, 100);
    EXPECT_EQ(get_attr(tids[2]).runtime, 100000u);
    auto rep = m.restore_all();
    EXPECT_TRUE(rep.ok) << rep.to_text();
  }
  for (pid_t t : tids) {
    auto a = get_attr(t);
    EXPECT_EQ(a.runtime, def) << "tid " << t;
    EXPECT_EQ(a.nice, 0) << "tid " << t;
  }
}

// What the runtime uses instead of probing again after an apply.
TEST(KnobsKernel, InForceOfPerTaskKnobsEqualsAFreshProbe) {
  SPECACT_REQUIRE_ROOT_BPF();
  TempDir state("kforce");
  Victim v(KNOBS_VICTIM, 3);
  TargetResolver target(TargetSpec::pid(v.pid));
  target.validate();
  KnobManager m(real_config(state.path), &target);
  // The slice is clamped to its 100 us floor; the policy is already "other".
  Config desired = {{"task.slice_us", 10}, {"task.nice", 5}, {"task.policy", 0}};
  auto r = m.apply(desired, "t");
  ASSERT_TRUE(r.all_ok()) << r.to_json().dump();
  EXPECT_EQ(r.in_force(), (Config{{"task.slice_us", 100}, {"task.nice", 5}, {"task.policy", 0}}));
  Config probed;
  for (const auto& [k, val] : m.read_current())
    if (desired.count(k)) probed[k] = val;
  EXPECT_EQ(r.in_force(), probed);
  EXPECT_TRUE(m.restore_all().ok);
}

TEST(KnobsKernel, PolicyBatchAndIdleRestoredToOther) {
  SPECACT_REQUIRE_ROOT_BPF();
  TempDir state("kpol");
  Victim v(KNOBS_VICTIM, 2);
  TargetResolver target(TargetSpec::pid(v.pid));
  target.validate();
  KnobManager m(real_config(state.path), &target);
  ASSERT_TRUE(m.apply({{"task.policy", 1}}, "t").all_ok());
  for (pid_t t : tids_of(v.pid)) EXPECT_EQ(get_attr(t).policy, unsigned{SCHED_BATCH});
  // IDLE ignores nice/slice in sched_setattr: they must still land.
  auto r = m.apply({{"task.policy", 2}, {"task.slice_us", 700}, {"task.nice", 3}}, "t");
  ASSERT_TRUE(r.all_ok()) << r.to_json().dump();
  for (pid_t t : tids_of(v.pid)) {
    auto a = get_attr(t);
    EXPECT_EQ(a.policy, unsigned{SCHED_IDLE});
    EXPECT_EQ(a.runtime, 700000u);
    EXPECT_EQ(a.nice, 3);
  }
  EXPECT_TRUE(m.restore_all().ok);
  for (pid_t t : tids_of(v.pid)) {
    auto a = get_attr(t);
    EXPECT_EQ(a.policy, unsigned{SCHED_OTHER});
    EXPECT_EQ(a.runtime, default_slice_ns());
    EXPECT_EQ(a.nice, 0);
  }
}

TEST(KnobsKernel, ThreadsBornLaterGetTheSettingAndAreRestored) {
  SPECACT_REQUIRE_ROOT_BPF();
  TempDir state("knew");
  Victim v(KNOBS_VICTIM, 2);
  TargetResolver target(TargetSpec::pid(v.pid));
  target.validate();
  uint64_t def = default_slice_ns();
  KnobManager m(real_config(state.path), &target);
  ASSERT_TRUE(m.apply({{"task.slice_us", 2500}, {"task.nice", 4}}, "t").all_ok());
  auto before = tids_of(v.pid);
  kill(v.pid, SIGUSR1);  // a thread that resets itself to the defaults
  ASSERT_TRUE(v.wait_threads(before.size() + 1));
  pid_t fresh = 0;
  for (pid_t t : tids_of(v.pid))
    if (!std::count(before.begin(), before.end(), t)) fresh = t;
  ASSERT_NE(fresh, 0);
  for (int i = 0; i < 100 && get_attr(fresh).runtime != def; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  ASSERT_EQ(get_attr(fresh).runtime, def) << "victim thread did not reset itself";
  EXPECT_EQ(m.reapply_to_new_threads(), 1u);
  EXPECT_EQ(get_attr(fresh).runtime, 2500000u);
  EXPECT_EQ(get_attr(fresh).nice, 4);
  EXPECT_EQ(m.reapply_to_new_threads(), 0u);  // nothing new
  // A thread that inherited our values: managed, and restored to the original.
  kill(v.pid, SIGUSR2);
  ASSERT_TRUE(v.wait_threads(before.size() + 2));
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_EQ(m.reapply_to_new_threads(), 1u);
  EXPECT_TRUE(m.check_yielded().empty());
  auto rep = m.restore_all();
  EXPECT_TRUE(rep.ok) << rep.to_text();
  for (pid_t t : tids_of(v.pid)) {
    EXPECT_EQ(get_attr(t).runtime, def) << "tid " << t;
    EXPECT_EQ(get_attr(t).nice, 0) << "tid " << t;
  }
}

TEST(KnobsKernel, RealSysctlWrittenAndRestored) {
  SPECACT_REQUIRE_ROOT_BPF();
  TempDir state("ksys");
  const std::string path = "/proc/sys/kernel/sched_rr_timeslice_ms";
  std::string original = read_text(path);
  ASSERT_FALSE(original.empty());
  knobs_test::RestoreFileGuard guard(path);
  int64_t want = original == "50" ? 60 : 50;
  {
    KnobManager m(real_config(state.path), nullptr);
    auto r = m.apply({{"sysctl.kernel.sched_rr_timeslice_ms", want}}, "t");
    ASSERT_TRUE(r.all_ok()) << r.to_json().dump();
    EXPECT_EQ(r.results[0].read_back, want);
    EXPECT_EQ(read_text(path), std::to_string(want));
  }  // restore on exit
  EXPECT_EQ(read_text(path), original);
}

TEST(KnobsKernel, OutsideReniceIsYieldedAndLeftAlone) {
  SPECACT_REQUIRE_ROOT_BPF();
  TempDir state("kyield");
  Victim v(KNOBS_VICTIM, 3);
  TargetResolver target(TargetSpec::pid(v.pid));
  target.validate();
  KnobManager m(real_config(state.path), &target);
  ASSERT_TRUE(m.apply({{"task.nice", 6}}, "t").all_ok());
  auto tids = tids_of(v.pid);
  ASSERT_EQ(setpriority(PRIO_PROCESS, static_cast<id_t>(tids[1]), -2), 0);  // the admin
  auto ev = m.check_yielded();
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0].knob, "task.nice");
  EXPECT_EQ(ev[0].found, "-2");
  EXPECT_EQ(m.apply({{"task.nice", 7}}, "t").results[0].status, Status::Yielded);
  EXPECT_TRUE(m.restore_all().ok);
  EXPECT_EQ(get_attr(tids[1]).nice, -2);  // admin's value kept
  EXPECT_EQ(get_attr(tids[0]).nice, 0);   // ours restored
  EXPECT_EQ(get_attr(tids[2]).nice, 0);
}

TEST(KnobsKernel, TargetExitsBeforeAndAfterApply) {
  SPECACT_REQUIRE_ROOT_BPF();
  TempDir state("kexit");
  auto cfg = real_config(state.path);
  cfg.restore_on_exit = false;
  {
    Victim v(KNOBS_VICTIM, 3);
    TargetResolver target(TargetSpec::pid(v.pid));
    target.validate();
    KnobManager m(cfg, &target);
    ASSERT_TRUE(m.apply({{"task.slice_us", 400}}, "t").all_ok());
    v.stop();  // dies with our setting journalled
    auto r = m.apply({{"task.slice_us", 800}}, "t");
    EXPECT_EQ(r.results[0].status, Status::Failed);
    EXPECT_NE(r.results[0].error.find("no live tasks"), std::string::npos) << r.results[0].error;
  }
  // Every tuned thread exited before the clean stop: the stop leaves no
  // journal behind (nothing a restore could act on), so restore has nothing
  // to do and says so.
  EXPECT_FALSE(knobs_test::fs::exists(state / "knobs-journal.json"));
  auto rep = restore_from_journal(state.path);
  EXPECT_TRUE(rep.ok) << rep.to_text();
  EXPECT_TRUE(rep.nothing_to_do) << rep.to_text();
  EXPECT_EQ(rep.count("failed"), 0u);
}

TEST(KnobsKernel, BackgroundSetTunedTargetUntouched) {
  SPECACT_REQUIRE_ROOT_BPF();
  TempDir state("kbg");
  Victim tgt(KNOBS_VICTIM, 2);
  Victim bg(KNOBS_VICTIM, 2);
  TargetResolver target(TargetSpec::pid(tgt.pid));
  target.validate();
  auto cfg = real_config(state.path);
  TargetSpec bgspec;
  bgspec.kind = TargetSpec::Kind::Pid;
  bgspec.pids = {bg.pid, tgt.pid};  // overlaps the target: the target must win
  cfg.background = bgspec;
  KnobManager m(cfg, &target);
  auto r = m.apply({{"background.nice", 10}, {"background.policy", 1}}, "t");
  ASSERT_TRUE(r.all_ok()) << r.to_json().dump();
  for (pid_t t : tids_of(bg.pid)) {
    EXPECT_EQ(get_attr(t).nice, 10);
    EXPECT_EQ(get_attr(t).policy, unsigned{SCHED_BATCH});
  }
  for (pid_t t : tids_of(tgt.pid)) {
    EXPECT_EQ(get_attr(t).nice, 0);
    EXPECT_EQ(get_attr(t).policy, unsigned{SCHED_OTHER});
  }
  EXPECT_TRUE(m.restore_all().ok);
  for (pid_t t : tids_of(bg.pid)) {
    EXPECT_EQ(get_attr(t).nice, 0);
    EXPECT_EQ(get_attr(t).policy, unsigned{SCHED_OTHER});
  }
}

TEST(KnobsKernel, ThreadBornAfterCrashThatInheritedOurSliceIsRestored) {
  SPECACT_REQUIRE_ROOT_BPF();
  TempDir state("kinh");
  Victim v(KNOBS_VICTIM, 2);
  TargetResolver target(TargetSpec::pid(v.pid));
  target.validate();
  uint64_t def = default_slice_ns();
  auto cfg = real_config(state.path);
  cfg.restore_on_exit = false;  // stands in for kill -9: the journal stays
  {
    KnobManager m(cfg, &target);
    ASSERT_TRUE(m.apply({{"task.slice_us", 3000}}, "t").all_ok());
  }
  size_t before = tids_of(v.pid).size();
  kill(v.pid, SIGUSR2);  // born after the last journal update, inherits 3000 us
  ASSERT_TRUE(v.wait_threads(before + 1));
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  auto rep = restore_from_journal(state.path);
  EXPECT_TRUE(rep.ok) << rep.to_text();
  bool born_later = false;
  for (const auto& i : rep.items)
    born_later = born_later ||
                 (i.instance.find("born later") != std::string::npos && i.outcome == "restored");
  EXPECT_TRUE(born_later) << rep.to_text();
  for (pid_t t : tids_of(v.pid)) EXPECT_EQ(get_attr(t).runtime, def) << "tid " << t;
}

TEST(KnobsKernel, ThreadAlreadyAtTheValueKeepsItsOwnSettingOnRestore) {
  SPECACT_REQUIRE_ROOT_BPF();
  TempDir state("kown");
  Victim v(KNOBS_VICTIM, 2);
  auto tids = tids_of(v.pid);
  ASSERT_EQ(setpriority(PRIO_PROCESS, static_cast<id_t>(tids[1]), 4), 0);  // the app's own choice
  TargetResolver target(TargetSpec::pid(v.pid));
  target.validate();
  {
    KnobManager m(real_config(state.path), &target);
    ASSERT_TRUE(m.apply({{"task.nice", 4}}, "t").all_ok());
    for (pid_t t : tids) EXPECT_EQ(get_attr(t).nice, 4);
  }  // restore on exit: the thread that had 4 already must not be reset to 0
  EXPECT_EQ(get_attr(tids[0]).nice, 0);
  EXPECT_EQ(get_attr(tids[1]).nice, 4);  // it had 4 before specact: not "ours"
  EXPECT_EQ(get_attr(tids[2]).nice, 0);
}

TEST(KnobsKernel, TargetExitsMidApply) {
  SPECACT_REQUIRE_ROOT_BPF();
  TempDir state("kmid");
  Victim v(KNOBS_VICTIM, 5);
  TargetResolver target(TargetSpec::pid(v.pid));
  target.validate();
  auto cfg = real_config(state.path);
  cfg.restore_on_exit = false;
  bool killed = false;
  cfg.on_step = [&](std::string_view step) {
    if (!killed && step.rfind("wrote-task:", 0) == 0) {
      killed = true;
      v.stop();  // SIGKILL + reap: the remaining threads are gone
    }
  };
  {
    KnobManager m(cfg, &target);
    auto r = m.apply({{"task.slice_us", 600}}, "t");
    ASSERT_TRUE(killed);
    EXPECT_EQ(r.results[0].status, Status::Applied) << r.results[0].error;
    EXPECT_EQ(r.results[0].tasks_written, 1u);
    EXPECT_EQ(r.results[0].tasks_gone, 5u);
    EXPECT_TRUE(m.check_yielded().empty());  // dead threads are not "changed by someone"
  }
  auto rep = restore_from_journal(state.path);
  EXPECT_TRUE(rep.ok) << rep.to_text();
  EXPECT_EQ(rep.count("failed"), 0u);
}

TEST(KnobsCli, KnobsJsonShowsHonestAvailability) {
  SPECACT_REQUIRE_ROOT_BPF();
  Victim v(KNOBS_VICTIM, 1);
  std::string out;
  ASSERT_EQ(specact::testing::run_shell(
                std::string(KNOBS_CLI) + " knobs --json --pid " + std::to_string(v.pid), &out),
            0);
  auto j = nlohmann::json::parse(out);
  ASSERT_TRUE(j["knobs"].is_array());
  std::map<std::string, nlohmann::json> by;
  for (const auto& k : j["knobs"]) by[k["name"]] = k;
  EXPECT_TRUE(by.at("task.slice_us")["available"].get<bool>());
  EXPECT_TRUE(by.at("task.slice_us")["current"].is_number_integer());
  EXPECT_FALSE(by.at("sched.latency_ns")["available"].get<bool>());
  FILE* f = fopen("/sys/kernel/debug/sched/base_slice_ns", "r");
  bool locked = f == nullptr && errno == EPERM;
  if (f) fclose(f);
  if (locked) {
    EXPECT_NE(by.at("sched.base_slice_ns")["unavailable_reason"].get<std::string>().find(
                  "kernel lockdown"),
              std::string::npos);
  }
  ASSERT_EQ(specact::testing::run_shell(
                std::string(KNOBS_CLI) + " knobs --pid " + std::to_string(v.pid), &out),
            0);
  EXPECT_NE(out.find("task.slice_us"), std::string::npos);
  EXPECT_NE(out.find("AVAILABLE"), std::string::npos);
}

TEST(KnobsCli, RestoreExitCodesAndErrors) {
  TempDir state("cli");
  std::string out;
  EXPECT_EQ(specact::testing::run_shell(
                std::string(KNOBS_CLI) + " restore --state-dir " + state.path, &out),
            0);
  EXPECT_NE(out.find("nothing to restore"), std::string::npos) << out;
  knobs_test::write_text(state / "knobs-journal.json", "{\"format\": tru");
  EXPECT_EQ(specact::testing::run_shell(
                std::string(KNOBS_CLI) + " restore --json --state-dir " + state.path, &out),
            1);
  auto j = nlohmann::json::parse(out);
  EXPECT_FALSE(j["ok"].get<bool>());
  EXPECT_EQ(specact::testing::run_shell(
                std::string(KNOBS_CLI) + " restore --state-dir " + state.path, &out),
            0);
  EXPECT_EQ(specact::testing::run_shell(std::string(KNOBS_CLI) + " restore --bogus 2>&1", &out), 2);
  EXPECT_NE(out.find("unknown or incomplete option"), std::string::npos) << out;
  EXPECT_EQ(specact::testing::run_shell(std::string(KNOBS_CLI) + " restore --help", &out), 0);
  EXPECT_NE(out.find("Exit status"), std::string::npos);
  EXPECT_EQ(specact::testing::run_shell(std::string(KNOBS_CLI) + " knobs --help", &out), 0);
  EXPECT_NE(out.find("Usage: specactd knobs"), std::string::npos);
  EXPECT_EQ(specact::testing::run_shell(std::string(KNOBS_CLI) + " knobs --pid abc 2>&1", &out), 2);
  // 2^32 + 1 would be pid 1 after a pid_t cast.
  EXPECT_EQ(
      specact::testing::run_shell(std::string(KNOBS_CLI) + " knobs --pid 4294967297 2>&1", &out),
      2);
  EXPECT_NE(out.find("--pid expects a positive pid"), std::string::npos) << out;
  knobs_test::write_text(state / "bad.json", "{\"knobs\": {\"min_interval_ms\": \"x\"}}");
  EXPECT_EQ(specact::testing::run_shell(
                std::string(KNOBS_CLI) + " knobs --config " + state.path + "/bad.json 2>&1", &out),
            1);
  EXPECT_NE(out.find("knobs.min_interval_ms: expected an integer"), std::string::npos) << out;
}

}  // namespace
}  // namespace specact
