// Issue 11, the state directory and the journal: files in the state directory
// cannot be turned against root (symlinks, loose modes, foreign owners), a
// journal cannot make restore write outside the knob roots, a corrupted
// journal restores nothing, kept-aside journals never overwrite each other,
// and process churn does not grow the journal.
#include <gtest/gtest.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <ctime>

#include "knobs/knob_manager.h"
#include "knobs_test_util.h"
#include "subprocess.h"
#include "test_support.h"

namespace specact {
namespace {

using knobs_test::read_text;
using knobs_test::TempDir;
using knobs_test::write_text;
namespace fs = knobs_test::fs;
using Status = KnobResult::Status;

// Fake knob roots plus a state directory and a victim file outside all of them.
struct HardFake : knobs_test::FakeRoots {
  std::string victim = dir / "victim";  // what an attacker wants root to clobber

  HardFake() : FakeRoots("hard") {
    write_text(sys + "/kernel/sched_rr_timeslice_ms", "100\n");
    write_text(sys + "/kernel/timer_migration", "1\n");
    write_text(dbg + "/nr_migrate", "32\n");
    write_text(dbg + "/migration_cost_ns", "500000\n");
    write_text(cg + "/cgroup.controllers", "cpu\n");
    write_text(victim, "precious\n");
    fs::create_directories(state);
    chmod(state.c_str(), 0700);
  }
  std::vector<std::string> aside() const {
    std::vector<std::string> out;
    for (const auto& e : fs::directory_iterator(state)) {
      std::string n = e.path().filename().string();
      if (n.rfind("knobs-journal.json.", 0) == 0 && n != "knobs-journal.json.tmp")
        out.push_back(e.path().string());
    }
    std::sort(out.begin(), out.end());
    return out;
  }
};

const KnobResult& only(const ApplyResult& r) {
  EXPECT_EQ(r.results.size(), 1u);
  return r.results.front();
}

std::string run_cli(const std::string& args, int* code) {
  std::string out;
  *code = specact::testing::run_shell(std::string(KNOBS_CLI) + " " + args + " 2>&1", &out);
  return out;
}

// ---------------------------------------------------------------- item 4

TEST(StateDirHardening, SymlinkedLockFileLeavesItsTargetUntouched) {
  HardFake s;
  ASSERT_EQ(symlink(s.victim.c_str(), (s.state + "/knobs.lock").c_str()), 0);
  {
    KnobManager m(s.config(), nullptr);
    auto r = m.apply({{"sched.nr_migrate", 8}}, "test");
    // Refused, and nothing else was changed without a journal either.
    EXPECT_EQ(only(r).status, Status::Failed);
    EXPECT_NE(only(r).error.find("knobs.lock"), std::string::npos) << only(r).error;
  }
  EXPECT_EQ(read_text(s.victim), "precious");
  EXPECT_EQ(read_text(s.dbg + "/nr_migrate"), "32");
}

TEST(StateDirHardening, SymlinkedTempJournalLeavesItsTargetUntouched) {
  HardFake s;
  ASSERT_EQ(symlink(s.victim.c_str(), (s.state + "/knobs-journal.json.tmp").c_str()), 0);
  {
    KnobManager m(s.config(), nullptr);
    auto r = m.apply({{"sched.nr_migrate", 8}}, "test");
    EXPECT_EQ(only(r).status, Status::Applied) << only(r).error;
    EXPECT_EQ(read_text(s.victim), "precious");
    // The journal is a real file in the state directory, not the victim.
    struct stat st {};
    ASSERT_EQ(lstat(s.journal().c_str(), &st), 0);
    EXPECT_TRUE(S_ISREG(st.st_mode));
  }
  EXPECT_EQ(read_text(s.victim), "precious");
  EXPECT_EQ(read_text(s.dbg + "/nr_migrate"), "32");  // restored on exit
}

TEST(StateDirHardening, SymlinkedJournalIsNotFollowed) {
  HardFake s;
  // A valid journal outside the state directory: following the link would
  // "restore" nr_migrate from it.
  std::string elsewhere = s.dir / "elsewhere.json";
  nlohmann::json j = {{"format", "specactd-knobs-journal"},
                      {"version", 1},
                      {"files",
                       {{{"knob", "sched.nr_migrate"},
                         {"path", s.dbg + "/nr_migrate"},
                         {"codec", "int"},
                         {"original", "4"},
                         {"ours", {"32"}}}}},
                      {"tasks", nlohmann::json::array()}};
  write_text(elsewhere, j.dump());
  ASSERT_EQ(symlink(elsewhere.c_str(), s.journal().c_str()), 0);
  auto rep = restore_from_journal(s.config());
  EXPECT_FALSE(rep.ok) << rep.to_text();
  ASSERT_FALSE(rep.problems.empty());
  EXPECT_NE(rep.problems[0].find("symbolic link"), std::string::npos) << rep.problems[0];
  EXPECT_EQ(read_text(s.dbg + "/nr_migrate"), "32");
  EXPECT_EQ(read_text(elsewhere), j.dump());
}

TEST(StateDirHardening, WorldWritableStateDirIsRefusedWithItsPath) {
  HardFake s;
  ASSERT_EQ(chmod(s.state.c_str(), 0777), 0);
  KnobManager m(s.config(), nullptr);
  auto r = m.apply({{"sched.nr_migrate", 8}}, "test");
  EXPECT_EQ(only(r).status, Status::Failed);
  EXPECT_NE(only(r).error.find(s.state), std::string::npos) << only(r).error;
  EXPECT_NE(only(r).error.find("writable by group or others"), std::string::npos) << only(r).error;
  EXPECT_EQ(read_text(s.dbg + "/nr_migrate"), "32");
  EXPECT_FALSE(fs::exists(s.journal()));
  // restore refuses it too, and says where.
  write_text(s.journal(), "{}");
  auto rep = restore_from_journal(s.state);
  EXPECT_FALSE(rep.ok);
  ASSERT_FALSE(rep.problems.empty());
  EXPECT_NE(rep.problems[0].find(s.state), std::string::npos) << rep.problems[0];
  EXPECT_EQ(read_text(s.journal()), "{}");  // not touched
}

TEST(StateDirHardening, StateDirOwnedByAnotherUserIsRefused) {
  SPECACT_REQUIRE_ROOT_BPF();  // chown needs root
  HardFake s;
  ASSERT_EQ(chown(s.state.c_str(), 4242, 4242), 0);
  {
    KnobManager m(s.config(), nullptr);
    auto r = m.apply({{"sched.nr_migrate", 8}}, "test");
    EXPECT_EQ(only(r).status, Status::Failed);
    EXPECT_NE(only(r).error.find(s.state), std::string::npos) << only(r).error;
    EXPECT_NE(only(r).error.find("owned by uid 4242"), std::string::npos) << only(r).error;
    EXPECT_EQ(read_text(s.dbg + "/nr_migrate"), "32");
  }
  int code = 0;
  std::string out = run_cli("restore --state-dir " + s.state, &code);
  EXPECT_EQ(code, 1) << out;
  EXPECT_NE(out.find("owned by uid 4242"), std::string::npos) << out;
}

TEST(StateDirHardening, MissingStateDirIsCreatedPrivateAndASymlinkedOneIsRefused) {
  HardFake s;
  auto cfg = s.config();
  cfg.state_dir = s.dir / "new/deeper/state";
  {
    KnobManager m(cfg, nullptr);
    ASSERT_EQ(only(m.apply({{"sched.nr_migrate", 8}}, "test")).status, Status::Applied);
    struct stat st {};
    ASSERT_EQ(stat(cfg.state_dir.c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 07777, 0700u);
  }
  EXPECT_EQ(read_text(s.dbg + "/nr_migrate"), "32");
  // state_dir itself a link (to a directory someone else picked): refused.
  std::string link = s.dir / "state-link";
  ASSERT_EQ(symlink(s.state.c_str(), link.c_str()), 0);
  cfg.state_dir = link;
  KnobManager m(cfg, nullptr);
  auto r = m.apply({{"sched.nr_migrate", 8}}, "test");
  EXPECT_EQ(only(r).status, Status::Failed);
  EXPECT_NE(only(r).error.find("symbolic link"), std::string::npos) << only(r).error;
  EXPECT_EQ(read_text(s.dbg + "/nr_migrate"), "32");
  EXPECT_FALSE(fs::exists(s.journal()));
}

// A journal that names a file outside the knob roots: restore must not write
// it, whatever the journal claims, and --force changes nothing about that.
nlohmann::json forged_journal(const std::string& path, const std::string& knob = "sched.nr_migrate",
                              const std::string& ours = "precious") {
  return {{"format", "specactd-knobs-journal"},
          {"version", 1},
          {"files",
           {{{"knob", knob},
             {"path", path},
             {"codec", "int"},
             {"original", "pwned"},
             {"ours", {ours}}}}},
          {"tasks", nlohmann::json::array()}};
}

TEST(StateDirHardening, ForgedJournalPathIsNeverWrittenEvenWithForce) {
  HardFake s;
  write_text(s.sys + "/kernel/core_pattern", "core\n");  // a sysctl that is no knob of ours
  // Outside every root; inside a root but not the knob's file; a ".." way out.
  const std::vector<std::string> forged = {s.victim, s.sys + "/kernel/core_pattern",
                                           s.dbg + "/../victim", "/etc/specact-forged-x"};
  for (const auto& path : forged)
    for (bool force : {false, true}) {
      SCOPED_TRACE(path + (force ? " --force" : ""));
      write_text(s.journal(), forged_journal(path).dump());
      auto rep = restore_from_journal(s.config(), force);
      EXPECT_FALSE(rep.ok) << rep.to_text();
      EXPECT_EQ(rep.count("restored"), 0u) << rep.to_text();
      ASSERT_FALSE(rep.problems.empty());
      EXPECT_NE(rep.problems[0].find("refused"), std::string::npos) << rep.problems[0];
      EXPECT_NE(rep.problems[0].find(path), std::string::npos) << rep.problems[0];
      EXPECT_EQ(read_text(s.victim), "precious");
      EXPECT_EQ(read_text(s.sys + "/kernel/core_pattern"), "core");
      EXPECT_FALSE(fs::exists("/etc/specact-forged-x"));
      EXPECT_FALSE(fs::exists(s.journal()));  // kept aside for review, not acted on
    }
  // The command line, with and without --force, with the default roots.
  for (const char* flag : {"", " --force"}) {
    write_text(s.journal(), forged_journal(s.victim).dump());
    int code = 0;
    std::string out = run_cli("restore --state-dir " + s.state + flag, &code);
    EXPECT_EQ(code, 1) << out;
    EXPECT_NE(out.find("refused"), std::string::npos) << out;
    EXPECT_EQ(read_text(s.victim), "precious") << flag << "\n" << out;
  }
}

// The knob's own file replaced by a link to the victim: the entry names the
// right path, but the link is not followed.
TEST(StateDirHardening, SymlinkedKnobFileIsNotFollowedOnRestore) {
  HardFake s;
  fs::remove(s.dbg + "/nr_migrate");
  ASSERT_EQ(symlink(s.victim.c_str(), (s.dbg + "/nr_migrate").c_str()), 0);
  for (bool force : {false, true}) {
    write_text(s.journal(),
               forged_journal(s.dbg + "/nr_migrate", "sched.nr_migrate", "precious").dump());
    // A plausible original this time, so only the link stands in the way.
    auto j = nlohmann::json::parse(read_text(s.journal()));
    j["files"][0]["original"] = "4";
    write_text(s.journal(), j.dump());
    auto rep = restore_from_journal(s.config(), force);
    EXPECT_FALSE(rep.ok) << rep.to_text();
    EXPECT_EQ(rep.count("restored"), 0u) << rep.to_text();
    EXPECT_EQ(read_text(s.victim), "precious");
  }
}

// ---------------------------------------------------------------- item 6

TEST(JournalIntegrity, BitFlipIsDetectedAndNothingIsRestored) {
  HardFake s;
  auto cfg = s.config();
  cfg.restore_on_exit = false;  // stands in for a crash: the journal stays
  {
    KnobManager m(cfg, nullptr);
    ASSERT_TRUE(
        m.apply({{"sched.nr_migrate", 8}, {"sched.migration_cost_ns", 100000}}, "t").all_ok());
  }
  std::string text = read_text(s.journal());
  auto at = text.find("\"original\": \"32\"");
  ASSERT_NE(at, std::string::npos) << text;
  text[at + 14] ^= 0x01;  // '2' -> '3': still valid JSON, a wrong original
  write_text(s.journal(), text);
  auto rep = restore_from_journal(s.config());
  EXPECT_FALSE(rep.ok) << rep.to_text();
  EXPECT_EQ(rep.count("restored"), 0u) << rep.to_text();
  ASSERT_FALSE(rep.problems.empty());
  EXPECT_NE(rep.problems[0].find("checksum"), std::string::npos) << rep.problems[0];
  EXPECT_EQ(read_text(s.dbg + "/nr_migrate"), "8");  // nothing restored, not "33"
  EXPECT_EQ(read_text(s.dbg + "/migration_cost_ns"), "100000");
  auto aside = s.aside();
  ASSERT_EQ(aside.size(), 1u);
  EXPECT_EQ(read_text(aside[0]), text);
  EXPECT_FALSE(fs::exists(s.journal()));
}

TEST(JournalIntegrity, JournalCarriesAChecksumAndVersion1WithoutOneIsStillRestored) {
  HardFake s;
  auto cfg = s.config();
  cfg.restore_on_exit = false;
  {
    KnobManager m(cfg, nullptr);
    ASSERT_TRUE(m.apply({{"sched.nr_migrate", 8}}, "t").all_ok());
  }
  auto j = nlohmann::json::parse(read_text(s.journal()));
  EXPECT_EQ(j["version"], 2);
  ASSERT_TRUE(j.contains("checksum"));
  EXPECT_EQ(j["checksum"].get<std::string>().rfind("crc32:", 0), 0u);
  // The same content as an older specactd wrote it: version 1, no checksum.
  j.erase("checksum");
  j["version"] = 1;
  write_text(s.journal(), j.dump());
  auto rep = restore_from_journal(cfg);
  EXPECT_TRUE(rep.ok) << rep.to_text();
  EXPECT_EQ(rep.count("restored"), 1u) << rep.to_text();
  EXPECT_EQ(read_text(s.dbg + "/nr_migrate"), "32");
  EXPECT_FALSE(fs::exists(s.journal()));
  // A version-2 journal whose checksum was removed is damaged, not old.
  {
    KnobManager m(cfg, nullptr);
    ASSERT_TRUE(m.apply({{"sched.nr_migrate", 8}}, "t").all_ok());
  }
  j = nlohmann::json::parse(read_text(s.journal()));
  j.erase("checksum");
  write_text(s.journal(), j.dump());
  rep = restore_from_journal(cfg);
  EXPECT_FALSE(rep.ok);
  EXPECT_EQ(rep.count("restored"), 0u);
  EXPECT_EQ(read_text(s.dbg + "/nr_migrate"), "8");
  EXPECT_EQ(s.aside().size(), 1u);
}

// Ids and integers are read exactly: tid 2^32+1 is not tid 1 (init), a start
// time of -1 is not 2^64-1, 2.5 is not 2. Such a journal restores nothing.
TEST(JournalIntegrity, NarrowedOrInexactIntegersAreRefused) {
  HardFake s;
  auto task_journal = [](const nlohmann::json& tid, const nlohmann::json& start,
                         const nlohmann::json& original) {
    return nlohmann::json{
        {"format", "specactd-knobs-journal"},
        {"version", 1},
        {"files", nlohmann::json::array()},
        {"tasks",
         {{{"knob", "task.nice"},
           {"field", "nice"},
           {"default_slice_ns", 0},
           {"proc_root", "/proc"},
           {"ours", {3}},
           {"processes", nlohmann::json::array()},
           {"threads", {{{"tid", tid}, {"tgid", 1}, {"start", start}, {"original", original}}}}}}}};
  };
  for (const auto& j :
       {task_journal(4294967297ull, 1, 0), task_journal(0, 1, 0), task_journal(1, -1, 0),
        task_journal(1, 1, 2.5), task_journal(1, 1, 1e26)}) {
    SCOPED_TRACE(j["tasks"][0]["threads"][0].dump());
    write_text(s.journal(), j.dump());
    auto rep = restore_from_journal(s.config());
    EXPECT_FALSE(rep.ok) << rep.to_text();
    EXPECT_TRUE(rep.items.empty()) << rep.to_text();
    ASSERT_FALSE(rep.problems.empty());
    EXPECT_NE(rep.problems[0].find("kept aside"), std::string::npos) << rep.problems[0];
  }
}

// ---------------------------------------------------------------- item 7

TEST(JournalIntegrity, TwoSetAsidesInOneSecondKeepBothFiles) {
  HardFake s;
  for (int attempt = 0; attempt < 5; ++attempt) {
    for (const auto& a : s.aside()) fs::remove(a);
    time_t before = time(nullptr);
    write_text(s.journal(), "garbage one");
    EXPECT_FALSE(restore_from_journal(s.state).ok);
    write_text(s.journal(), "garbage two");
    EXPECT_FALSE(restore_from_journal(s.state).ok);
    if (time(nullptr) != before) continue;  // crossed a second: not the case under test
    auto aside = s.aside();
    ASSERT_EQ(aside.size(), 2u);
    std::set<std::string> contents = {read_text(aside[0]), read_text(aside[1])};
    EXPECT_EQ(contents, (std::set<std::string>{"garbage one", "garbage two"}));
    return;
  }
  FAIL() << "could not do two set-asides within one second";
}

// ---------------------------------------------------------------- item 8

// The children a test started and has not reaped yet: killed and reaped at
// the end even when an assertion returns early (an unreaped child keeps its
// pid, so the kill cannot hit a recycled one).
struct Children {
  std::vector<pid_t> pids;
  pid_t add(pid_t p) {
    pids.push_back(p);
    return p;
  }
  void reap(pid_t p) {  // kill (if still running) and wait for p
    kill(p, SIGKILL);
    waitpid(p, nullptr, 0);
    std::erase(pids, p);
  }
  bool try_reap(pid_t p) {  // true when p has exited and is reaped
    if (waitpid(p, nullptr, WNOHANG) != p) return false;
    std::erase(pids, p);
    return true;
  }
  ~Children() {
    for (pid_t p : pids) kill(p, SIGKILL);
    for (pid_t p : pids) waitpid(p, nullptr, 0);
  }
};

// A child that names itself (comm) and lives `ms` milliseconds (0 = until killed).
pid_t spawn_named(const char* comm, int ms) {
  pid_t p = fork();
  if (p == 0) {
    prctl(PR_SET_NAME, comm, 0, 0, 0);
    if (ms == 0)
      for (;;) pause();
    timespec ts{ms / 1000, (ms % 1000) * 1'000'000L};
    nanosleep(&ts, nullptr);
    _exit(0);
  }
  return p;
}

size_t file_size(const std::string& path) {
  struct stat st {};
  return stat(path.c_str(), &st) == 0 ? static_cast<size_t>(st.st_size) : 0;
}

TEST(JournalChurn, ThousandShortLivedProcessesKeepTheJournalBoundedAndStopIsTruthful) {
  SPECACT_REQUIRE_ROOT_BPF();
  HardFake s;
  const char* comm = "spct-churn";
  Children children;
  pid_t keeper = children.add(spawn_named(comm, 0));
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  TargetSpec spec;
  spec.kind = TargetSpec::Kind::Comm;
  spec.comm_regex = std::string("^") + comm + "$";
  TargetResolver target(spec);
  target.validate();
  size_t max_size = 0, started = 0, managed = 0;
  {
    KnobManager m(s.config(), &target);
    ASSERT_TRUE(m.apply({{"task.nice", 3}}, "t").all_ok());
    std::vector<pid_t> kids;
    for (int window = 0; window < 100; ++window) {
      for (int i = 0; i < 10; ++i, ++started) kids.push_back(children.add(spawn_named(comm, 20)));
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
      managed += m.reapply_to_new_threads();
      m.check_yielded();
      max_size = std::max(max_size, file_size(s.journal()));
      kids.erase(
          std::remove_if(kids.begin(), kids.end(), [&](pid_t k) { return children.try_reap(k); }),
          kids.end());
    }
    for (pid_t k : kids) {
      waitpid(k, nullptr, 0);
      std::erase(children.pids, k);
    }
    // The churn is over: only the keeper is left.
    m.reapply_to_new_threads();
    m.check_yielded();
    size_t settled = file_size(s.journal());
    EXPECT_LT(settled, 2048u) << read_text(s.journal());
    // The keeper goes too; two more windows, then a clean stop.
    children.reap(keeper);
    m.reapply_to_new_threads();
    m.check_yielded();
    m.reapply_to_new_threads();
    m.check_yielded();
  }  // clean stop: restore_on_exit
  std::printf(
      "[ churn    ] %zu processes started, %zu brought under management, journal max %zu B\n",
      started, managed, max_size);
  EXPECT_GT(managed, 100u) << "the churn did not reach the manager";
  // Bounded: ~20 live children at a time, never the 1000 that came and went.
  EXPECT_LT(max_size, 16384u);
  // After a clean stop: no journal, or a restore that says what is in it.
  if (fs::exists(s.journal())) {
    std::string left = read_text(s.journal());
    auto rep = restore_from_journal(s.config());
    EXPECT_EQ(rep.to_text().find("no journal"), std::string::npos) << "a journal was there:\n"
                                                                   << left << "\nrestore said:\n"
                                                                   << rep.to_text();
    ADD_FAILURE() << "a clean stop left a journal behind:\n" << left;
  }
}

TEST(JournalChurn, RestoreOfAJournalWithOnlyExitedTasksSaysSo) {
  HardFake s;
  nlohmann::json j = {{"format", "specactd-knobs-journal"},
                      {"version", 1},
                      {"files", nlohmann::json::array()},
                      {"tasks",
                       {{{"knob", "task.nice"},
                         {"field", "nice"},
                         {"default_slice_ns", 0},
                         {"proc_root", "/proc"},
                         {"ours", {3}},
                         {"processes", {{{"tgid", 999999999}, {"start", 1}, {"original", 0}}}},
                         {"threads", nlohmann::json::array()}}}}};
  write_text(s.journal(), j.dump());
  auto rep = restore_from_journal(s.config());
  EXPECT_TRUE(rep.ok) << rep.to_text();
  EXPECT_FALSE(rep.nothing_to_do);
  EXPECT_EQ(rep.count("gone"), 1u) << rep.to_text();
  EXPECT_EQ(rep.to_text().find("no journal"), std::string::npos) << rep.to_text();
  EXPECT_FALSE(fs::exists(s.journal()));
}

// restore_on_exit=false: a clean stop keeps the settings of live tasks, and
// the journal it leaves holds those and nothing that exited.
TEST(JournalChurn, CleanStopKeepingSettingsLeavesOnlyLiveTasksInTheJournal) {
  SPECACT_REQUIRE_ROOT_BPF();
  HardFake s;
  auto cfg = s.config();
  cfg.restore_on_exit = false;
  const char* comm = "spct-keep";
  const int nice_before = getpriority(PRIO_PROCESS, 0);  // what the children inherit
  Children children;
  pid_t stays = children.add(spawn_named(comm, 0)), goes = children.add(spawn_named(comm, 0));
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  TargetSpec spec;
  spec.kind = TargetSpec::Kind::Comm;
  spec.comm_regex = std::string("^") + comm + "$";
  TargetResolver target(spec);
  target.validate();
  {
    KnobManager m(cfg, &target);
    ASSERT_TRUE(m.apply({{"task.nice", 4}}, "t").all_ok());
    children.reap(goes);
  }
  auto j = nlohmann::json::parse(read_text(s.journal()));
  ASSERT_EQ(j["tasks"].size(), 1u) << j.dump(1);
  ASSERT_EQ(j["tasks"][0]["threads"].size(), 1u) << j.dump(1);
  EXPECT_EQ(j["tasks"][0]["threads"][0]["tid"], stays);
  ASSERT_EQ(j["tasks"][0]["processes"].size(), 1u) << j.dump(1);
  auto rep = restore_from_journal(cfg);
  EXPECT_TRUE(rep.ok) << rep.to_text();
  EXPECT_EQ(rep.count("restored"), 1u) << rep.to_text();
  EXPECT_EQ(rep.count("gone"), 0u) << rep.to_text();
  EXPECT_EQ(getpriority(PRIO_PROCESS, static_cast<id_t>(stays)), nice_before);
  children.reap(stays);
  // With every tuned task gone before the stop, no journal is left at all.
  pid_t lone = children.add(spawn_named(comm, 0));
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  {
    KnobManager m(cfg, &target);
    ASSERT_TRUE(m.apply({{"task.nice", 4}}, "t").all_ok());
    children.reap(lone);
  }
  EXPECT_FALSE(fs::exists(s.journal())) << read_text(s.journal());
}

}  // namespace
}  // namespace specact
