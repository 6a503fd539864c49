// The write gate on its own: allow/deny lists, the domain (enum check,
// clamping) and the per-knob rate limit. No kernel, no files.
#include "knobs/write_gate.h"

#include <gtest/gtest.h>

#include "knobs/knob_manager.h"

namespace specact::knobs {
namespace {

KnobInfo numeric(const std::string& name, int64_t lo, int64_t hi,
                 KnobScale scale = KnobScale::Linear) {
  KnobInfo k;
  k.name = name;
  k.domain = {lo, hi, scale, {}};
  return k;
}

KnobInfo policy() {
  KnobInfo k;
  k.name = "task.policy";
  k.domain = {0, 2, KnobScale::Enum, {"other", "batch", "idle"}};
  return k;
}

TEST(WriteGate, EmptyAllowListAdmitsEveryKnobAndDenyWins) {
  WriteGate open({}, {}, 0);
  EXPECT_TRUE(open.allowed("task.nice"));
  EXPECT_TRUE(open.allowed("sysctl.kernel.anything"));
  EXPECT_EQ(open.check_allowed("task.nice"), "");

  WriteGate g({"sysctl.*", "task.nice"}, {"sysctl.kernel.numa_*"}, 0);
  EXPECT_TRUE(g.allowed("sysctl.kernel.timer_migration"));
  EXPECT_TRUE(g.allowed("task.nice"));
  EXPECT_FALSE(g.allowed("task.slice_us"));                 // matches no allow pattern
  EXPECT_FALSE(g.allowed("sysctl.kernel.numa_balancing"));  // allowed, then denied
  EXPECT_EQ(g.check_allowed("task.slice_us"),
            "task.slice_us is not in the allow-list (knobs.allow / knobs.deny)");
}

TEST(WriteGate, DenyAloneNarrowsEverything) {
  WriteGate g({}, {"background.*"}, 0);
  EXPECT_TRUE(g.allowed("task.nice"));
  EXPECT_FALSE(g.allowed("background.nice"));
}

TEST(WriteGate, NumbersAreClampedIntoTheDomain) {
  WriteGate g({}, {}, 0);
  std::string why;
  auto k = numeric("sysctl.kernel.sched_rr_timeslice_ms", 1, 1000, KnobScale::Log);
  EXPECT_EQ(g.check_value(k, 30, &why), 30);
  EXPECT_EQ(g.check_value(k, 99999, &why), 1000);
  EXPECT_EQ(g.check_value(k, -5, &why), 1);
  EXPECT_EQ(g.check_value(k, 1, &why), 1);
  EXPECT_EQ(g.check_value(k, 1000, &why), 1000);
  EXPECT_EQ(why, "");
}

TEST(WriteGate, EnumIndexMustBeOneOfTheValues) {
  WriteGate g({}, {}, 0);
  std::string why;
  EXPECT_EQ(g.check_value(policy(), 2, &why), 2);
  EXPECT_EQ(g.check_value(policy(), 3, &why), std::nullopt);
  EXPECT_EQ(why, "3 is not a value of task.policy (0=other, 1=batch, 2=idle)");
  why.clear();
  EXPECT_EQ(g.check_value(policy(), -1, &why), std::nullopt);
  EXPECT_NE(why.find("-1 is not a value"), std::string::npos) << why;
}

TEST(WriteGate, RateLimitIsPerKnob) {
  WriteGate g({}, {}, 200);
  const int64_t t0 = 5'000'000'000;
  EXPECT_EQ(g.check_rate("a", t0), "");  // never written
  g.wrote("a", t0);
  EXPECT_EQ(g.check_rate("a", t0 + 50'000'000), "a was written 50 ms ago (min_interval_ms 200)");
  EXPECT_EQ(g.check_rate("b", t0 + 50'000'000), "");  // other knobs are not held back
  EXPECT_NE(g.check_rate("a", t0 + 199'999'999), "");
  EXPECT_EQ(g.check_rate("a", t0 + 200'000'000), "");  // exactly the interval later
  g.wrote("a", t0 + 300'000'000);
  EXPECT_NE(g.check_rate("a", t0 + 400'000'000), "");
  g.forget_writes();
  EXPECT_EQ(g.check_rate("a", t0 + 400'000'000), "");
}

TEST(WriteGate, ZeroIntervalDisablesTheRateLimit) {
  WriteGate g({}, {}, 0);
  g.wrote("a", 1000);
  EXPECT_EQ(g.check_rate("a", 1000), "");
  WriteGate negative({}, {}, -5);  // the config refuses it; the gate treats it as 0
  negative.wrote("a", 1000);
  EXPECT_EQ(negative.check_rate("a", 1000), "");
}

TEST(WriteGate, FromConfigTakesTheListsAndTheInterval) {
  KnobsConfig c;
  c.allow = {"task.*"};
  c.deny = {"task.policy"};
  c.min_interval_ms = 1000;
  WriteGate g = WriteGate::from(c);
  EXPECT_TRUE(g.allowed("task.nice"));
  EXPECT_FALSE(g.allowed("task.policy"));
  EXPECT_FALSE(g.allowed("sysctl.kernel.timer_migration"));
  g.wrote("task.nice", 0);
  EXPECT_NE(g.check_rate("task.nice", 999'000'000), "");
  EXPECT_EQ(g.check_rate("task.nice", 1'000'000'000), "");
}

}  // namespace
}  // namespace specact::knobs
