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
