#include "runtime/saved_settings.h"

#include <stdexcept>

#include "dbus/arguments.h"

namespace specact {

using nlohmann::json;

namespace {

[[noreturn]] void refuse(const std::string& field, const std::string& why) {
  throw std::runtime_error(field + ": " + why);
}

TargetSpec target_from(const json& v, const std::string& field, const TargetPolicy& policy) {
  try {
    TargetSpec t = TargetSpec::from_json(v, policy);
    check_target_allowed(t, policy);
    return t;
  } catch (const TargetError& e) {
    refuse(field, e.what());
  }
}

}  // namespace

const std::vector<std::string>& SavedSettings::names() {
  static const std::vector<std::string> n = {"target", "mode", "pins", "paused"};
  return n;
}

bool SavedSettings::session_is_for(const TargetSpec& t) const {
  return session_target && session_target->to_json() == t.to_json();
}

void SavedSettings::set_session(const TargetSpec& t, std::map<std::string, int64_t> p,
                                bool is_paused) {
  if (p.empty() && !is_paused) {
    clear_session();
    return;
  }
  session_target = t;
  pins = std::move(p);
  paused = is_paused;
}

void SavedSettings::clear_session() {
  session_target.reset();
  pins.clear();
  paused = false;
}

json SavedSettings::to_json() const {
  json j = json::object();
  if (target) {
    j["target"] = target->to_json();
    if (!start_times.empty()) {
      json st = json::object();
      for (const auto& [pid, start] : start_times) st[std::to_string(pid)] = start;
      j["pid_identity"] = {{"boot_id", boot_id}, {"start_times", st}};
    }
  }
  if (mode) j["mode"] = engine::to_string(*mode);
  if (session_target)
    j["session"] = {{"target", session_target->to_json()}, {"pins", pins}, {"paused", paused}};
  return j;
}

SavedSettings SavedSettings::from_json(const json& doc, const TargetPolicy& policy) {
  SavedSettings s;
  for (const auto& [key, _] : doc.items())
    if (key != "kind" && key != "format" && key != "target" && key != "pid_identity" &&
        key != "mode" && key != "session")
      refuse(key.substr(0, 64), "unknown field");
  if (doc.contains("target")) s.target = target_from(doc["target"], "target", policy);
  if (doc.contains("pid_identity")) {
    const json& id = doc["pid_identity"];
    if (!s.target || s.target->kind != TargetSpec::Kind::Pid)
      refuse("pid_identity", "without a pid target");
    if (!id.is_object() || !id.contains("boot_id") || !id["boot_id"].is_string() ||
        !id.contains("start_times") || !id["start_times"].is_object())
      refuse("pid_identity", "expected {\"boot_id\": string, \"start_times\": {pid: integer}}");
    s.boot_id = id["boot_id"].get<std::string>();
    if (s.boot_id.size() > 64) refuse("pid_identity.boot_id", "too long");
    for (const auto& [pid, start] : id["start_times"].items()) {
      pid_t p = 0;
      for (pid_t t : s.target->pids)
        if (std::to_string(t) == pid) p = t;
      if (p == 0) refuse("pid_identity.start_times", "names a pid that is not the target's");
      if (!start.is_number_unsigned()) refuse("pid_identity.start_times", "expected integers");
      s.start_times[p] = start.get<uint64_t>();
    }
  } else if (s.target && s.target->kind == TargetSpec::Kind::Pid) {
    // Without it a pid could be anyone's by now.
    refuse("target", "a pid target without pid_identity");
  }
  if (doc.contains("mode")) {
    const json& m = doc["mode"];
    if (!m.is_string()) refuse("mode", "expected a string");
    s.mode = engine::mode_from_string(m.get<std::string>());
    if (!s.mode) refuse("mode", "not a mode");
  }
  if (doc.contains("session")) {
    const json& ss = doc["session"];
    if (!ss.is_object() || !ss.contains("target"))
      refuse("session", "expected {\"target\", \"pins\", \"paused\"}");
    for (const auto& [key, _] : ss.items())
      if (key != "target" && key != "pins" && key != "paused")
        refuse("session." + key.substr(0, 64), "unknown field");
    s.session_target = target_from(ss["target"], "session.target", policy);
    if (ss.contains("pins")) {
      const json& p = ss["pins"];
      if (!p.is_object()) refuse("session.pins", "expected {knob: integer}");
      if (p.size() > kMaxPins) refuse("session.pins", "more than " + std::to_string(kMaxPins));
      for (const auto& [knob, value] : p.items()) {
        if (knob.empty() || knob.size() > kMaxDbusNameArg)
          refuse("session.pins", "a knob name of " + std::to_string(knob.size()) + " bytes");
        if (!value.is_number_integer() ||
            (value.is_number_unsigned() && value.get<uint64_t>() > INT64_MAX))
          refuse("session.pins." + knob, "expected an integer");
        s.pins[knob] = value.get<int64_t>();
      }
    }
    if (ss.contains("paused")) {
      if (!ss["paused"].is_boolean()) refuse("session.paused", "expected true or false");
      s.paused = ss["paused"].get<bool>();
    }
  }
  return s;
}

json settings_status(const SavedSettings& saved, const std::optional<TargetSpec>& config_target,
                     engine::Mode config_mode, bool file_ok, const std::string& path) {
  const std::string dbus_source = file_ok ? "saved" : "unsaved";
  auto source = [&](bool set_over_dbus) { return set_over_dbus ? dbus_source : "config"; };
  json pins = json::object();
  for (const auto& [k, v] : saved.pins) pins[k] = v;
  return {
      {"file", path},
      {"target",
       {{"source", source(saved.target.has_value())},
        {"config", config_target ? config_target->to_json() : json(nullptr)}}},
      {"mode", {{"source", source(saved.mode.has_value())}, {"config", to_string(config_mode)}}},
      {"pins",
       {{"source", source(!saved.pins.empty())},
        {"values", pins},
        {"target", saved.session_target ? saved.session_target->to_json() : json(nullptr)}}},
      {"paused", {{"source", source(saved.paused)}, {"value", saved.paused}}},
  };
}

}  // namespace specact
