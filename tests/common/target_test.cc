#include "target/target.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <thread>

using specact::TargetError;
using specact::TargetResolver;
using specact::TargetSpec;

TEST(TargetSpec, ParsesEveryKind) {
  EXPECT_EQ(TargetSpec::from_json({{"pid", 12}}).pids, std::vector<pid_t>{12});
  EXPECT_EQ(TargetSpec::from_json({{"pids", {1, 2}}}).pids.size(), 2u);
  EXPECT_EQ(TargetSpec::from_json({{"cgroup", "/a"}}).kind, TargetSpec::Kind::Cgroup);
  EXPECT_EQ(TargetSpec::from_json({{"unit", "x.service"}}).unit, "x.service");
  EXPECT_EQ(TargetSpec::from_json({{"comm", "^sys"}}).comm_regex, "^sys");
}

TEST(TargetSpec, RejectsBadInput) {
  EXPECT_THROW(TargetSpec::from_json(nlohmann::json::object()), TargetError);
  EXPECT_THROW(TargetSpec::from_json({{"pid", -1}}), TargetError);
  EXPECT_THROW(TargetSpec::from_json({{"pid", "12"}}), TargetError);
  EXPECT_THROW(TargetSpec::from_json({{"host", "x"}}), TargetError);
  EXPECT_THROW(TargetSpec::from_json({{"pid", 1}, {"comm", "x"}}), TargetError);
  EXPECT_THROW(TargetSpec::from_json({{"pids", nlohmann::json::array()}}), TargetError);
}

TEST(TargetResolver, PidOfSelfResolvesToItsThreads) {
  TargetResolver r(TargetSpec::pid(getpid()));
  r.validate();
  EXPECT_EQ(r.processes(), std::vector<pid_t>{getpid()});
  EXPECT_FALSE(specact::threads_of(getpid()).empty());
}

TEST(TargetResolver, MissingPidIsAClearError) {
  TargetResolver r(TargetSpec::pid(999'999'999));
  try {
    r.validate();
    FAIL() << "expected TargetError";
  } catch (const TargetError& e) {
    EXPECT_NE(std::string(e.what()).find("no such process"), std::string::npos);
  }
}

TEST(TargetResolver, MalformedRegexIsAClearError) {
  TargetSpec s;
  s.kind = TargetSpec::Kind::Comm;
  s.comm_regex = "([";
  TargetResolver r(s);
  EXPECT_THROW(r.validate(), TargetError);
}

TEST(TargetResolver, CommFindsProcessesButNotItself) {
  TargetSpec s;
  s.kind = TargetSpec::Kind::Comm;
  s.comm_regex = "^common_tests$";
  TargetResolver r(s);
  r.validate();
  for (pid_t p : r.processes()) EXPECT_NE(p, getpid());
}

TEST(TargetResolver, CgroupTreeFromFakeRoot) {
  namespace fs = std::filesystem;
  fs::path root = fs::temp_directory_path() / ("specact-cg-" + std::to_string(getpid()));
  fs::create_directories(root / "app" / "child");
  std::ofstream(root / "app" / "cgroup.procs") << "10\n11\n";
  std::ofstream(root / "app" / "child" / "cgroup.procs") << "12\n";
  TargetSpec s;
  s.kind = TargetSpec::Kind::Cgroup;
  s.cgroup = "/app";
  TargetResolver r(s, "/proc", root.string());
  r.validate();
  EXPECT_EQ(r.processes(), (std::vector<pid_t>{10, 11, 12}));
  EXPECT_TRUE(r.follows_forks());

  TargetSpec unit;
  unit.kind = TargetSpec::Kind::Unit;
  unit.unit = "child";
  TargetResolver u(unit, "/proc", root.string());
  u.validate();
  EXPECT_EQ(u.processes(), (std::vector<pid_t>{12}));
  fs::remove_all(root);
}

