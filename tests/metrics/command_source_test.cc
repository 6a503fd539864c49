#include <gtest/gtest.h>

#include <thread>

#include "metrics/sampler.h"

using specact::CommandSourceOptions;

namespace {
// Trimmed from a real `sysbench cpu --threads=16 --time=1 --percentile=95 run`.
constexpr const char* kSysbench = R"(
CPU speed:
    events per second:  1411.74

General statistics:
    total time:                          1.0093s
    total number of events:              1425

Latency (ms):
         min:                                    0.70
         avg:                                   11.21
         max:                                   44.63
         95th percentile:                       28.67
         sum:                                15971.92
)";
}  // namespace

TEST(CommandSource, ParsesSysbenchP95AndThroughput) {
  auto r = specact::parse_command_output(kSysbench, CommandSourceOptions{});
  ASSERT_TRUE(r.p95_us.has_value()) << r.error;
  EXPECT_DOUBLE_EQ(*r.p95_us, 28670.0);
  ASSERT_TRUE(r.throughput.has_value());
  EXPECT_DOUBLE_EQ(*r.throughput, 1411.74);
}

TEST(CommandSource, MissingP95IsAnError) {
  auto r = specact::parse_command_output("nothing useful\n", CommandSourceOptions{});
  EXPECT_FALSE(r.p95_us.has_value());
  EXPECT_NE(r.error.find("no p95"), std::string::npos);
}

TEST(CommandSource, CustomRegexAndScale) {
  CommandSourceOptions opt;
  opt.p95_regex = R"(p95=([0-9]+)us)";
  opt.p95_scale_to_us = 1.0;
  auto r = specact::parse_command_output("x p95=420us y", opt);
  ASSERT_TRUE(r.p95_us);
  EXPECT_DOUBLE_EQ(*r.p95_us, 420.0);
}

TEST(CommandSource, RunsACommandForReal) {
  CommandSourceOptions opt;
  opt.command = "echo '95th percentile: 1.50'; echo 'events per second: 10'";
  auto r = specact::run_command_source(opt);
  ASSERT_TRUE(r.p95_us) << r.error;
  EXPECT_DOUBLE_EQ(*r.p95_us, 1500.0);
}

TEST(CommandSource, FailingAndHangingCommandsAreErrors) {
  CommandSourceOptions opt;
  opt.command = "echo '95th percentile: 1.50'; exit 3";
  auto r = specact::run_command_source(opt);
  EXPECT_FALSE(r.p95_us);
  EXPECT_NE(r.error.find("exit status 3"), std::string::npos) << r.error;

  opt.command = "sleep 30";
  opt.timeout_ms = 300;
  r = specact::run_command_source(opt);
  EXPECT_FALSE(r.p95_us);
  EXPECT_NE(r.error.find("timed out"), std::string::npos) << r.error;
}

TEST(CommandSource, BackgroundSourceDeliversLatest) {
  CommandSourceOptions opt;
  opt.command = "sleep 0.05; echo '95th percentile: 2.00'";
  specact::CommandSource src(opt);
  std::optional<specact::CommandResult> got;
  for (int i = 0; i < 100 && !got; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    got = src.take_latest();
  }
  ASSERT_TRUE(got);
  ASSERT_TRUE(got->p95_us) << got->error;
  EXPECT_DOUBLE_EQ(*got->p95_us, 2000.0);
}

TEST(CommandSource, ParsesSysbenchIntervalLines) {
  auto r = specact::parse_command_output("[ 2s ] thds: 16 eps: 2017.91 lat (ms,95%): 104.84",
                                         CommandSourceOptions{});
  ASSERT_TRUE(r.p95_us) << r.error;
  EXPECT_DOUBLE_EQ(*r.p95_us, 104840.0);
  ASSERT_TRUE(r.throughput);
  EXPECT_DOUBLE_EQ(*r.throughput, 2017.91);
}

TEST(CommandSource, StreamingTakesEachMatchingLine) {
  CommandSourceOptions opt;
  opt.stream = true;
  opt.command =
      "i=1; while true; do echo \"[ ${i}s ] thds: 1 eps: 10.0 lat (ms,95%): $i.00\"; "
      "i=$((i+1)); sleep 0.1; done";
  specact::CommandSource src(opt);
  std::vector<double> seen;
  for (int i = 0; i < 60 && seen.size() < 3; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    if (auto r = src.take_latest(); r && r->p95_us) seen.push_back(*r->p95_us);
  }
  ASSERT_GE(seen.size(), 3u);
  EXPECT_LT(seen[0], seen[2]);  // later lines, later values: each line is a new result
}

// A command's output is untrusted text: a backtracking pattern over a 1 MiB
// line hung or overflowed the stack under std::regex; RE2 is linear.
TEST(CommandSource, BacktrackingPatternOnAHugeLineIsLinear) {
  CommandSourceOptions opt;
  opt.p95_regex = "(?:a*)*b ([0-9]+)";
  const std::string line(1 << 20, 'a');
  auto r = specact::parse_command_output(line, opt);
  EXPECT_FALSE(r.p95_us.has_value());
  r = specact::parse_command_output(line + "b 42", opt);
  ASSERT_TRUE(r.p95_us.has_value()) << r.error;
  EXPECT_DOUBLE_EQ(*r.p95_us, 42.0 * opt.p95_scale_to_us);
}
