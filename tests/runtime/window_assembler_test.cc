// The command metric's part of a window (no BPF, no command run here).
#include "runtime/window_assembler.h"

#include <gtest/gtest.h>

namespace specact {
namespace {

TEST(WindowAssembler, CommandResultIsTheEvidenceWithTheCommandMetric) {
  Window w;
  w.low_confidence = true;  // few eBPF samples: a CPU-bound target rarely blocks
  add_command_result(w, CommandResult{850.0, 1234.0, ""}, Metric::CommandP95);
  EXPECT_EQ(w.command_p95_us, 850.0);
  EXPECT_EQ(w.command_throughput, 1234.0);
  EXPECT_EQ(w.command_error, "");
  EXPECT_FALSE(w.low_confidence);
}

TEST(WindowAssembler, NoCommandResultMakesACommandWindowLowConfidence) {
  Window w;
  add_command_result(w, std::nullopt, Metric::CommandP95);
  EXPECT_FALSE(w.command_p95_us);
  EXPECT_EQ(w.command_error, "no command result completed in this window");
  EXPECT_TRUE(w.low_confidence);

  Window failed;
  add_command_result(failed, CommandResult{std::nullopt, std::nullopt, "exit status 1"},
                     Metric::CommandP95);
  EXPECT_EQ(failed.command_error, "exit status 1");
  EXPECT_TRUE(failed.low_confidence);
}

// Without the sampler the assembler keeps the span itself: a window is
// window_ms long, unless it was restarted (a write between windows), when it
// runs from the restart; the dropped part takes no index.
TEST(WindowAssembler, WithoutTheSamplerAWindowRunsFromTheLastCloseOrRestart) {
  TargetResolver target(TargetSpec::pid(1));
  WindowAssembler a(target, nullptr, nullptr, Metric::CommandP95, 1000);
  const int64_t s = 1'000'000'000;
  Window w1 = a.close_window(10 * s);
  EXPECT_EQ(w1.index, 1u);
  EXPECT_EQ(w1.start_ns, 9 * s);
  a.discard_window(10 * s + s / 2);
  Window w2 = a.close_window(11 * s);  // the timer restarted too, but a late tick is shorter
  EXPECT_EQ(w2.index, 2u);
  EXPECT_EQ(w2.start_ns, 10 * s + s / 2);
  EXPECT_EQ(w2.end_ns, 11 * s);
  Window w3 = a.close_window(12 * s);
  EXPECT_EQ(w3.start_ns, 11 * s);
}

TEST(WindowAssembler, CommandFiguresDoNotJudgeAnEbpfWindow) {
  Window w;
  w.low_confidence = true;
  add_command_result(w, std::nullopt, Metric::ServiceP95);
  EXPECT_EQ(w.command_error, "no command result completed in this window");
  EXPECT_TRUE(w.low_confidence) << "kept from the eBPF samples";
  Window enough;
  add_command_result(enough, std::nullopt, Metric::RunqP95);
  EXPECT_FALSE(enough.low_confidence);
}

}  // namespace
}  // namespace specact
