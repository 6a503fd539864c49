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

nlohmann::json knob_info_to_json(const KnobInfo& k) {
  nlohmann::json j = {{"name", k.name},
                      {"family", k.family},
                      {"unit", k.unit},
                      {"description", k.description},
                      {"min", k.domain.min},
                      {"max", k.domain.max},
                      {"scale", to_string(k.domain.scale)},
                      {"available", k.available}};
  if (!k.domain.enum_values.empty()) j["values"] = k.domain.enum_values;
  if (!k.available) j["unavailable_reason"] = k.unavailable_reason;
  j["current"] = k.current ? nlohmann::json(*k.current) : nlohmann::json(nullptr);
  if (k.default_value) j["default"] = *k.default_value;
  return j;
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

}  // namespace specact
