#include "dbus/status_json.h"

#include <cmath>
#include <limits>

namespace specact {

nlohmann::json status_to_json(const StatusSnapshot& s, const std::string& version) {
  return {
      {"version", version},
      {"state", s.state},
      {"mode", s.mode},
      {"target", s.target},
      {"current", config_to_json(s.current)},
      {"confirmed", config_to_json(s.confirmed)},
      {"baseline", config_to_json(s.baseline)},
      {"pinned", s.pinned},
      {"last_window", s.last_window},
      {"baseline_p95_us", s.baseline_p95_us},
      {"hit_rate", s.hit_rate},
      {"windows", s.windows},
      {"usage",
       {{"speculator", role_usage_to_json(s.speculator)}, {"actor", role_usage_to_json(s.actor)}}},
      {"spend", s.spend},
      {"uptime_s", s.uptime_s},
      {"warnings", s.warnings},
      {"settings", s.settings}};
}

nlohmann::json knobs_to_json(const std::vector<KnobInfo>& knobs) {
  nlohmann::json a = nlohmann::json::array();
  for (const auto& k : knobs) a.push_back(knob_info_to_json(k));
  return a;
}

nlohmann::json event_to_json(const HistoryEvent& e) {
  nlohmann::json j = e.data.is_object() ? e.data : nlohmann::json::object();
  if (!e.data.is_object() && !e.data.is_null()) j["data"] = e.data;
  j["seq"] = e.seq;
  return j;
}

nlohmann::json history_to_json(const std::vector<HistoryEvent>& events, uint64_t since,
                               uint32_t limit) {
  std::vector<const HistoryEvent*> picked;
  for (const auto& e : events)
    if (e.seq > since) picked.push_back(&e);
  size_t first = 0;
  if (limit > 0 && picked.size() > limit) first = picked.size() - limit;
  nlohmann::json a = nlohmann::json::array();
  for (size_t i = first; i < picked.size(); ++i) a.push_back(event_to_json(*picked[i]));
  return a;
}

double window_p95_us(const nlohmann::json& w) {
  auto number_at = [&](const nlohmann::json::json_pointer& p) -> std::optional<double> {
    if (!w.is_object() || !w.contains(p)) return std::nullopt;
    const auto& v = w.at(p);
    if (!v.is_number()) return std::nullopt;
    return v.get<double>();
  };
  // The daemon's own objective wins, including its "none" (null) for a window
  // that straddles a change or has too few samples.
  if (w.is_object() && w.contains("objective_us")) {
    if (auto v = number_at("/objective_us"_json_pointer)) return *v;
    return std::numeric_limits<double>::quiet_NaN();
  }
  if (auto v = number_at("/command/p95_us"_json_pointer)) return *v;
  if (auto v = number_at("/service/count"_json_pointer); v && *v > 0)
    if (auto p = number_at("/service/p95_us"_json_pointer)) return *p;
  return std::numeric_limits<double>::quiet_NaN();
}

}  // namespace specact
