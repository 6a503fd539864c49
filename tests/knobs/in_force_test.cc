// ApplyResult::in_force(): what is really in force after an apply, as read
// back, so that the runtime need not probe every knob again. Checked against
// read_current(), which probes the (fake) kernel afresh, for every outcome an
// apply can have.
#include <gtest/gtest.h>

#include <cerrno>

#include "common/clock.h"
#include "knobs/knob_manager.h"
#include "knobs_test_util.h"

namespace specact {
namespace {

using knobs_test::read_text;
using knobs_test::write_text;
using Status = KnobResult::Status;

// What read_current() says about the knobs `desired` names.
Config truth(KnobManager& m, const Config& desired) {
  Config out;
  for (const auto& [k, v] : m.read_current())
    if (desired.count(k)) out[k] = v;
  return out;
}

KnobResult result(const std::string& knob, Status s, std::optional<int64_t> read_back,
                  std::optional<int64_t> written = std::nullopt) {
  KnobResult r;
  r.knob = knob;
  r.status = s;
  r.read_back = read_back;
  r.written = written;
  return r;
}

TEST(InForce, ReadBackValuesOnlyAndNeverWhatWasMerelyAsked) {
  ApplyResult a;
  a.results = {
      result("applied", Status::Applied, 30, 30),
      result("clamped-by-kernel", Status::Applied, 100, 90),
      result("unchanged", Status::NoChange, 1), result("rate-limited", Status::RateLimited, 7, 9),
      result("failed-write", Status::Failed, 32, 8), result("yielded", Status::Yielded, 12, 16),
      result("rejected", Status::Rejected, std::nullopt),
      result("unavailable", Status::Unavailable, std::nullopt, 5),
      // Written, but every thread exited before it could be read back.
      result("vanished", Status::Applied, std::nullopt, 300)};
  Config want = {{"applied", 30},
                 {"clamped-by-kernel", 100},
                 {"unchanged", 1},
                 {"rate-limited", 7},
                 {"failed-write", 32}};
  EXPECT_EQ(a.in_force(), want);
}

TEST(InForce, EqualsAFreshProbeAfterAppliedClampedAndUnchangedKnobs) {
  knobs_test::FakeKernel f;
  KnobManager m(f.config(), nullptr);
  Config desired = {{"sysctl.kernel.sched_rr_timeslice_ms", 30},
                    {"sysctl.kernel.sched_autogroup_enabled", -5},  // clamped to 0
                    {"sysctl.kernel.timer_migration", 1},           // already 1
                    {"sched.preempt", 3},
                    {"sysctl.kernel.numa_balancing", 1},  // not present: unavailable
                    {"sysctl.kernel.no_such_thing", 1}};  // unknown
  ApplyResult r = m.apply(desired, "test");
  Config want = {{"sysctl.kernel.sched_rr_timeslice_ms", 30},
                 {"sysctl.kernel.sched_autogroup_enabled", 0},
                 {"sysctl.kernel.timer_migration", 1},
                 {"sched.preempt", 3}};
  EXPECT_EQ(r.in_force(), want) << r.to_json().dump();
  EXPECT_EQ(r.in_force(), truth(m, desired));
}

TEST(InForce, AFailedWriteReportsWhatStayedInForce) {
  knobs_test::FakeKernel f;
  auto cfg = f.config();
  cfg.fault = [](std::string_view op, const std::string& path) {
    return op == "write" && path.find("nr_migrate") != std::string::npos ? EINVAL : 0;
  };
  KnobManager m(cfg, nullptr);
  Config desired = {{"sched.nr_migrate", 8}, {"sched.migration_cost_ns", 100000}};
  ApplyResult r = m.apply(desired, "test");
  ASSERT_EQ(r.results.size(), 2u);
  EXPECT_EQ(r.results[1].status, Status::Failed);  // sched.nr_migrate (map order)
  Config want = {{"sched.nr_migrate", 32}, {"sched.migration_cost_ns", 100000}};
  EXPECT_EQ(r.in_force(), want) << r.to_json().dump();
  EXPECT_EQ(r.in_force(), truth(m, desired));
}

TEST(InForce, NothingWrittenWhenTheJournalFailsSoTheOldValuesAreInForce) {
  knobs_test::FakeKernel f;
  auto cfg = f.config();
  cfg.fault = [](std::string_view op, const std::string&) { return op == "journal" ? ENOSPC : 0; };
  KnobManager m(cfg, nullptr);
  Config desired = {{"sched.nr_migrate", 8}, {"sysctl.kernel.timer_migration", 0}};
  ApplyResult r = m.apply(desired, "test");
  for (const auto& x : r.results) EXPECT_EQ(x.status, Status::Failed) << x.knob;
  Config want = {{"sched.nr_migrate", 32}, {"sysctl.kernel.timer_migration", 1}};
  EXPECT_EQ(r.in_force(), want);
  EXPECT_EQ(r.in_force(), truth(m, desired));
}

TEST(InForce, RateLimitedAndYieldedKnobs) {
  knobs_test::FakeKernel f;
  auto cfg = f.config();
  cfg.min_interval_ms = 200;
  ManualClock clock(1'000'000'000);
  KnobManager m(cfg, nullptr, &clock);
  ASSERT_TRUE(m.apply({{"sched.nr_migrate", 8}, {"sysctl.kernel.sched_rr_timeslice_ms", 30}}, "t")
                  .all_ok());
  clock.advance_ns(50'000'000);
  write_text(f.sys + "/kernel/sched_rr_timeslice_ms", "77\n");  // the admin
  Config desired = {{"sched.nr_migrate", 16}, {"sysctl.kernel.sched_rr_timeslice_ms", 20}};
  ApplyResult r = m.apply(desired, "t");
  ASSERT_EQ(r.results.size(), 2u);
  EXPECT_EQ(r.results[0].status, Status::RateLimited);
  EXPECT_EQ(r.results[1].status, Status::Yielded);
  // The rate-limited knob keeps the value written before; the yielded one is
  // no longer specact's to report.
  EXPECT_EQ(r.in_force(), (Config{{"sched.nr_migrate", 8}}));
  EXPECT_EQ(r.in_force(), truth(m, desired));
  EXPECT_EQ(read_text(f.sys + "/kernel/sched_rr_timeslice_ms"), "77");
}

TEST(InForce, CgroupCpuMaxIsReadBackNormalised) {
  knobs_test::FakeKernel f;
  TargetResolver target = f.app_target();
  KnobManager m(f.config(), &target);
  Config desired = {{"cgroup.target.cpu.max", 50000}, {"cgroup.target.cpu.weight", 100}};
  ApplyResult r = m.apply(desired, "t");
  ASSERT_TRUE(r.all_ok()) << r.to_json().dump();
  EXPECT_EQ(r.in_force(), desired);
  EXPECT_EQ(r.in_force(), truth(m, desired));
}

}  // namespace
}  // namespace specact
