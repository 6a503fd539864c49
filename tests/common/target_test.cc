#include "target/target.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

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

  TargetSpec missing = s;
  missing.cgroup = "/nope";
  TargetResolver bad(missing, "/proc", root.string());
  EXPECT_THROW(bad.validate(), TargetError);

  TargetSpec unit;
  unit.kind = TargetSpec::Kind::Unit;
  unit.unit = "child";
  TargetResolver u(unit, "/proc", root.string());
  u.validate();
  EXPECT_EQ(u.processes(), (std::vector<pid_t>{12}));
  unit.unit = "no-such.service";
  TargetResolver nu(unit, "/proc", root.string());
  EXPECT_THROW(nu.validate(), TargetError);
  fs::remove_all(root);
}
