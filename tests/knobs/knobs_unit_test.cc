// Knobs against fake /proc/sys, debugfs and cgroup trees in temp dirs: the
// write gate, the journal and restore, config parsing, bad input and faults.
#include <gtest/gtest.h>
#include <sys/mount.h>
#include <sys/stat.h>

#include <cerrno>

#include "common/clock.h"
#include "knobs/kernel_files.h"
#include "knobs/knob_manager.h"
#include "knobs_test_util.h"
#include "subprocess.h"
#include "test_support.h"

namespace specact {
namespace {

using knobs_test::read_text;
using knobs_test::TempDir;
using knobs_test::write_text;
using Status = KnobResult::Status;

using Fake = knobs_test::FakeKernel;

const KnobInfo* find(const std::vector<KnobInfo>& cat, const std::string& name) {
  for (const auto& k : cat)
    if (k.name == name) return &k;
  return nullptr;
}

const KnobResult& only(const ApplyResult& r) {
  EXPECT_EQ(r.results.size(), 1u);
  return r.results.front();
}

TEST(KnobsCatalogue, FakeSysctlAndDebugfsProbedHonestly) {
  Fake f;
  KnobManager m(f.config(), nullptr);
  auto cat = m.catalogue();
  const KnobInfo* ag = find(cat, "sysctl.kernel.sched_autogroup_enabled");
  ASSERT_NE(ag, nullptr);
  EXPECT_TRUE(ag->available) << ag->unavailable_reason;
  EXPECT_EQ(ag->current, 1);
  const KnobInfo* numa = find(cat, "sysctl.kernel.numa_balancing");
  ASSERT_NE(numa, nullptr);
  EXPECT_FALSE(numa->available);
  EXPECT_NE(numa->unavailable_reason.find("not present"), std::string::npos);
  const KnobInfo* preempt = find(cat, "sched.preempt");
  ASSERT_NE(preempt, nullptr);
  EXPECT_TRUE(preempt->available) << preempt->unavailable_reason;
  EXPECT_EQ(preempt->current, 2);  // "(full)"
  const KnobInfo* base = find(cat, "sched.base_slice_ns");
  ASSERT_NE(base, nullptr);
  EXPECT_EQ(base->current, 700000);
  for (const char* cfs :
       {"sched.min_granularity_ns", "sched.latency_ns", "sched.wakeup_granularity_ns"}) {
    const KnobInfo* k = find(cat, cfs);
    ASSERT_NE(k, nullptr) << cfs;
    EXPECT_FALSE(k->available);
    EXPECT_NE(k->unavailable_reason.find("removed in Linux 6.6"), std::string::npos);
  }
  for (const auto& k : cat) EXPECT_FALSE(k.description.empty()) << k.name;
  // Nothing probed may leave a journal behind.
  EXPECT_FALSE(knobs_test::fs::exists(f.journal()));
}

TEST(KnobsCatalogue, CfsNamesOnOlderKernels) {
  Fake f;
  write_text(f.dbg + "/min_granularity_ns", "3000000\n");
  write_text(f.sys + "/kernel/sched_latency_ns", "24000000\n");
  auto cfg = f.config();
  cfg.kernel_release = "6.1.0-13-amd64";
  auto cat = KnobManager(cfg, nullptr).catalogue();
  EXPECT_TRUE(find(cat, "sched.min_granularity_ns")->available);
  EXPECT_EQ(find(cat, "sched.min_granularity_ns")->current, 3000000);
  EXPECT_FALSE(find(cat, "sched.base_slice_ns")->available);
  EXPECT_NE(find(cat, "sched.base_slice_ns")->unavailable_reason.find("6.6"), std::string::npos);
  cfg.kernel_release = "5.10.0";  // before 5.13 the CFS knobs were sysctls
  cat = KnobManager(cfg, nullptr).catalogue();
  EXPECT_TRUE(find(cat, "sched.latency_ns")->available);
  EXPECT_EQ(find(cat, "sched.latency_ns")->current, 24000000);
}

TEST(KnobsCatalogue, InjectedEpermIsReportedAsLockdown) {
  Fake f;
  auto cfg = f.config();
  cfg.fault = [](std::string_view op, const std::string& path) {
    return op == "read" && path.find("/dbg/") != std::string::npos ? EPERM : 0;
  };
  KnobManager m(cfg, nullptr);
  auto cat = m.catalogue();
  const KnobInfo* k = find(cat, "sched.base_slice_ns");
  EXPECT_FALSE(k->available);
  EXPECT_NE(k->unavailable_reason.find("kernel lockdown (EPERM"), std::string::npos);
  auto r = m.apply({{"sched.base_slice_ns", 1000000}}, "test");
  EXPECT_EQ(only(r).status, Status::Unavailable);
  EXPECT_EQ(read_text(f.dbg + "/base_slice_ns"), "700000");
}

TEST(KnobsCatalogue, RealDebugfsProbedHonestly) {
  // Locked down (EPERM) on the development machines; whatever it is here, the
  // catalogue must say the same thing the kernel says.
  std::string probe;
  int err = knobs::read_file(knobs::KernelRoots::from(KnobsConfig{}),
                             "/sys/kernel/debug/sched/base_slice_ns", &probe, nullptr);
  TempDir state("lock");  // never written: catalogue() writes nothing
  KnobsConfig cfg;
  cfg.state_dir = state.path;
  auto cat = KnobManager(cfg, nullptr).catalogue();
  const KnobInfo* k = find(cat, "sched.base_slice_ns");
  ASSERT_NE(k, nullptr);
  if (err == EPERM) {
    EXPECT_FALSE(k->available);
    EXPECT_NE(k->unavailable_reason.find("kernel lockdown (EPERM"), std::string::npos)
        << k->unavailable_reason;
  } else if (err == 0 && geteuid() == 0) {
    EXPECT_TRUE(k->available) << k->unavailable_reason;
    EXPECT_EQ(k->current, std::stoll(probe));
  } else {
    EXPECT_FALSE(k->available);
    EXPECT_FALSE(k->unavailable_reason.empty());
  }
  EXPECT_FALSE(knobs_test::fs::exists(state / "knobs-journal.json"));
}

TEST(KnobsApply, SysctlWrittenJournalledAndRestored) {
  Fake f;
  KnobManager m(f.config(), nullptr);
  auto r = m.apply({{"sysctl.kernel.sched_rr_timeslice_ms", 30}}, "test");
  ASSERT_EQ(only(r).status, Status::Applied) << only(r).error;
  EXPECT_EQ(only(r).read_back, 30);
  EXPECT_EQ(read_text(f.sys + "/kernel/sched_rr_timeslice_ms"), "30");
  // The journal holds the original, durably, in the versioned format.
  auto j = nlohmann::json::parse(read_text(f.journal()));
  EXPECT_EQ(j["format"], "specactd-knobs-journal");
  EXPECT_EQ(j["version"], 2);
  EXPECT_TRUE(j.contains("checksum"));
  ASSERT_EQ(j["files"].size(), 1u);
  EXPECT_EQ(j["files"][0]["original"], "100");
  EXPECT_EQ(m.read_current().at("sysctl.kernel.sched_rr_timeslice_ms"), 30);
  auto rep = m.restore_all();
  EXPECT_TRUE(rep.ok);
  EXPECT_EQ(rep.count("restored"), 1u);
  EXPECT_EQ(read_text(f.sys + "/kernel/sched_rr_timeslice_ms"), "100");
  EXPECT_FALSE(knobs_test::fs::exists(f.journal()));
  auto again = m.restore_all();  // twice is harmless
  EXPECT_TRUE(again.ok);
  EXPECT_TRUE(again.nothing_to_do);
}

TEST(KnobsApply, NoChangeWritesNothingAndJournalsNothing) {
  Fake f;
  KnobManager m(f.config(), nullptr);
  auto r = m.apply({{"sysctl.kernel.timer_migration", 1}}, "test");
  EXPECT_EQ(only(r).status, Status::NoChange);
  EXPECT_FALSE(knobs_test::fs::exists(f.journal()));
}

TEST(KnobsApply, OutOfRangeIsClampedAndReported) {
  Fake f;
  KnobManager m(f.config(), nullptr);
  auto r = m.apply({{"sysctl.kernel.sched_rr_timeslice_ms", 99999}}, "test");
  EXPECT_EQ(only(r).status, Status::Applied);
  EXPECT_TRUE(only(r).clamped);
  EXPECT_EQ(only(r).written, 1000);
  EXPECT_EQ(read_text(f.sys + "/kernel/sched_rr_timeslice_ms"), "1000");
  r = m.apply({{"sysctl.kernel.sched_autogroup_enabled", -5}}, "test");
  EXPECT_TRUE(only(r).clamped);
  EXPECT_EQ(read_text(f.sys + "/kernel/sched_autogroup_enabled"), "0");
}

TEST(KnobsApply, UnknownKnobAndBadEnumRejectedNothingWritten) {
  Fake f;
  KnobManager m(f.config(), nullptr);
  auto r =
      m.apply({{"sysctl.kernel.no_such_thing", 1}, {"sched.preempt", 9}, {"bogus", 0}}, "test");
  ASSERT_EQ(r.results.size(), 3u);
  for (const auto& x : r.results) {
    EXPECT_EQ(x.status, Status::Rejected) << x.knob;
    EXPECT_FALSE(x.error.empty());
  }
  EXPECT_FALSE(r.all_ok());
  EXPECT_EQ(read_text(f.dbg + "/preempt"), "none voluntary (full) lazy");
  EXPECT_FALSE(knobs_test::fs::exists(f.journal()));
}

TEST(KnobsApply, BracketEnumWrittenByName) {
  Fake f;
  KnobManager m(f.config(), nullptr);
  auto r = m.apply({{"sched.preempt", 3}}, "test");
  ASSERT_EQ(only(r).status, Status::Applied) << only(r).error;
  EXPECT_EQ(read_text(f.dbg + "/preempt"), "lazy");
  EXPECT_TRUE(m.restore_all().ok);
  EXPECT_EQ(read_text(f.dbg + "/preempt"), "full");
}

TEST(KnobsApply, AllowListIsTheOnlyWayIn) {
  Fake f;
  auto cfg = f.config();
  cfg.allow = {"sysctl.*"};
  cfg.deny = {"sysctl.kernel.timer_migration"};
  KnobManager m(cfg, nullptr);
  auto r = m.apply({{"sysctl.kernel.timer_migration", 0}, {"sched.nr_migrate", 8}}, "test");
  for (const auto& x : r.results) EXPECT_EQ(x.status, Status::Rejected) << x.knob;
  EXPECT_EQ(read_text(f.sys + "/kernel/timer_migration"), "1");
  EXPECT_EQ(read_text(f.dbg + "/nr_migrate"), "32");
  auto cat = m.catalogue();
  EXPECT_FALSE(find(cat, "sched.nr_migrate")->available);
  EXPECT_NE(find(cat, "sched.nr_migrate")->unavailable_reason.find("allow-list"),
            std::string::npos);
  EXPECT_TRUE(find(cat, "sysctl.kernel.sched_autogroup_enabled")->available);
}

TEST(KnobsApply, NarrowedRangeFromConfigClamps) {
  Fake f;
  auto cfg = KnobsConfig::from_json(
      {{"ranges", {{"sysctl.kernel.sched_rr_timeslice_ms", {{"min", 10}, {"max", 200}}}}}});
  cfg.state_dir = f.state;
  cfg.sys_root = f.sys;
  cfg.min_interval_ms = 0;
  KnobManager m(cfg, nullptr);
  EXPECT_EQ(find(m.catalogue(), "sysctl.kernel.sched_rr_timeslice_ms")->domain.max, 200);
  auto r = m.apply({{"sysctl.kernel.sched_rr_timeslice_ms", 500}}, "test");
  EXPECT_TRUE(only(r).clamped);
  EXPECT_EQ(read_text(f.sys + "/kernel/sched_rr_timeslice_ms"), "200");
}

TEST(KnobsApply, RateLimitPerKnob) {
  Fake f;
  auto cfg = f.config();
  cfg.min_interval_ms = 200;
  ManualClock clock(1'000'000'000);
  KnobManager m(cfg, nullptr, &clock);
  EXPECT_EQ(only(m.apply({{"sysctl.kernel.sched_rr_timeslice_ms", 30}}, "t")).status,
            Status::Applied);
  clock.advance_ns(50'000'000);
  auto r = m.apply({{"sysctl.kernel.sched_rr_timeslice_ms", 40}}, "t");
  EXPECT_EQ(only(r).status, Status::RateLimited);
  EXPECT_EQ(read_text(f.sys + "/kernel/sched_rr_timeslice_ms"), "30");
  // Other knobs are not held back by it.
  EXPECT_EQ(only(m.apply({{"sysctl.kernel.timer_migration", 0}}, "t")).status, Status::Applied);
  clock.advance_ns(200'000'000);
  EXPECT_EQ(only(m.apply({{"sysctl.kernel.sched_rr_timeslice_ms", 40}}, "t")).status,
            Status::Applied);
  EXPECT_EQ(read_text(f.sys + "/kernel/sched_rr_timeslice_ms"), "40");
  EXPECT_TRUE(m.restore_all().ok);
  EXPECT_EQ(read_text(f.sys + "/kernel/sched_rr_timeslice_ms"), "100");
  EXPECT_EQ(read_text(f.sys + "/kernel/timer_migration"), "1");
}

TEST(KnobsFaults, ReadOnlyProcSys) {
  Fake f;
  auto cfg = f.config();
  cfg.fault = [](std::string_view op, const std::string&) {
    return op == "probe-write" || op == "write" ? EROFS : 0;
  };
  KnobManager m(cfg, nullptr);
  auto cat = m.catalogue();
  auto k = find(cat, "sysctl.kernel.timer_migration");
  EXPECT_FALSE(k->available);
  EXPECT_NE(k->unavailable_reason.find("read-only"), std::string::npos) << k->unavailable_reason;
  auto r = m.apply({{"sysctl.kernel.timer_migration", 0}}, "t");
  EXPECT_EQ(only(r).status, Status::Unavailable);
  EXPECT_EQ(read_text(f.sys + "/kernel/timer_migration"), "1");
}

TEST(KnobsFaults, WriteFailureAfterJournalLeavesValueAndRestoreIsClean) {
  Fake f;
  auto cfg = f.config();
  cfg.fault = [](std::string_view op, const std::string&) { return op == "write" ? EINVAL : 0; };
  KnobManager m(cfg, nullptr);
  auto r = m.apply({{"sysctl.kernel.timer_migration", 0}}, "t");
  EXPECT_EQ(only(r).status, Status::Failed);
  EXPECT_NE(only(r).error.find("EINVAL"), std::string::npos);
  EXPECT_EQ(read_text(f.sys + "/kernel/timer_migration"), "1");
  auto rep = m.restore_all();
  EXPECT_TRUE(rep.ok);
  EXPECT_EQ(rep.count("already"), 1u);
}

TEST(KnobsFaults, JournalWriteFailureMeansNoKnobWrite) {
  Fake f;
  auto cfg = f.config();
  cfg.fault = [](std::string_view op, const std::string&) { return op == "journal" ? ENOSPC : 0; };
  KnobManager m(cfg, nullptr);
  auto r = m.apply({{"sysctl.kernel.timer_migration", 0}, {"sched.nr_migrate", 8}}, "t");
  for (const auto& x : r.results) {
    EXPECT_EQ(x.status, Status::Failed);
    EXPECT_NE(x.error.find("nothing was changed"), std::string::npos) << x.error;
  }
  EXPECT_EQ(read_text(f.sys + "/kernel/timer_migration"), "1");
  EXPECT_EQ(read_text(f.dbg + "/nr_migrate"), "32");
  EXPECT_FALSE(knobs_test::fs::exists(f.journal()));
}

TEST(KnobsFaults, RealEnospcOnTmpfsStateDir) {
  SPECACT_REQUIRE_ROOT_BPF();
  Fake f;
  std::string mnt = f.dir / "small";
  knobs_test::fs::create_directories(mnt);
  ASSERT_EQ(mount("tmpfs", mnt.c_str(), "tmpfs", 0, "size=16k"), 0) << strerror(errno);
  {
    // Fill it so the journal cannot be written.
    std::ofstream fill(mnt + "/fill");
    std::string block(4096, 'x');
    for (int i = 0; i < 64 && fill; ++i) fill << block << std::flush;
  }
  auto cfg = f.config();
  cfg.state_dir = mnt + "/state";
  {
    KnobManager m(cfg, nullptr);
    auto r = m.apply({{"sysctl.kernel.timer_migration", 0}}, "t");
    EXPECT_EQ(only(r).status, Status::Failed);
    EXPECT_NE(only(r).error.find("No space left"), std::string::npos) << only(r).error;
    EXPECT_EQ(read_text(f.sys + "/kernel/timer_migration"), "1");
  }
  umount2(mnt.c_str(), MNT_DETACH);
}

TEST(KnobsYield, OutsideWriteIsYieldedNotRestoredOver) {
  Fake f;
  KnobManager m(f.config(), nullptr);
  auto r = m.apply(
      {{"sysctl.kernel.sched_rr_timeslice_ms", 30}, {"sysctl.kernel.timer_migration", 0}}, "t");
  ASSERT_TRUE(r.all_ok());
  EXPECT_TRUE(m.check_yielded().empty());
  write_text(f.sys + "/kernel/sched_rr_timeslice_ms", "77\n");  // the admin
  auto ev = m.check_yielded();
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0].knob, "sysctl.kernel.sched_rr_timeslice_ms");
  EXPECT_EQ(ev[0].expected, "30");
  EXPECT_EQ(ev[0].found, "77");
  EXPECT_EQ(m.yielded().count("sysctl.kernel.sched_rr_timeslice_ms"), 1u);
  EXPECT_EQ(only(m.apply({{"sysctl.kernel.sched_rr_timeslice_ms", 20}}, "t")).status,
            Status::Yielded);
  EXPECT_FALSE(find(m.catalogue(), "sysctl.kernel.sched_rr_timeslice_ms")->available);
  auto rep = m.restore_all();
  EXPECT_TRUE(rep.ok);
  EXPECT_EQ(read_text(f.sys + "/kernel/sched_rr_timeslice_ms"), "77");  // admin's value kept
  EXPECT_EQ(read_text(f.sys + "/kernel/timer_migration"), "1");         // ours restored
}

TEST(KnobsYield, DetectedAtApplyToo) {
  Fake f;
  KnobManager m(f.config(), nullptr);
  ASSERT_TRUE(m.apply({{"sched.nr_migrate", 8}}, "t").all_ok());
  write_text(f.dbg + "/nr_migrate", "12\n");
  EXPECT_EQ(only(m.apply({{"sched.nr_migrate", 16}}, "t")).status, Status::Yielded);
  EXPECT_EQ(read_text(f.dbg + "/nr_migrate"), "12");
  m.restore_all();
  EXPECT_EQ(read_text(f.dbg + "/nr_migrate"), "12");
}

TEST(KnobsJournal, RestoreFromJournalAfterTheManagerIsGone) {
  Fake f;
  auto cfg = f.config();
  cfg.restore_on_exit = false;
  {
    KnobManager m(cfg, nullptr);
    ASSERT_TRUE(m.apply({{"sched.base_slice_ns", 3000000}, {"sched.preempt", 0}}, "t").all_ok());
    // While a manager holds the state dir, an outside restore refuses.
    auto busy = restore_from_journal(f.config());
    EXPECT_FALSE(busy.ok);
    ASSERT_FALSE(busy.problems.empty());
    EXPECT_NE(busy.problems[0].find("in use"), std::string::npos) << busy.problems[0];
    EXPECT_EQ(read_text(f.dbg + "/base_slice_ns"), "3000000");
  }
  EXPECT_EQ(read_text(f.dbg + "/base_slice_ns"), "3000000");  // kept on exit as configured
  auto rep = restore_from_journal(f.config());
  EXPECT_TRUE(rep.ok) << rep.to_text();
  EXPECT_EQ(rep.count("restored"), 2u);
  EXPECT_EQ(read_text(f.dbg + "/base_slice_ns"), "700000");
  EXPECT_EQ(read_text(f.dbg + "/preempt"), "full");
  auto again = restore_from_journal(f.config());
  EXPECT_TRUE(again.ok);
  EXPECT_TRUE(again.nothing_to_do);
}

TEST(KnobsJournal, RestoreOnExitByDefault) {
  Fake f;
  {
    KnobManager m(f.config(), nullptr);
    ASSERT_TRUE(m.apply({{"sched.migration_cost_ns", 100000}}, "t").all_ok());
    EXPECT_TRUE(m.has_managed());
  }
  EXPECT_EQ(read_text(f.dbg + "/migration_cost_ns"), "500000");
  EXPECT_FALSE(knobs_test::fs::exists(f.journal()));
}

TEST(KnobsJournal, ValueChangedAfterCrashIsLeftAloneUnlessForced) {
  Fake f;
  auto cfg = f.config();
  cfg.restore_on_exit = false;
  {
    KnobManager m(cfg, nullptr);
    ASSERT_TRUE(
        m.apply({{"sched.nr_migrate", 8}, {"sched.migration_cost_ns", 100000}}, "t").all_ok());
  }
  write_text(f.dbg + "/nr_migrate", "99\n");  // someone else, after we died
  auto rep = restore_from_journal(f.config());
  EXPECT_TRUE(rep.ok);
  EXPECT_EQ(rep.count("left-alone"), 1u);
  EXPECT_EQ(read_text(f.dbg + "/nr_migrate"), "99");
  EXPECT_EQ(read_text(f.dbg + "/migration_cost_ns"), "500000");
  // --force: a fresh crash journal, changed again, restored anyway.
  {
    KnobManager m(cfg, nullptr);
    ASSERT_TRUE(m.apply({{"sched.nr_migrate", 8}}, "t").all_ok());
  }
  write_text(f.dbg + "/nr_migrate", "77\n");
  auto forced = restore_from_journal(f.config(), /*force=*/true);
  EXPECT_TRUE(forced.ok);
  EXPECT_EQ(read_text(f.dbg + "/nr_migrate"), "99");  // the original of the second run
}

TEST(KnobsJournal, LeftoverJournalIsRecoveredBeforeNewWrites) {
  Fake f;
  auto cfg = f.config();
  cfg.restore_on_exit = false;
  {
    KnobManager m(cfg, nullptr);
    ASSERT_TRUE(m.apply({{"sched.nr_migrate", 8}}, "t").all_ok());
  }
  KnobManager m(f.config(), nullptr);
  auto rec = m.recover_leftover();
  EXPECT_TRUE(rec.ok);
  EXPECT_EQ(rec.count("restored"), 1u);
  EXPECT_EQ(read_text(f.dbg + "/nr_migrate"), "32");
  ASSERT_TRUE(m.apply({{"sched.nr_migrate", 16}}, "t").all_ok());
  EXPECT_TRUE(m.restore_all().ok);
  EXPECT_EQ(read_text(f.dbg + "/nr_migrate"), "32");
}

void expect_kept_aside(const Fake& f, const std::string& content, const std::string& kind) {
  write_text(f.journal(), content);
  auto rep = restore_from_journal(f.config());
  EXPECT_FALSE(rep.ok) << kind;
  ASSERT_FALSE(rep.problems.empty()) << kind;
  EXPECT_NE(rep.problems[0].find("kept aside"), std::string::npos) << rep.problems[0];
  EXPECT_FALSE(knobs_test::fs::exists(f.journal())) << kind;
  bool found = false;
  for (const auto& e : knobs_test::fs::directory_iterator(f.state))
    if (e.path().filename().string().find("knobs-journal.json." + kind) == 0) {
      found = true;
      EXPECT_EQ(read_text(e.path().string()), content) << "kept aside byte for byte";
      knobs_test::fs::remove(e.path());
    }
  EXPECT_TRUE(found) << kind;
}

TEST(KnobsJournal, CorruptTruncatedAndNewerJournalsKeptAsideAndReported) {
  Fake f;
  knobs_test::fs::create_directories(f.state);
  expect_kept_aside(f, "", "corrupt");
  expect_kept_aside(f, "{\"format\":\"specactd-knobs-journal\",\"version\":1,\"files\":[{\"kn",
                    "corrupt");
  expect_kept_aside(f, "{\"format\":\"specactd-knobs-journal\",\"version\":1,\"files\":[{}]}",
                    "corrupt");
  expect_kept_aside(f, "{\"format\":\"specactd-knobs-journal\",\"version\":7,\"files\":[]}",
                    "newer-v7");
  // A kept-aside journal is mentioned on every later restore, never forgotten.
  write_text(f.journal(), "garbage");
  restore_from_journal(f.config());
  auto later = restore_from_journal(f.config());
  EXPECT_TRUE(later.ok);
  ASSERT_FALSE(later.notes.empty());
  EXPECT_NE(later.notes[0].find("needs review"), std::string::npos);
  // And a manager never writes over an unusable journal's information.
  write_text(f.journal(), "garbage");
  KnobManager m(f.config(), nullptr);
  auto r = m.apply({{"sched.nr_migrate", 8}}, "t");
  EXPECT_EQ(only(r).status, Status::Applied);
  bool aside = false;
  for (const auto& e : knobs_test::fs::directory_iterator(f.state))
    aside = aside || (e.path().filename().string().find("corrupt") != std::string::npos &&
                      read_text(e.path().string()) == "garbage");
  EXPECT_TRUE(aside);
}

TEST(KnobsJournal, JournalFromAnEarlierBootRestoresNothing) {
  Fake f;
  knobs_test::fs::create_directories(f.state);
  nlohmann::json j = {{"format", "specactd-knobs-journal"},
                      {"version", 1},
                      {"boot_id", "00000000-0000-0000-0000-000000000000"},
                      {"files",
                       {{{"knob", "sched.nr_migrate"},
                         {"path", f.dbg + "/nr_migrate"},
                         {"codec", "int"},
                         {"original", "4"},
                         {"ours", {"32"}}}}},
                      {"tasks", nlohmann::json::array()}};
  write_text(f.journal(), j.dump());
  auto rep = restore_from_journal(f.config());
  EXPECT_TRUE(rep.ok) << rep.to_text();
  EXPECT_EQ(rep.count("gone"), 1u);
  EXPECT_NE(rep.items[0].detail.find("earlier boot"), std::string::npos);
  EXPECT_EQ(read_text(f.dbg + "/nr_migrate"), "32");  // the reboot's value is left as is
  EXPECT_FALSE(knobs_test::fs::exists(f.journal()));
}

TEST(KnobsJournal, JournalIsWrittenBeforeTheKnob) {
  Fake f;
  auto cfg = f.config();
  bool journal_had_original = false;
  cfg.on_step = [&](std::string_view step) {
    if (step != "journal-committed") return;
    // At this point nothing is written yet, and the journal is durable.
    auto j = nlohmann::json::parse(read_text(f.journal()));
    journal_had_original =
        j["files"][0]["original"] == "32" && read_text(f.dbg + "/nr_migrate") == "32";
  };
  KnobManager m(cfg, nullptr);
  ASSERT_TRUE(m.apply({{"sched.nr_migrate", 8}}, "t").all_ok());
  EXPECT_TRUE(journal_had_original);
}

TEST(KnobsCgroup, FakeTreeWeightMaxIdleAppliedAndRestored) {
  Fake f;
  auto cfg = f.config();
  TargetResolver target = f.app_target();
  KnobManager m(cfg, &target);
  auto cat = m.catalogue();
  const KnobInfo* w = find(cat, "cgroup.target.cpu.weight");
  ASSERT_TRUE(w->available) << w->unavailable_reason;
  EXPECT_EQ(w->current, 100);
  int64_t full = find(cat, "cgroup.target.cpu.max")->domain.max;
  EXPECT_EQ(find(cat, "cgroup.target.cpu.max")->current, full);  // "max" = top of the range
  EXPECT_FALSE(find(cat, "cgroup.background.cpu.weight")->available);
  auto r = m.apply({{"cgroup.target.cpu.weight", 500},
                    {"cgroup.target.cpu.max", 50000},
                    {"cgroup.target.cpu.idle", 1}},
                   "t");
  ASSERT_TRUE(r.all_ok()) << r.to_json().dump();
  EXPECT_EQ(read_text(f.cg + "/app/cpu.weight"), "500");
  EXPECT_EQ(read_text(f.cg + "/app/cpu.max"), "50000 100000");
  EXPECT_EQ(read_text(f.cg + "/app/cpu.idle"), "1");
  ASSERT_TRUE(m.apply({{"cgroup.target.cpu.max", full}}, "t").all_ok());
  EXPECT_EQ(read_text(f.cg + "/app/cpu.max"), "max 100000");
  EXPECT_TRUE(m.restore_all().ok);
  EXPECT_EQ(read_text(f.cg + "/app/cpu.weight"), "100");
  EXPECT_EQ(read_text(f.cg + "/app/cpu.max"), "max 100000");
  EXPECT_EQ(read_text(f.cg + "/app/cpu.idle"), "0");
}

TEST(KnobsCgroup, CpuMaxWithOtherPeriodIsNormalised) {
  Fake f;
  write_text(f.cg + "/app/cpu.max", "25000 50000\n");
  TargetResolver target = f.app_target();
  KnobManager m(f.config(), &target);
  EXPECT_EQ(find(m.catalogue(), "cgroup.target.cpu.max")->current, 50000);
  ASSERT_TRUE(m.apply({{"cgroup.target.cpu.max", 20000}}, "t").all_ok());
  EXPECT_TRUE(m.restore_all().ok);
  EXPECT_EQ(read_text(f.cg + "/app/cpu.max"), "25000 50000");  // exact original, period too
}

TEST(KnobsCgroup, NoCpuControllerIsReported) {
  Fake f;
  write_text(f.cg + "/cgroup.controllers", "\n");  // like this hybrid host
  TargetResolver target = f.app_target();
  KnobManager m(f.config(), &target);
  auto cat = m.catalogue();
  auto k = find(cat, "cgroup.target.cpu.weight");
  EXPECT_FALSE(k->available);
  EXPECT_NE(k->unavailable_reason.find("cpu controller not enabled in cgroup v2"),
            std::string::npos)
      << k->unavailable_reason;
  EXPECT_EQ(only(m.apply({{"cgroup.target.cpu.weight", 200}}, "t")).status, Status::Unavailable);
  EXPECT_EQ(read_text(f.cg + "/app/cpu.weight"), "100");
}

TEST(KnobsCgroup, CgroupDisappears) {
  Fake f;
  TargetResolver target = f.app_target();
  auto cfg = f.config();
  cfg.restore_on_exit = false;
  {
    KnobManager m(cfg, &target);
    ASSERT_TRUE(m.apply({{"cgroup.target.cpu.weight", 300}}, "t").all_ok());
    knobs_test::fs::remove_all(f.cg + "/app");
    auto r = m.apply({{"cgroup.target.cpu.weight", 400}}, "t");
    EXPECT_NE(only(r).status, Status::Applied);
    EXPECT_FALSE(only(r).error.empty());
  }
  auto rep = restore_from_journal(f.config());
  EXPECT_TRUE(rep.ok) << rep.to_text();
  EXPECT_EQ(rep.count("gone"), 1u);
}

TEST(KnobsConfigJson, SchemaAndErrorsNameTheKeyPath) {
  auto c = KnobsConfig::from_json(
      {{"state_dir", "/tmp/x"},
       {"allow", {"task.*", "sysctl.*"}},
       {"deny", {"sysctl.kernel.numa_balancing"}},
       {"min_interval_ms", 500},
       {"restore_on_exit", false},
       {"background", {{"comm", "^stress"}}},
       {"ranges", {{"task.slice_us", {{"min", 200}, {"max", 20000}}}}},
       {"extra_sysctls",
        {{"kernel.sched_rt_runtime_us", {{"min", 500000}, {"max", 950000}, {"unit", "us"}}}}}});
  EXPECT_EQ(c.state_dir, "/tmp/x");
  EXPECT_EQ(c.min_interval_ms, 500);
  EXPECT_FALSE(c.restore_on_exit);
  ASSERT_TRUE(c.background);
  EXPECT_EQ(c.background->kind, TargetSpec::Kind::Comm);
  EXPECT_EQ(c.ranges.at("task.slice_us"), std::make_pair(int64_t{200}, int64_t{20000}));
  ASSERT_EQ(c.extra_sysctls.size(), 1u);
  auto round = KnobsConfig::from_json(c.to_json());
  EXPECT_EQ(round.ranges, c.ranges);

  auto err = [](const nlohmann::json& j) {
    try {
      KnobsConfig::from_json(j);
    } catch (const KnobsConfigError& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_EQ(
      err({{"min_interval_ms", "fast"}}).rfind("knobs.min_interval_ms: expected an integer", 0),
      0u);
  EXPECT_EQ(err({{"bogus", 1}}).rfind("knobs.bogus: unknown key", 0), 0u);
  EXPECT_EQ(err({{"ranges", {{"task.slice_us", {{"max", 500000}}}}}})
                .rfind("knobs.ranges.task.slice_us.max: 500000 is outside", 0),
            0u);
  EXPECT_EQ(err({{"ranges", {{"nope", {{"max", 5}}}}}}).rfind("knobs.ranges.nope: unknown knob", 0),
            0u);
  EXPECT_EQ(
      err({{"ranges", {{"task.policy", {{"max", 1}}}}}}).rfind("knobs.ranges.task.policy:", 0), 0u);
  EXPECT_EQ(err({{"extra_sysctls", {{"../../etc/passwd", {{"min", 0}, {"max", 1}}}}}})
                .rfind("knobs.extra_sysctls.../../etc/passwd: not a sysctl name", 0),
            0u);
  EXPECT_EQ(err({{"extra_sysctls", {{"kernel.x", {{"min", 0}}}}}})
                .rfind("knobs.extra_sysctls.kernel.x: min and max are required", 0),
            0u);
  EXPECT_EQ(err({{"background", {{"pid", "x"}}}}).rfind("knobs.background: ", 0), 0u);
  EXPECT_EQ(err({{"restore_on_exit", 1}}).rfind("knobs.restore_on_exit: expected true or false", 0),
            0u);
  EXPECT_EQ(err({{"allow", "task.*"}}).rfind("knobs.allow: expected an array", 0), 0u);
  EXPECT_EQ(err({{"state_dir", "relative"}}).rfind("knobs.state_dir: expected an absolute path", 0),
            0u);
  EXPECT_EQ(err(nlohmann::json::array()).rfind("knobs: expected an object", 0), 0u);
}

TEST(KnobsConfigJson, ExtraSysctlIsManagedWithItsRange) {
  Fake f;
  write_text(f.sys + "/kernel/sched_rt_runtime_us", "950000\n");
  auto cfg = KnobsConfig::from_json(
      {{"extra_sysctls", {{"kernel.sched_rt_runtime_us", {{"min", 500000}, {"max", 950000}}}}}});
  cfg.state_dir = f.state;
  cfg.sys_root = f.sys;
  KnobManager m(cfg, nullptr);
  auto cat = m.catalogue();
  auto k = find(cat, "sysctl.kernel.sched_rt_runtime_us");
  ASSERT_NE(k, nullptr);
  EXPECT_TRUE(k->available);
  auto r = m.apply({{"sysctl.kernel.sched_rt_runtime_us", 100}}, "t");
  EXPECT_TRUE(only(r).clamped);
  EXPECT_EQ(read_text(f.sys + "/kernel/sched_rt_runtime_us"), "500000");
  EXPECT_TRUE(m.restore_all().ok);
  EXPECT_EQ(read_text(f.sys + "/kernel/sched_rt_runtime_us"), "950000");
}

}  // namespace
}  // namespace specact

namespace specact {
namespace {

// The unit's ExecStopPost runs `restore --config`: the journal is found through
// the config's top-level state_dir, and a clean stop (SERVICE_RESULT=success)
// of a daemon told to keep its settings keeps them; anything else restores.
TEST(KnobsCli, RestoreWithConfigHonoursStateDirAndKeepPolicy) {
  Fake f;
  {
    KnobsConfig c = f.config();
    c.restore_on_exit = false;
    KnobManager m(c, nullptr);
    ASSERT_EQ(only(m.apply({{"sysctl.kernel.sched_autogroup_enabled", 0}}, "test")).status,
              KnobResult::Status::Applied);
  }
  std::string sysctl = f.sys + "/kernel/sched_autogroup_enabled";
  ASSERT_EQ(read_text(sysctl), "0");
  std::string cfg = f.dir / "daemon.json";
  write_text(cfg, nlohmann::json({{"state_dir", f.state},
                                  {"knobs", {{"restore_on_exit", false}, {"sys_root", f.sys}}}})
                      .dump());
  std::string out;
  EXPECT_EQ(specact::testing::run_shell("SERVICE_RESULT=success " + std::string(KNOBS_CLI) +
                                            " restore --config " + cfg + " 2>&1",
                                        &out),
            0);
  EXPECT_NE(out.find("keeping the settings"), std::string::npos) << out;
  EXPECT_EQ(read_text(sysctl), "0");
  EXPECT_EQ(specact::testing::run_shell("SERVICE_RESULT=watchdog " + std::string(KNOBS_CLI) +
                                            " restore --config " + cfg + " 2>&1",
                                        &out),
            0)
      << out;
  EXPECT_EQ(read_text(sysctl), "1");
}

}  // namespace
}  // namespace specact
