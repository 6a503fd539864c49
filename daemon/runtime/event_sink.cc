#include "runtime/event_sink.h"

#include <algorithm>
#include <cstdio>
#include <ctime>

#include "common/log.h"

namespace specact {

using engine::EventKind;
using nlohmann::json;

namespace {

std::string utc_now_iso8601() {
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  tm utc{};
  gmtime_r(&ts.tv_sec, &utc);
  char buf[96];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", utc.tm_year + 1900,
                utc.tm_mon + 1, utc.tm_mday, utc.tm_hour, utc.tm_min, utc.tm_sec,
                static_cast<int>(ts.tv_nsec / 1000000));
  return buf;
}

}  // namespace

void EventSink::subscribe(EventSubscriber& s) { subscribers_.push_back(&s); }

void EventSink::unsubscribe(EventSubscriber& s) {
  subscribers_.erase(std::remove(subscribers_.begin(), subscribers_.end(), &s), subscribers_.end());
}

HistoryEvent EventSink::record(EventKind kind, json fields, const std::string& summary) {
  json line = {{"type", engine::to_string(kind)}, {"time_ns", clock_.now_ns()}};
  for (auto it = fields.begin(); it != fields.end(); ++it) line[it.key()] = it.value();
  return publish(kind, std::move(line), summary, json(nullptr));
}

HistoryEvent EventSink::record(const engine::Event& e) {
  const EventKind kind = e.kind();
  json line = e.to_json();
  json window;
  if (kind == EventKind::Window) {
    line["metric"] = to_string(metric_);
    window = window_payload(e, metric_);
  }
  return publish(kind, std::move(line), e.summary, window);
}

HistoryEvent EventSink::publish(EventKind kind, json line, const std::string& summary,
                                const json& window) {
  // The one line for people travels with the event (history, D-Bus, watch).
  if (!summary.empty() && !line.contains("summary")) line["summary"] = summary;
  HistoryEvent entry;
  entry.seq = ++seq_;
  line["seq"] = entry.seq;
  line["time"] = utc_now_iso8601();
  entry.data = std::move(line);
  const RecordedEvent recorded{kind, entry, summary, window};
  // A copy: a subscriber may unsubscribe (a transport shutting down) from its hook.
  const std::vector<EventSubscriber*> subscribers = subscribers_;
  for (EventSubscriber* s : subscribers) s->on_event(recorded);
  return entry;
}

json window_payload(const engine::Event& e, Metric metric) {
  const engine::WindowVerdict v = engine::WindowVerdict::of(e);
  json j = e.fields.value("window", json::object());
  j["metric"] = to_string(metric);
  j["objective_us"] = v.objective_us;
  j["config"] = v.config;
  j["phase"] = v.phase();
  return j;
}

bool StderrLog::routine(EventKind kind) {
  switch (kind) {
    case EventKind::Window:
    case EventKind::AgentCalled:
    case EventKind::AgentWaiting:
    case EventKind::TrialSkipped:
    case EventKind::AgentReply:
    case EventKind::ApplyResult:
      return true;
    default:
      return false;
  }
}

void StderrLog::on_event(const RecordedEvent& e) {
  if (e.summary.empty()) return;
  (routine(e.kind) ? log::debug(e.summary) : log::info(e.summary));
}

void ControlSurfaceSignals::on_event(const RecordedEvent& e) {
  if (e.kind == EventKind::Window && surface_.on_window) surface_.on_window(e.window);
  if (surface_.on_event) surface_.on_event(e.entry);
}

}  // namespace specact
