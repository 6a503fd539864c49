// The event sink: typed kinds, numbering, stamping, fan-out to subscribers in
// order, the window payload, and which kinds the stderr log calls routine.
#include "runtime/event_sink.h"

#include <gtest/gtest.h>

#include <set>
#include <string>
#include <vector>

namespace specact {
namespace {

using engine::EventKind;
using nlohmann::json;

TEST(EventKind, EveryKindHasItsOwnHistoryNameAndParsesBack) {
  std::set<std::string_view> names;
  for (int i = 0; i <= static_cast<int>(EventKind::Unlisted); ++i) {
    const auto k = static_cast<EventKind>(i);
    const std::string_view name = engine::to_string(k);
    EXPECT_FALSE(name.empty());
    EXPECT_TRUE(names.insert(name).second) << "two kinds are called " << name;
    if (k == EventKind::Unlisted)
      EXPECT_FALSE(engine::event_kind_from_string(name)) << "unlisted is not a type";
    else
      EXPECT_EQ(engine::event_kind_from_string(name), k) << name;
  }
  EXPECT_EQ(engine::to_string(EventKind::SessionStarted), "session_started");
  EXPECT_EQ(engine::to_string(EventKind::ReEngaged), "re_engaged");
  EXPECT_FALSE(engine::event_kind_from_string("Applied"));
  EXPECT_FALSE(engine::event_kind_from_string(""));
}

TEST(EventKind, AnEngineEventsKindComesFromItsType) {
  engine::Event e;
  e.type = "overridden";
  EXPECT_EQ(e.kind(), EventKind::Overridden);
  e.type = "a_type_from_a_newer_engine";
  EXPECT_EQ(e.kind(), EventKind::Unlisted);
}

// Keeps what it was handed, and writes its name into a shared order log.
struct Recorder : EventSubscriber {
  Recorder(std::string name, std::vector<std::string>& order)
      : name(std::move(name)), order(order) {}
  void on_event(const RecordedEvent& e) override {
    order.push_back(name);
    kinds.push_back(e.kind);
    entries.push_back(e.entry);
    summaries.emplace_back(e.summary);
    windows.push_back(e.window);
  }
  std::string name;
  std::vector<std::string>& order;
  std::vector<EventKind> kinds;
  std::vector<HistoryEvent> entries;
  std::vector<std::string> summaries;
  std::vector<json> windows;
};

engine::Event window_event(bool straddled, bool provisional) {
  engine::Event e;
  e.type = "window";
  e.time_ns = 5'000;
  e.fields = {{"window", {{"window", 3}, {"service", {{"p95_us", 410.0}, {"count", 900}}}}},
              {"config", {{"task.slice_us", 100}}},
              {"straddled", straddled},
              {"provisional", provisional}};
  e.fields["objective_us"] = straddled ? json(nullptr) : json(410.0);
  e.summary = "window 3: service_p95 410us";
  return e;
}

TEST(EventSink, NumbersStampsAndHandsEachEventToEverySubscriberInOrder) {
  ManualClock clock(7'000);
  EventSink sink(clock, Metric::ServiceP95);
  std::vector<std::string> order;
  Recorder first("first", order), second("second", order);
  sink.subscribe(first);
  sink.subscribe(second);

  HistoryEvent a = sink.record(EventKind::TargetEmpty, json::object(), "no process now");
  HistoryEvent b = sink.record(window_event(false, true));
  EXPECT_EQ(order, (std::vector<std::string>{"first", "second", "first", "second"}));
  EXPECT_EQ(a.seq, 1u);
  EXPECT_EQ(b.seq, 2u);
  EXPECT_EQ(a.data["seq"], 1);
  EXPECT_EQ(a.data["type"], "target_empty");
  EXPECT_EQ(a.data["time_ns"], 7'000);
  EXPECT_EQ(a.data["summary"], "no process now");
  EXPECT_TRUE(a.data["time"].is_string());
  EXPECT_EQ(a.data["time"].get<std::string>().back(), 'Z');
  EXPECT_EQ(b.data["type"], "window");
  EXPECT_EQ(b.data["time_ns"], 5'000) << "an engine event keeps its own time";
  EXPECT_EQ(b.data["metric"], "service_p95");

  ASSERT_EQ(second.kinds.size(), 2u);
  EXPECT_EQ(second.kinds[0], EventKind::TargetEmpty);
  EXPECT_EQ(second.kinds[1], EventKind::Window);
  EXPECT_EQ(second.entries[1].data, b.data);
  EXPECT_EQ(second.summaries[1], "window 3: service_p95 410us");
  EXPECT_TRUE(second.windows[0].is_null()) << "only window events carry a window";
  const json& w = second.windows[1];
  EXPECT_EQ(w["window"], 3);
  EXPECT_EQ(w["service"]["p95_us"], 410.0);
  EXPECT_EQ(w["metric"], "service_p95");
  EXPECT_EQ(w["objective_us"], 410.0);
  EXPECT_EQ(w["config"], json({{"task.slice_us", 100}}));
  EXPECT_EQ(w["phase"], "provisional");

  sink.unsubscribe(first);
  sink.record(EventKind::Stopped, {{"reason", "test"}}, "");
  EXPECT_EQ(first.kinds.size(), 2u);
  ASSERT_EQ(second.kinds.size(), 3u);
  EXPECT_FALSE(second.entries[2].data.contains("summary")) << "no summary, no field";
}

TEST(EventSink, AnUnlistedEngineEventKeepsItsType) {
  ManualClock clock;
  EventSink sink(clock, Metric::CommandP95);
  std::vector<std::string> order;
  Recorder r("r", order);
  sink.subscribe(r);
  engine::Event e;
  e.type = "a_type_from_a_newer_engine";
  e.fields = {{"detail", 1}};
  sink.record(e);
  ASSERT_EQ(r.kinds.size(), 1u);
  EXPECT_EQ(r.kinds[0], EventKind::Unlisted);
  EXPECT_EQ(r.entries[0].data["type"], "a_type_from_a_newer_engine");
  EXPECT_EQ(r.entries[0].data["detail"], 1);
}

TEST(EventSink, WindowPayloadPhaseAndObjective) {
  const json straddled = window_payload(window_event(true, true), Metric::RunqP95);
  EXPECT_EQ(straddled["phase"], "straddled");
  EXPECT_TRUE(straddled["objective_us"].is_null()) << "no objective is kept as null";
  EXPECT_EQ(straddled["metric"], "runq_p95");
  EXPECT_EQ(window_payload(window_event(false, true), Metric::RunqP95)["phase"], "provisional");
  EXPECT_EQ(window_payload(window_event(false, false), Metric::RunqP95)["phase"], "confirmed");
}

TEST(StderrLog, RoutineKindsGoToDebugDecisionsToInfo) {
  for (EventKind k : {EventKind::Window, EventKind::AgentCalled, EventKind::AgentWaiting,
                      EventKind::TrialSkipped, EventKind::AgentReply, EventKind::ApplyResult})
    EXPECT_TRUE(StderrLog::routine(k)) << engine::to_string(k);
  for (EventKind k :
       {EventKind::Applied, EventKind::Confirmed, EventKind::Overridden, EventKind::Reverted,
        EventKind::AgentError, EventKind::ApplyError, EventKind::TargetEmpty, EventKind::Restored,
        EventKind::Stopped, EventKind::Unlisted})
    EXPECT_FALSE(StderrLog::routine(k)) << engine::to_string(k);
}

}  // namespace
}  // namespace specact
