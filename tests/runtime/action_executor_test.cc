// Turning the knob layer's apply result into what the engine is told.
#include "runtime/action_executor.h"

#include <gtest/gtest.h>

#include <vector>

#include "sim_platform.h"

namespace specact {
namespace {

KnobResult result(const std::string& knob, KnobResult::Status status,
                  std::optional<int64_t> read_back = std::nullopt, std::string error = "") {
  KnobResult r;
  r.knob = knob;
  r.status = status;
  r.read_back = read_back;
  r.written = read_back;
  r.error = std::move(error);
  return r;
}

TEST(ActionExecutor, OutcomeComesFromTheApplyResult) {
  engine::ApplyAction a;
  a.config = {{"a", 10}, {"b", 20}, {"c", 30}, {"d", 40}, {"e", 50}, {"f", 60}};
  ApplyResult r;
  r.results = {result("a", KnobResult::Status::Applied, 12),  // the kernel rounded it
               result("b", KnobResult::Status::NoChange, 20),
               result("c", KnobResult::Status::Failed, std::nullopt, "write: EIO"),
               result("d", KnobResult::Status::Yielded, std::nullopt, "yielded"),
               result("e", KnobResult::Status::RateLimited, 49, "written 10 ms ago"),
               result("f", KnobResult::Status::Rejected, std::nullopt, "not allowed")};
  std::vector<std::string> unresolved;
  engine::ApplyOutcome o = outcome_of(a, r, &unresolved);
  // A rate-limited knob was read when the gate held it back: what it read is in force.
  EXPECT_EQ(o.applied, (Config{{"a", 12}, {"b", 20}, {"e", 49}}));
  EXPECT_EQ(o.yielded, std::vector<std::string>{"d"});
  EXPECT_EQ(o.error, "c: write: EIO; f: not allowed");
  EXPECT_EQ(unresolved, (std::vector<std::string>{"c", "f"}));
  EXPECT_EQ(o.unwritten, (std::vector<std::string>{"c", "e", "f"}));
  EXPECT_TRUE(o.retry) << "e was only rate-limited";
}

class ExecutorOnSim : public ::testing::Test {
 protected:
  ExecutorOnSim()
      : machine_(sim::SimWorkload::periodic_vs_hogs()),
        platform_(machine_),
        session_(platform_.open_target(TargetSpec::pid(4242))),
        sink_(clock_, Metric::ServiceP95),
        executor_(sink_) {
    sink_.subscribe(recorder_);
  }
  engine::ApplyAction action(int64_t slice, int64_t nice) {
    engine::ApplyAction a;
    a.config = machine_.in_force;
    a.config[sim::kSlice] = slice;
    a.config[sim::kNice] = nice;
    a.who = "test";
    return a;
  }
  struct KindRecorder : EventSubscriber {
    std::vector<engine::EventKind> kinds;
    void on_event(const RecordedEvent& e) override { kinds.push_back(e.kind); }
  };

  sim::SimMachine machine_;
  sim::SimPlatform platform_;
  std::unique_ptr<TargetSession> session_;
  ManualClock clock_;
  EventSink sink_;
  KindRecorder recorder_;
  ActionExecutor executor_;
};

TEST_F(ExecutorOnSim, AFullApplyIsNotReadBack) {
  engine::ApplyOutcome o = executor_.apply(session_->knobs(), action(100, -5));
  EXPECT_EQ(machine_.reads, 0u);
  EXPECT_EQ(o.applied, machine_.in_force);
  EXPECT_EQ(o.error, "");
  EXPECT_EQ(executor_.errors(), "");
  EXPECT_TRUE(recorder_.kinds.empty()) << "a full apply records no apply_result";
}

TEST_F(ExecutorOnSim, AKnobNotWrittenIsReadBackAndItsErrorKept) {
  machine_.failing_writes[sim::kNice] = "sched_setattr: EPERM";
  engine::ApplyOutcome o = executor_.apply(session_->knobs(), action(100, -5));
  EXPECT_EQ(machine_.reads, 1u);
  EXPECT_EQ(o.applied.at(sim::kSlice), 100);
  EXPECT_EQ(o.applied.at(sim::kNice), 0) << "the value in force, not the one asked for";
  EXPECT_EQ(o.error, std::string(sim::kNice) + ": sched_setattr: EPERM");
  EXPECT_EQ(recorder_.kinds, std::vector<engine::EventKind>{engine::EventKind::ApplyResult});

  executor_.apply(session_->knobs(), action(200, -6));
  EXPECT_EQ(executor_.errors(), o.error + "; " + o.error) << "errors gather until cleared";
  executor_.clear_errors();
  EXPECT_EQ(executor_.errors(), "");
}

}  // namespace
}  // namespace specact
