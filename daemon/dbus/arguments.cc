#include "dbus/arguments.h"

#include "common/control.h"

namespace specact {

void check_string_argument(const char* what, const std::string& value, size_t max) {
  if (value.size() > max)
    throw ControlError("InvalidArgument", std::string(what) + " is " +
                                              std::to_string(value.size()) +
                                              " bytes; the limit is " + std::to_string(max));
}

nlohmann::json parse_target_argument(const std::string& text, const TargetPolicy& policy) {
  check_string_argument("target", text, kMaxDbusTargetArg);
  nlohmann::json j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object())
    throw ControlError("InvalidArgument", "target must be a JSON object such as {\"pid\":123}");
  try {
    TargetSpec spec = TargetSpec::from_json(j, policy);
    check_target_allowed(spec, policy);
    return spec.to_json();
  } catch (const TargetError& e) {
    throw ControlError("InvalidArgument", e.what());
  }
}

}  // namespace specact