namespace {

// Runs body in a forked child and waits up to timeout_ms: the child's exit
// code, or -1 when it had to be killed (a hang), or 128+signal (a crash).
int run_in_child(const std::function<int()>& body, int timeout_ms, double* seconds = nullptr) {
  auto t0 = std::chrono::steady_clock::now();
  pid_t pid = fork();
  if (pid == 0) _exit(body());
  int status = 0;
  for (;;) {
    if (waitpid(pid, &status, WNOHANG) == pid) break;
    if (std::chrono::steady_clock::now() - t0 > std::chrono::milliseconds(timeout_ms)) {
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
      return -1;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  if (seconds)
    *seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

// A fake /proc with a few processes named `comm`.
struct FakeProc {
  explicit FakeProc(const std::string& comm) {
    root = std::filesystem::temp_directory_path() / ("specact-proc-" + std::to_string(getpid()));
    for (int p : {100, 101, 102}) {
      std::filesystem::create_directories(root / std::to_string(p));
      std::ofstream(root / std::to_string(p) / "comm") << comm << "\n";
    }
  }
  ~FakeProc() { std::filesystem::remove_all(root); }
  std::filesystem::path root;
};

// 0: refused with a TargetError; 1: accepted and resolved; 2: another exception.
int parse_and_resolve(const nlohmann::json& j, const std::string& proc_root) {
  try {
    TargetResolver r(TargetSpec::from_json(j), proc_root);
    r.validate();
    r.processes();
    return 1;
  } catch (const TargetError&) {
    return 0;
  } catch (...) {
    return 2;
  }
}

}  // namespace

// Issue 11 item 1: std::regex backtracked for minutes on this pattern.
TEST(TargetResolver, BacktrackingPatternMatchesInLinearTime) {
  FakeProc proc(std::string(40, 'a'));
  double secs = 0;
  int rc = run_in_child(
      [&] {
        return parse_and_resolve({{"comm", "(.*)*(.*)*(.*)*(.*)*x$"}}, proc.root.string());
      },
      1000, &secs);
  EXPECT_EQ(rc, 1) << "-1 means it hung for over 1 s";
  TargetSpec s = TargetSpec::from_json({{"comm", "(.*)*(.*)*(.*)*(.*)*a$"}});
  TargetResolver r(s, proc.root.string());
  r.validate();
  EXPECT_EQ(r.processes(), (std::vector<pid_t>{100, 101, 102}));
  std::printf("backtracking pattern resolved in %.3f s\n", secs);
}

// Issue 11 item 2: these crashed the daemon (stack overflow inside std::regex).
TEST(TargetSpec, HugeAndDeepPatternsAreRefusedNotCrashed) {
  FakeProc proc("worker");
  const std::string long_pattern(100'000, 'a');
  const std::string deep = std::string(20'000, '(') + "a" + std::string(20'000, ')');
  for (const std::string& pattern : {long_pattern, deep}) {
    int rc = run_in_child(
        [&] {
          return parse_and_resolve({{"comm", pattern}}, proc.root.string());
        },
        1000);
    EXPECT_EQ(rc, 0) << "pattern of " << pattern.size() << " bytes: 0 = refused, 1 = accepted, "
                     << "-1 = hung, >128 = crashed";
  }
  try {
    TargetSpec::from_json({{"comm", long_pattern}});
    FAIL() << "a 100k pattern must be refused";
  } catch (const TargetError& e) {
    EXPECT_NE(std::string(e.what()).find("limit is 1024"), std::string::npos) << e.what();
  }
  // Short but with a program beyond max_mem, and syntax RE2 does not have.
  EXPECT_THROW(TargetSpec::from_json({{"comm", "((a{100}){100}){100}"}}), TargetError);
  EXPECT_THROW(TargetSpec::from_json({{"comm", "(a)\\1"}}), TargetError);
  // Nesting within the length cap compiles (RE2 parses iteratively).
  EXPECT_NO_THROW(
      TargetSpec::from_json({{"comm", std::string(500, '(') + "a" + std::string(500, ')')}}));
}

// Issue 11 item 3: 4294967297 became pid_t 1.
TEST(TargetSpec, PidsAreNeverNarrowed) {
  for (const char* text :
       {R"({"pid":4294967297})", R"({"pids":[4294967297]})", R"({"pid":2147483648})",
        R"({"pid":18446744073709551615})", R"({"pid":-4294967295})", R"({"pid":0})",
        R"({"pid":12.0})", R"({"pid":true})"}) {
    auto j = nlohmann::json::parse(text);
    EXPECT_THROW(TargetSpec::from_json(j), TargetError) << text;
  }
  EXPECT_EQ(TargetSpec::from_json({{"pid", 2147483647}}).pids, std::vector<pid_t>{2147483647});
  // Valid as a number, but no process can have it: a runtime "no such process".
  TargetResolver r(TargetSpec::from_json({{"pid", 2147483647}}));
  try {
    r.validate();
    FAIL() << "expected no such process";
  } catch (const TargetError& e) {
    EXPECT_NE(std::string(e.what()).find("pid_max"), std::string::npos) << e.what();
  }
}

// Issue 11 item 11: 200000 pids kept the loop busy for seconds.
TEST(TargetSpec, PidListsAreDeduplicatedAndCapped) {
  auto dup = TargetSpec::from_json({{"pids", {7, 5, 7, 5, 5}}});
  EXPECT_EQ(dup.pids, (std::vector<pid_t>{5, 7}));
  nlohmann::json many = nlohmann::json::array();
  for (int i = 0; i < 200'000; ++i) many.push_back(getpid());
  EXPECT_THROW(TargetSpec::from_json({{"pids", many}}), TargetError);
  nlohmann::json at_cap = nlohmann::json::array();
  for (int i = 1; i <= 4096; ++i) at_cap.push_back(i + 1);
  EXPECT_EQ(TargetSpec::from_json({{"pids", at_cap}}).pids.size(), 4096u);
  at_cap.push_back(5000);
  EXPECT_THROW(TargetSpec::from_json({{"pids", at_cap}}), TargetError);
  specact::TargetPolicy wide;
  wide.max_pids = 10'000;
  EXPECT_EQ(TargetSpec::from_json({{"pids", at_cap}}, wide).pids.size(), 4097u);
  // Strings are capped too.
  EXPECT_THROW(TargetSpec::from_json({{"cgroup", std::string(5000, 'c')}}), TargetError);
  EXPECT_THROW(TargetSpec::from_json({{"unit", std::string(300, 'u')}}), TargetError);
}

TEST(TargetSpec, InitAndSelfNeedThePolicy) {
  EXPECT_THROW(specact::check_target_allowed(TargetSpec::pid(1)), TargetError);
  EXPECT_THROW(specact::check_target_allowed(TargetSpec::pid(getpid())), TargetError);
  EXPECT_NO_THROW(specact::check_target_allowed(TargetSpec::pid(getppid())));
  specact::TargetPolicy allow;
  allow.allow_init_and_self = true;
  EXPECT_NO_THROW(specact::check_target_allowed(TargetSpec::pid(1), allow));
}

// Issue 11 item 9: a unit that is not running yet is a target with no
// processes, and its cgroup is found once it starts (and again after a
// restart that moves it).
// As `specactd run` sets it; restored after the test.
struct AbsentTargetsAllowed {
  AbsentTargetsAllowed() : saved(specact::target_policy()) {
    specact::TargetPolicy p = saved;
    p.absent_targets_allowed = true;
    specact::set_target_policy(p);
  }
  ~AbsentTargetsAllowed() { specact::set_target_policy(saved); }
  specact::TargetPolicy saved;
};

TEST(TargetResolver, AbsentUnitAndCgroupAreErrorsByDefault) {
  namespace fs = std::filesystem;
  fs::path root = fs::temp_directory_path() / ("specact-cga-" + std::to_string(getpid()));
  fs::create_directories(root);
  TargetSpec unit;
  unit.kind = TargetSpec::Kind::Unit;
  unit.unit = "no-such.service";
  TargetResolver u(unit, "/proc", root.string());
  EXPECT_THROW(u.validate(), TargetError);
  TargetSpec cg;
  cg.kind = TargetSpec::Kind::Cgroup;
  cg.cgroup = "/nope";
  TargetResolver c(cg, "/proc", root.string());
  EXPECT_THROW(c.validate(), TargetError);
  fs::remove_all(root);
}

TEST(TargetResolver, UnitThatStartsLaterIsFollowed) {
  namespace fs = std::filesystem;
  AbsentTargetsAllowed daemon_policy;
  fs::path root = fs::temp_directory_path() / ("specact-cgl-" + std::to_string(getpid()));
  fs::create_directories(root / "system.slice");
  TargetSpec unit;
  unit.kind = TargetSpec::Kind::Unit;
  unit.unit = "later-test.service";
  TargetResolver r(unit, "/proc", root.string());
  ASSERT_NO_THROW(r.validate());
  EXPECT_TRUE(r.processes().empty());
  EXPECT_FALSE(r.cgroup_dir());

  fs::create_directories(root / "system.slice" / "later-test.service");
  std::ofstream(root / "system.slice" / "later-test.service" / "cgroup.procs") << "4242\n";
  EXPECT_EQ(r.processes(), std::vector<pid_t>{4242});
  ASSERT_TRUE(r.cgroup_dir());

  // Stopped: its cgroup is removed; restarted under another slice.
  fs::remove_all(root / "system.slice" / "later-test.service");
  EXPECT_TRUE(r.processes().empty());
  fs::create_directories(root / "app.slice" / "later-test.service");
  std::ofstream(root / "app.slice" / "later-test.service" / "cgroup.procs") << "4343\n";
  EXPECT_EQ(r.processes(), std::vector<pid_t>{4343});
  EXPECT_NE(r.cgroup_dir()->find("app.slice"), std::string::npos);

  unit.unit = "bad name;rm";
  TargetResolver bad(unit, "/proc", root.string());
  EXPECT_THROW(bad.validate(), TargetError);
  fs::remove_all(root);
}

TEST(TargetResolver, CgroupThatAppearsLaterIsFollowed) {
  namespace fs = std::filesystem;
  AbsentTargetsAllowed daemon_policy;
  fs::path root = fs::temp_directory_path() / ("specact-cgc-" + std::to_string(getpid()));
  fs::create_directories(root);
  TargetSpec s;
  s.kind = TargetSpec::Kind::Cgroup;
  s.cgroup = "/later/app";
  TargetResolver r(s, "/proc", root.string());
  ASSERT_NO_THROW(r.validate());
  EXPECT_TRUE(r.processes().empty());
  fs::create_directories(root / "later" / "app");
  std::ofstream(root / "later" / "app" / "cgroup.procs") << "77\n1\n";
  // pid 1 is never part of a matched set unless the policy allows it.
  EXPECT_EQ(r.processes(), std::vector<pid_t>{77});

  s.cgroup = "/../../etc";
  TargetResolver outside(s, "/proc", root.string());
  EXPECT_THROW(outside.validate(), TargetError);
  std::ofstream(root / "file") << "x";
  s.cgroup = "/file";
  TargetResolver file(s, "/proc", root.string());
  EXPECT_THROW(file.validate(), TargetError);
  // The kernel stops at a NUL: "\0later" would name the root, every process
  // on the machine (found by fuzz_dbus_args).
  for (const std::string& bad : {std::string("\0later", 6), std::string("/later\n/app")}) {
    s.cgroup = bad;
    TargetResolver r2(s, "/proc", root.string());
    try {
      r2.validate();
      ADD_FAILURE() << "accepted a cgroup path with a control character";
    } catch (const TargetError& e) {
      EXPECT_NE(std::string(e.what()).find("control character"), std::string::npos) << e.what();
    }
  }
  fs::remove_all(root);
}
