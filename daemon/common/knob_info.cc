#include "common/knob_info.h"

#include <nlohmann/json.hpp>

namespace specact {

std::string to_string(KnobScale s) {
  switch (s) {
    case KnobScale::Linear:
      return "linear";
    case KnobScale::Log:
      return "log";
    case KnobScale::Enum:
      return "enum";
  }
  return "?";
}

std::optional<KnobScale> knob_scale_from_string(std::string_view s) {
  for (KnobScale scale : {KnobScale::Linear, KnobScale::Log, KnobScale::Enum})
    if (to_string(scale) == s) return scale;
  return std::nullopt;
}

std::string to_string(KnobEffect e) {
  switch (e) {
    case KnobEffect::Direct:
      return "direct";
    case KnobEffect::Relative:
      return "relative";
    case KnobEffect::Conditional:
      return "conditional";
  }
  return "?";
}

std::optional<KnobEffect> knob_effect_from_string(const std::string& s) {
  if (s == "direct") return KnobEffect::Direct;
  if (s == "relative") return KnobEffect::Relative;
  if (s == "conditional") return KnobEffect::Conditional;
  return std::nullopt;
}

nlohmann::json knob_info_to_json(const KnobInfo& k) {
  nlohmann::json j = {{"name", k.name},
                      {"family", k.family},
                      {"unit", k.unit},
                      {"description", k.description},
                      {"min", k.domain.min},
                      {"max", k.domain.max},
                      {"scale", to_string(k.domain.scale)},
                      {"effect", to_string(k.effect)},
                      {"available", k.available}};
  if (!k.domain.enum_values.empty()) j["values"] = k.domain.enum_values;
  if (!k.available) j["unavailable_reason"] = k.unavailable_reason;
  j["current"] = k.current ? nlohmann::json(*k.current) : nlohmann::json(nullptr);
  if (k.default_value) j["default"] = *k.default_value;
  return j;
}

KnobInfo knob_info_from_json(const nlohmann::json& j) {
  KnobInfo k;
  if (!j.is_object()) return k;
  auto text = [&](const char* key, std::string* out) {
    if (j.contains(key) && j[key].is_string()) *out = j[key].get<std::string>();
  };
  auto integer = [&](const char* key) -> std::optional<int64_t> {
    if (j.contains(key) && j[key].is_number_integer()) return j[key].get<int64_t>();
    return std::nullopt;
  };
  text("name", &k.name);
  text("family", &k.family);
  text("unit", &k.unit);
  text("description", &k.description);
  text("unavailable_reason", &k.unavailable_reason);
  k.domain.min = integer("min").value_or(0);
  k.domain.max = integer("max").value_or(0);
  if (j.contains("scale") && j["scale"].is_string())
    k.domain.scale = knob_scale_from_string(j["scale"].get<std::string>()).value_or(k.domain.scale);
  if (j.contains("values") && j["values"].is_array())
    for (const auto& v : j["values"])
      k.domain.enum_values.push_back(v.is_string() ? v.get<std::string>() : v.dump());
  if (j.contains("available") && j["available"].is_boolean())
    k.available = j["available"].get<bool>();
  k.current = integer("current");
  k.default_value = integer("default");
  return k;
}

nlohmann::json config_to_json(const Config& c) {
  nlohmann::json j = nlohmann::json::object();
  for (const auto& [name, value] : c) j[name] = value;
  return j;
}

std::string format_knob_value(const KnobInfo& k, int64_t v) {
  if (k.domain.scale == KnobScale::Enum && v >= 0 &&
      static_cast<size_t>(v) < k.domain.enum_values.size())
    return k.domain.enum_values[static_cast<size_t>(v)];
  return std::to_string(v);
}

std::optional<int64_t> enum_value_index(const KnobDomain& d, std::string_view name) {
  for (size_t i = 0; i < d.enum_values.size(); ++i)
    if (d.enum_values[i] == name) return static_cast<int64_t>(i);
  return std::nullopt;
  return std::nullopt;
}

std::string describe_config(const std::vector<KnobInfo>& knobs, const Config& c) {
  std::string out;
  for (const auto& k : knobs) {
    auto it = c.find(k.name);
    if (it == c.end()) continue;
    out += (out.empty() ? "" : " ") + k.name + "=" + format_knob_value(k, it->second);
  }
  return out.empty() ? "{}" : out;
}

std::string describe_change(const std::vector<KnobInfo>& knobs, const Config& from,
                            const Config& to) {
  std::string out;
  for (const auto& k : knobs) {
    auto a = from.find(k.name), b = to.find(k.name);
    if (b == to.end() || (a != from.end() && a->second == b->second)) continue;
    out += (out.empty() ? "" : ", ") + k.name + " " +
           (a != from.end() ? format_knob_value(k, a->second) : std::string("?")) + "->" +
           format_knob_value(k, b->second);
  }
  return out.empty() ? "no change" : out;
}

}  // namespace specact
