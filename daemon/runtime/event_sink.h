// Where every event of a run goes. The runtime records an event once, into
// the EventSink; the sink numbers and stamps it (the history line) and hands
// it to each subscriber in the order they subscribed. Subscribers of a
// `specactd run`: the history file (HistoryLog), the last window kept for
// GetStatus, the stderr log (StderrLog) and the D-Bus signals
// (ControlSurfaceSignals). A new consumer of events (an exporter, say) is one
// more subscriber: Runtime::events().subscribe(it).
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "common/clock.h"
#include "common/control.h"
#include "common/window.h"
#include "engine/event.h"

namespace specact {

// One recorded event, as every subscriber sees it.
struct RecordedEvent {
  engine::EventKind kind;
  // The history line: "seq", "time" (UTC, ISO 8601), "time_ns", "type",
  // "summary" when there is one, and the kind's fields.
  const HistoryEvent& entry;
  std::string_view summary;  // the one line for people ("" = none)
  // Window events: the window as clients see it (GetStatus's last_window,
  // the WindowMeasured payload): the monitor's window JSON plus "metric",
  // "objective_us", "config" and "phase". Null for every other kind.
  const nlohmann::json& window;
};

class EventSubscriber {
 public:
  virtual ~EventSubscriber() = default;
  // Called on the runtime's loop thread, in the order events happen.
  virtual void on_event(const RecordedEvent& e) = 0;
};

class EventSink {
 public:
  // `metric`: what this run's windows measure (added to window events).
  EventSink(const Clock& clock, Metric metric) : clock_(clock), metric_(metric) {}

  // Subscribers are called in subscription order; each must stay alive
  // until it unsubscribes or the sink is gone.
  void subscribe(EventSubscriber& s);
  void unsubscribe(EventSubscriber& s);

  // A runtime event: its fields, stamped with the kind and the clock's time_ns.
  HistoryEvent record(engine::EventKind kind, nlohmann::json fields, const std::string& summary);
  // An engine event: its type string becomes an EventKind here, once.
  HistoryEvent record(const engine::Event& e);

 private:
  HistoryEvent publish(engine::EventKind kind, nlohmann::json line, const std::string& summary,
                       const nlohmann::json& window);

  const Clock& clock_;
  Metric metric_;
  uint64_t seq_ = 0;
  std::vector<EventSubscriber*> subscribers_;
};

// The window payload of a window event (RecordedEvent::window).
nlohmann::json window_payload(const engine::Event& window_event, Metric metric);

// Each event's summary on stderr: decisions and state changes at info, the
// routine ones (windows, agent calls and replies, skipped trials, per-knob
// apply results) at debug.
class StderrLog : public EventSubscriber {
 public:
  static bool routine(engine::EventKind kind);
  void on_event(const RecordedEvent& e) override;
};

// The transport hooks of a ControlSurface (the D-Bus service sets them):
// on_window for each window event, then on_event for every event.
class ControlSurfaceSignals : public EventSubscriber {
 public:
  explicit ControlSurfaceSignals(ControlSurface& surface) : surface_(surface) {}
  void on_event(const RecordedEvent& e) override;

 private:
  ControlSurface& surface_;
};

}  // namespace specact
